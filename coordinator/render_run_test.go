package coordinator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/syncbuf"
	"github.com/scrape-cluster/scrape/internal/testbrowser"
	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/internal/warctest"
	"github.com/scrape-cluster/scrape/machinefile"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
	"github.com/scrape-cluster/scrape/worker"
)

// A site whose content only scripts make: without --render its records lack
// it, with always and auto they have it, and auto leaves the plain pages to
// HTTP.
func TestRunRender(t *testing.T) {
	testbrowser.RequireBrowser(t)
	site := testsite.NewJSApp(t)
	apps := []string{site.URL + "/app/1", site.URL + "/app/2", site.URL + "/app/3"}
	plains := []string{site.URL + "/plain/1", site.URL + "/plain/2"}
	tests := []struct {
		mode string
		// rendered says which records are of a rendered page.
		rendered func(url string) bool
		attempts int // of an app page
	}{
		{scrape.RenderNever, func(string) bool { return false }, 1},
		{scrape.RenderAlways, func(string) bool { return true }, 1},
		// The app pages are fetched, judged script-made, and rendered.
		{scrape.RenderAuto, func(u string) bool { return strings.Contains(u, "/app/") }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			h := newHarness(t, 2)
			h.cfg.Fetch.Render = tt.mode
			h.cfg.RenderSlots = 2
			sum, err := h.run(append(slices.Clone(apps), plains...))
			if err != nil {
				t.Fatal(err)
			}
			recs := byURL(t, h.records())
			if len(recs) != len(apps)+len(plains) || sum.Records != len(recs) {
				t.Fatalf("%d records, summary %d records; want %d", len(recs), sum.Records, len(apps)+len(plains))
			}
			for u, r := range recs {
				if r.Error != nil {
					t.Errorf("%s: %v", u, r.Error)
				}
				if r.Rendered != tt.rendered(u) {
					t.Errorf("%s: rendered %v, want %v", u, r.Rendered, tt.rendered(u))
				}
			}
			for i, u := range apps {
				r, n := recs[u], i+1
				made := r.Title == testsite.JSTitle(n) && slices.Contains(r.Headings, testsite.JSPrice(n)) &&
					slices.Contains(r.Links, testsite.JSLinks(site.URL, n)[0])
				if made != tt.rendered(u) {
					t.Errorf("%s: title %q headings %v links %v: script-made content %v, want %v", u, r.Title, r.Headings, r.Links, made, tt.rendered(u))
				}
				if r.Attempts != tt.attempts {
					t.Errorf("%s: %d attempts, want %d", u, r.Attempts, tt.attempts)
				}
			}
			for _, u := range plains {
				if r := recs[u]; !strings.HasPrefix(r.Title, "Plain ") {
					t.Errorf("%s: title %q", u, r.Title)
				}
			}
			if n := site.PrivateHits.Load(); n != 0 {
				t.Errorf("rendered pages reached an unlisted private address %d times", n)
			}
		})
	}
}

// newOneRendererHarness is a --render auto run on the JS app of two nodes
// of 2 slots, the first of which says render=no.
func newOneRendererHarness(t *testing.T) (*testsite.JSApp, *harness) {
	t.Helper()
	testbrowser.RequireBrowser(t)
	site := testsite.NewJSApp(t)
	h := newHarness(t, 2, 2)
	h.cfg.Hosts[0].Render = machinefile.RenderNo
	h.cfg.Fetch.Render = scrape.RenderAuto
	h.cfg.RenderSlots = 2
	return site, h
}

// Only the node that may render gets the render tasks; the other fetches
// plain pages all the same.
func TestRunRenderRouting(t *testing.T) {
	site, h := newOneRendererHarness(t)
	var lines []string
	for i := range 4 {
		lines = append(lines, site.URL+"/app/"+string(rune('1'+i)), site.URL+"/plain/"+string(rune('1'+i)))
	}
	if _, err := h.run(lines); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]int{}
	for _, r := range h.records() {
		if r.Error != nil {
			t.Errorf("%s: %v", r.URL, r.Error)
		}
		if r.Rendered {
			nodes[r.Node]++
		}
	}
	if len(nodes) != 1 || nodes["localhost#2"] != 4 {
		t.Errorf("rendered pages by node %v: want all 4 on localhost#2, the node without render=no", nodes)
	}
}

// A run with --render always where the machinefile lets no node run a
// browser fails before it starts; with --wait-workers a joiner may bring
// one (TestRunRenderAlwaysNoRenderer).
func TestRunRenderNoRenderer(t *testing.T) {
	h := newHarness(t, 1)
	h.cfg.Hosts[0].Render = machinefile.RenderNo
	h.cfg.Fetch.Render = scrape.RenderAlways
	h.cfg.Input = strings.NewReader("http://127.0.0.1:1/\n")
	_, err := New(h.cfg)
	if !errors.Is(err, ErrNoRenderer) || !strings.Contains(err.Error(), "render=no") {
		t.Fatalf("New: %v, want %v naming render=no", err, ErrNoRenderer)
	}
}

// A rendered page's document is archived and compared as a fetched one:
// the WARC holds it as the site served it, and a second run with --since
// costs its unchanged pages a 304 and no script, and writes them whole from
// the earlier record.
func TestRunRenderArchiveAndSince(t *testing.T) {
	testbrowser.RequireBrowser(t)
	const pages = 4
	site, srv := newSinceSite(t, pages)
	var lines []string
	for n := range pages {
		lines = append(lines, fmt.Sprintf("%s/fresh/%d", srv.URL, n))
	}
	first := newHarness(t, 1)
	first.cfg.Fetch.Render = scrape.RenderAlways
	first.cfg.RenderSlots = 2
	first.cfg.Warc = filepath.Join(t.TempDir(), "crawl.warc.gz")
	if _, err := first.run(lines); err != nil {
		t.Fatalf("first run: %v", err)
	}
	before := byURL(t, first.records())
	archived := map[string]bool{}
	for _, r := range warctest.Read(t, first.cfg.Warc) {
		if r.Type == "response" && r.Status == 200 && bytes.Contains(r.Payload, []byte("<title>")) {
			archived[r.Target] = true
		}
	}
	for _, l := range lines {
		r := before[l]
		if !r.Rendered || r.Error != nil || r.ETag == "" || r.SHA256 == "" {
			t.Errorf("%s: rendered %v etag %q sha %q error %v", l, r.Rendered, r.ETag, r.SHA256, r.Error)
		}
		if !archived[l] {
			t.Errorf("%s: no response record of its document in the WARC", l)
		}
	}

	served := site.BodyBytes()
	second := newHarness(t, 1)
	second.cfg.Fetch.Render = scrape.RenderAlways
	second.cfg.RenderSlots = 2
	second.cfg.Since = first.out
	if _, err := second.run(lines); err != nil {
		t.Fatalf("second run: %v", err)
	}
	for u, r := range byURL(t, second.records()) {
		if !r.Unchanged || r.Error != nil || r.Title != before[u].Title || r.SHA256 != before[u].SHA256 || !r.Rendered {
			t.Errorf("%s: unchanged %v rendered %v title %q (was %q) error %v", u, r.Unchanged, r.Rendered, r.Title, before[u].Title, r.Error)
		}
	}
	if n := site.BodyBytes() - served; n != 0 {
		t.Errorf("the second run was served %d body bytes; its pages were unchanged", n)
	}
}

// With --delay, a rendered page's own requests (its script's API call) are
// spaced from its pages' and from each other as pages are.
func TestRunRenderPolite(t *testing.T) {
	testbrowser.RequireBrowser(t)
	const delay = 400 * time.Millisecond
	site := testsite.NewJSApp(t)
	web := &testsite.Recorder{Handler: site.Server.Config.Handler}
	srv := httptest.NewServer(web)
	t.Cleanup(srv.Close)
	h := newHarness(t, 2)
	h.cfg.Fetch.Render = scrape.RenderAlways
	h.cfg.RenderSlots = 2
	h.cfg.Delay = delay
	lines := []string{srv.URL + "/app/1", srv.URL + "/app/2", srv.URL + "/app/3"}
	if _, err := h.run(lines); err != nil {
		t.Fatal(err)
	}
	for u, r := range byURL(t, h.records()) {
		if !r.Rendered || r.Error != nil {
			t.Errorf("%s: rendered %v error %v", u, r.Rendered, r.Error)
		}
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	starts := web.Starts(host)
	if len(starts) != 2*len(lines) {
		t.Fatalf("%d requests to %s, want %d: each page and its API call", len(starts), host, 2*len(lines))
	}
	for _, p := range testsite.SpacingProblems(starts, delay) {
		t.Error(p)
	}
}

// A node's proxy= (machinefile) carries all of its rendered pages'
// requests: the page's and its script's.
func TestRunRenderNodeProxy(t *testing.T) {
	testbrowser.RequireBrowser(t)
	site := testsite.NewJSApp(t)
	proxy := testsite.NewProxy()
	ps := httptest.NewServer(proxy)
	t.Cleanup(ps.Close)
	h := newHarness(t, 2)
	h.cfg.Hosts[0].Proxies = []string{ps.URL}
	h.cfg.Fetch.Render = scrape.RenderAlways
	h.cfg.RenderSlots = 2
	lines := []string{site.URL + "/app/1", site.URL + "/app/2"}
	if _, err := h.run(lines); err != nil {
		t.Fatal(err)
	}
	for u, r := range byURL(t, h.records()) {
		if !r.Rendered || r.Error != nil || r.Proxy == "" || r.Title != testsite.JSTitle(int(u[len(u)-1]-'0')) {
			t.Errorf("%s: rendered %v proxy %q title %q error %v", u, r.Rendered, r.Proxy, r.Title, r.Error)
		}
	}
	// Each page and its API call; the private request is refused before
	// it reaches any proxy? No: through a proxy the target is the
	// proxy's to reach, as for the fetcher (scrape.Guard.Proxy).
	if n, pages := proxy.Requests(), int(site.Pages.Load()+site.API.Load()); n < 2*len(lines) || pages != 2*len(lines) {
		t.Errorf("the proxy took %d requests, the site saw %d pages and API calls; want every one of the %d through the proxy", n, pages, 2*len(lines))
	}
}

// withoutBrowser runs the rest of the test with a PATH where no browser is
// found: its workers say they do not render.
func withoutBrowser(t *testing.T) {
	t.Helper()
	t.Setenv("PATH", t.TempDir())
}

// --render auto on nodes that cannot render: the run goes on, says so once,
// and writes every page once, those that need a browser as HTTP found
// them, marked needs_render.
func TestRunRenderAutoNoRenderer(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*harness)
	}{
		{"render=no", func(h *harness) {
			for i := range h.cfg.Hosts {
				h.cfg.Hosts[i].Render = machinefile.RenderNo
			}
		}},
		{"no browser on PATH", func(h *harness) { withoutBrowser(h.t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site := testsite.NewJSApp(t)
			var apps, plains []string
			for n := range 4 {
				apps = append(apps, fmt.Sprintf("%s/app/%d", site.URL, n+1))
				plains = append(plains, fmt.Sprintf("%s/plain/%d", site.URL, n+1))
			}
			h := newHarness(t, 2, 2)
			h.cfg.Fetch.Render = scrape.RenderAuto
			tt.setup(h)
			sum, err := h.run(append(slices.Clone(apps), plains...))
			if err != nil {
				t.Fatal(err)
			}
			recs := byURL(t, h.records())
			if len(recs) != len(apps)+len(plains) || sum.Records != len(recs) {
				t.Fatalf("%d records, summary %d; want %d", len(recs), sum.Records, len(apps)+len(plains))
			}
			for u, r := range recs {
				app := slices.Contains(apps, u)
				if r.Error != nil || r.Rendered || (r.NeedsRender != "") != app {
					t.Errorf("%s: error %v, rendered %v, needs_render %q; want a plain record, needs_render set: %v", u, r.Error, r.Rendered, r.NeedsRender, app)
				}
			}
			for i, u := range apps {
				if r := recs[u]; r.Title == testsite.JSTitle(i+1) {
					t.Errorf("%s: title %q: script-made content without a browser", u, r.Title)
				}
			}
			if sum.Unrendered != len(apps) {
				t.Errorf("summary: %d not rendered, want %d", sum.Unrendered, len(apps))
			}
			warning := "scrape: warning: --render auto: no node can render ("
			if n := strings.Count(h.stderr.String(), warning); n != 1 {
				t.Errorf("stderr has the warning %d times, want once:\n%s", n, h.stderr)
			}
		})
	}
}

// --render always on workers that cannot render fails with ErrNoRenderer:
// at once, or with --wait-workers once no worker that renders joined
// within the wait. No page is written: none was fetched.
func TestRunRenderAlwaysNoRenderer(t *testing.T) {
	tests := []struct {
		name     string
		renderNo bool // the machinefile says render=no, rather than no browser on PATH
		wait     time.Duration
		want     string
	}{
		{"no browser", false, 0, "none of the 1 worker(s) running has a browser"},
		{"no browser, wait", false, 300 * time.Millisecond, "none with one joined within the wait of 300ms"},
		{"render=no, wait", true, 300 * time.Millisecond, "none with one joined within the wait of 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withoutBrowser(t)
			site := testsite.NewJSApp(t)
			h := newHarness(t, 2)
			h.cfg.Fetch.Render = scrape.RenderAlways
			h.cfg.WaitWorkers = tt.wait
			if tt.renderNo {
				h.cfg.Hosts[0].Render = machinefile.RenderNo
			}
			_, err := h.run([]string{site.URL + "/app/1", site.URL + "/plain/1"})
			if !errors.Is(err, ErrNoRenderer) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run: %v; want %v saying %q", err, ErrNoRenderer, tt.want)
			}
			if _, err := os.Stat(h.out); err == nil {
				if recs := h.records(); len(recs) != 0 {
					t.Errorf("%d records written, want none: %+v", len(recs), recs)
				}
			}
			if n := site.Pages.Load(); n != 0 {
				t.Errorf("the site served %d app pages, want none", n)
			}
		})
	}
}

// --render auto whose only renderer is lost while it renders: the render
// tasks it held are taken back and fetched over HTTP by the node left,
// and written plain, marked needs_render; every page once.
func TestRunRenderAutoRendererLost(t *testing.T) {
	site, h := newOneRendererHarness(t)
	var apps, lines []string
	for n := range 4 {
		// The page's API answers late: its render is under way for
		// seconds, long enough to be cut off.
		apps = append(apps, fmt.Sprintf("%s/app/%d?slow=5000", site.URL, n+1))
		lines = append(lines, apps[n], fmt.Sprintf("%s/plain/%d", site.URL, n+1))
	}
	killed, ran := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(killed)
		for site.API.Load() == 0 { // a browser is loading an app page
			select {
			case <-ran:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		h.launcher.process("localhost#2").Kill()
	}()
	sum, err := h.run(lines)
	close(ran)
	<-killed
	if err != nil {
		t.Fatal(err)
	}
	if site.API.Load() == 0 {
		t.Fatal("no page was being rendered: nothing was killed")
	}
	recs := byURL(t, h.records())
	if len(recs) != len(lines) || sum.Records != len(lines) {
		t.Fatalf("%d records, summary %d; want %d", len(recs), sum.Records, len(lines))
	}
	plain := 0
	for u, r := range recs {
		app := slices.Contains(apps, u)
		switch {
		case r.Error != nil:
			t.Errorf("%s: %v", u, r.Error)
		case r.Rendered:
			t.Errorf("%s: rendered, though its renderer was killed within its wait for the API", u)
		case app && r.NeedsRender == "", !app && r.NeedsRender != "":
			t.Errorf("%s: needs_render %q", u, r.NeedsRender)
		case app:
			plain++
			if r.Node != "localhost" {
				t.Errorf("%s: fetched by %s, want localhost, the node left", u, r.Node)
			}
		}
	}
	if plain != len(apps) || sum.Unrendered != plain {
		t.Errorf("%d app pages written plain, summary %d; want %d", plain, sum.Unrendered, len(apps))
	}
	stderr := h.stderr.String()
	for _, want := range []string{"lost node localhost#2", "scrape: warning: --render auto: no node can render (", "sent to a browser are fetched over HTTP again"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
}

// --render always with --wait-workers, on a node that may not render: the
// run waits, and a worker with a browser that joins in that time ends the
// wait and renders every page.
func TestRunRenderAlwaysJoinerEndsWait(t *testing.T) {
	browser := testbrowser.RequireBrowser(t)
	site := testsite.NewJSApp(t)
	h := newHarness(t, 2)
	h.cfg.Hosts[0].Render = machinefile.RenderNo
	h.cfg.Fetch.Render = scrape.RenderAlways
	h.cfg.WaitWorkers = time.Minute
	h.cfg.RenderSlots = 2
	stderr := &syncbuf.Buffer{}
	h.cfg.Stderr = stderr
	lines := []string{site.URL + "/app/1", site.URL + "/app/2", site.URL + "/plain/1"}

	ctx, cancel := context.WithCancel(t.Context())
	joined := make(chan error, 1)
	go func() { joined <- joinWithBrowser(ctx, h, stderr, browser) }()
	sum, err := h.run(lines)
	cancel()
	if jerr := <-joined; jerr != nil {
		t.Errorf("joiner: %v", jerr)
	}
	t.Logf("stderr:\n%s", stderr)
	if err != nil {
		t.Fatal(err)
	}
	recs := byURL(t, h.records())
	if len(recs) != len(lines) || sum.Records != len(lines) {
		t.Fatalf("%d records, summary %d; want %d", len(recs), sum.Records, len(lines))
	}
	for u, r := range recs {
		if r.Error != nil || !r.Rendered || r.Node != "joiner" {
			t.Errorf("%s: error %v, rendered %v, node %q; want rendered by the joiner", u, r.Error, r.Rendered, r.Node)
		}
	}
}

// joinWithBrowser waits for the run to say it waits for a worker with a
// browser, and joins it as scrape worker --nats would, with one.
func joinWithBrowser(ctx context.Context, h *harness, stderr *syncbuf.Buffer, browser string) error {
	const waiting = "for a worker with a browser to join: scrape worker "
	var hint string
	for hint == "" {
		if _, after, ok := strings.Cut(stderr.String(), waiting); ok {
			hint, _, _ = strings.Cut(after, "\n")
			break
		}
		select {
		case <-ctx.Done():
			return errors.New("the run never said it waits for a worker with a browser")
		case <-time.After(5 * time.Millisecond):
		}
	}
	flags := map[string]string{}
	f := strings.Fields(hint)
	for i := 0; i+1 < len(f); i += 2 {
		flags[f[i]] = f[i+1]
	}
	auth, err := queue.AuthFiles{NKey: flags["--nkey"], CA: flags["--tls-ca"]}.Load()
	if err != nil {
		return fmt.Errorf("hint %q: %w", hint, err)
	}
	servers := []string{flags["--nats"]}
	id, err := worker.FindRun(ctx, worker.Find{Servers: servers, Auth: auth, Wait: 30 * time.Second})
	if err != nil {
		return err
	}
	w, err := worker.New(worker.Config{
		Bootstrap: queue.Bootstrap{Version: queue.ProtocolVersion, Servers: servers, Auth: auth, Run: id, Node: "joiner"},
		Joined:    true, Browser: browser, RenderSlots: 2,
		Logger: h.log.logger(slog.LevelInfo, "[joiner] "),
	})
	if err != nil {
		return err
	}
	if err := w.Run(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// A rendered page's archive replays it: beside its document, the WARC holds
// the JSON its script fetched, with its request.
func TestRunRenderArchivesWhatScriptsAsk(t *testing.T) {
	testbrowser.RequireBrowser(t)
	site := testsite.NewJSApp(t)
	h := newHarness(t, 2)
	h.cfg.Fetch.Render = scrape.RenderAlways
	h.cfg.RenderSlots = 2
	h.cfg.Output = filepath.Join(t.TempDir(), "crawl.warc.gz")
	lines := []string{site.URL + "/app/1", site.URL + "/app/2"}
	if _, err := h.run(lines); err != nil {
		t.Fatal(err)
	}
	responses := map[string][]byte{}
	requests := map[string]string{} // target → the response it is concurrent to
	ids := map[string]string{}      // response ID → target
	for _, r := range warctest.Read(t, h.cfg.Output) {
		switch r.Type {
		case "response":
			responses[r.Target] = r.Payload
			ids[r.ID] = r.Target
		case "request":
			requests[r.Target] = r.ConcurrentTo
		}
	}
	for n := 1; n <= 2; n++ {
		page, api := fmt.Sprintf("%s/app/%d", site.URL, n), fmt.Sprintf("%s/api/%d.json", site.URL, n)
		if !bytes.Contains(responses[page], []byte("<noscript>")) {
			t.Errorf("%s: the document as served is not archived", page)
		}
		if !bytes.Contains(responses[api], []byte(`"title":"Widget`)) {
			t.Errorf("%s: the JSON the script fetched is not archived: %q", api, responses[api])
		}
		if ids[requests[api]] != api {
			t.Errorf("%s: its request is concurrent to %q, not its response", api, requests[api])
		}
	}
	for target := range responses {
		if strings.Contains(target, "/static/") || strings.Contains(target, "127.0.0.2") {
			t.Errorf("%s archived: it was refused, not fetched", target)
		}
	}
}
