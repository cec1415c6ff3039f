package coordinator

import (
	"bytes"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testbrowser"
	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/internal/warctest"
	"github.com/scrape-cluster/scrape/machinefile"
	"github.com/scrape-cluster/scrape/scrape"
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

// Only the node that may render gets the render tasks; the other fetches
// plain pages all the same.
func TestRunRenderRouting(t *testing.T) {
	testbrowser.RequireBrowser(t)
	site := testsite.NewJSApp(t)
	h := newHarness(t, 2, 2)
	h.cfg.Hosts[0].Render = machinefile.RenderNo
	h.cfg.Fetch.Render = scrape.RenderAuto
	h.cfg.RenderSlots = 2
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

// A run that needs a browser where no node may run one fails at once.
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
		if !r.Unchanged || r.Error != nil || r.Title != before[u].Title || r.SHA256 != before[u].SHA256 {
			t.Errorf("%s: unchanged %v title %q (was %q) error %v", u, r.Unchanged, r.Title, before[u].Title, r.Error)
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
