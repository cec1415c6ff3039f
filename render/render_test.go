package render_test

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testbrowser"
	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/render"
	"github.com/scrape-cluster/scrape/scrape"
)

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func open(t testing.TB, cfg scrape.Config) *render.Renderer {
	t.Helper()
	return openConfig(t, render.Config{Fetch: cfg})
}

// openConfig opens a Renderer of cfg with the test's browser and logger.
func openConfig(t testing.TB, cfg render.Config) *render.Renderer {
	t.Helper()
	cfg.Browser = testbrowser.RequireBrowser(t)
	if cfg.Fetch.Timeout == 0 {
		cfg.Fetch.Timeout = 15 * time.Second
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := render.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pid := r.PID()
		if err := r.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if left := render.GroupPIDs(pid); len(left) > 0 {
			t.Errorf("browser processes left after Close: %v", left)
		}
	})
	return r
}

func TestRenderJSPage(t *testing.T) {
	site := testsite.NewJSApp(t)
	r := open(t, scrape.Config{})
	url := site.URL + "/app/7"

	// Over HTTP the page has none of it.
	plain := scrape.NewFetcher(scrape.Config{}).Fetch(scrape.Listed(t.Context()), url)
	if plain.Error != nil || plain.Title != "" || len(plain.Links) != 0 || len(plain.Headings) != 0 {
		t.Fatalf("HTTP record of the JS page: title %q links %v headings %v err %v", plain.Title, plain.Links, plain.Headings, plain.Error)
	}

	res := r.Render(scrape.Listed(t.Context()), url)
	if res.Error != nil {
		t.Fatalf("render: %v", res.Error)
	}
	if !res.Rendered || res.Status != 200 || res.FinalURL != url {
		t.Errorf("rendered %v status %d final %q", res.Rendered, res.Status, res.FinalURL)
	}
	if res.Title != testsite.JSTitle(7) {
		t.Errorf("title %q, want %q", res.Title, testsite.JSTitle(7))
	}
	for _, l := range testsite.JSLinks(site.URL, 7) {
		if !slices.Contains(res.Links, l) {
			t.Errorf("links %v lack %s", res.Links, l)
		}
	}
	if !slices.Contains(res.Headings, testsite.JSPrice(7)) {
		t.Errorf("headings %v lack the late price %q", res.Headings, testsite.JSPrice(7))
	}
	if n := site.Images.Load(); n != 0 {
		t.Errorf("%d image and font requests reached the site; they are blocked without --render-resources", n)
	}
	if n := site.PrivateHits.Load(); n != 0 {
		t.Errorf("the page's script reached %s, a private address the input does not list", site.Private.URL)
	}
}

func TestRenderResourcesAndAllowPrivate(t *testing.T) {
	site := testsite.NewJSApp(t)
	r := open(t, scrape.Config{RenderResources: true, AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}})
	res := r.Render(scrape.Listed(t.Context()), site.URL+"/app/3")
	if res.Error != nil || res.Title != testsite.JSTitle(3) {
		t.Fatalf("render: title %q err %v", res.Title, res.Error)
	}
	if site.Images.Load() == 0 {
		t.Error("no image or font reached the site with --render-resources")
	}
	if site.PrivateHits.Load() == 0 {
		t.Error("the private address --allow-private allows was not reached")
	}
}

func TestRenderBlockedPage(t *testing.T) {
	site := testsite.NewJSApp(t)
	r := open(t, scrape.Config{})
	// Not listed: the page's own host is loopback, which the guard refuses.
	res := r.Render(t.Context(), site.URL+"/app/1")
	if res.Error == nil || res.Error.Kind != scrape.KindBlockedAddress {
		t.Fatalf("error %v, want %s", res.Error, scrape.KindBlockedAddress)
	}
	if n := site.Pages.Load(); n != 0 {
		t.Errorf("%d requests reached the refused page", n)
	}
}

func TestRenderWaitFor(t *testing.T) {
	site := testsite.NewJSApp(t)
	tests := []struct {
		sel  string
		kind string
	}{
		{"#price", ""},
		{"#never-there", scrape.KindTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			r := open(t, scrape.Config{WaitFor: tt.sel, Timeout: 3 * time.Second})
			res := r.Render(scrape.Listed(t.Context()), site.URL+"/app/5")
			if got := kind(res.Error); got != tt.kind {
				t.Fatalf("error %v, want kind %q", res.Error, tt.kind)
			}
			if tt.kind == "" && !slices.Contains(res.Headings, testsite.JSPrice(5)) {
				t.Errorf("headings %v lack %q", res.Headings, testsite.JSPrice(5))
			}
		})
	}
}

func kind(e *scrape.Error) string {
	if e == nil {
		return ""
	}
	return e.Kind
}

// A browser killed under a page is replaced, and the page loaded again in
// the new one; the old one's processes are all gone.
func TestRenderBrowserKilled(t *testing.T) {
	site := testsite.NewJSApp(t)
	r := open(t, scrape.Config{})
	if res := r.Render(scrape.Listed(t.Context()), site.URL+"/app/1"); res.Error != nil {
		t.Fatalf("first render: %v", res.Error)
	}
	old := r.PID()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// Kill it while the next page waits for its network to go quiet.
	go func() {
		for site.API.Load() < 2 && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		_ = syscall.Kill(-old, syscall.SIGKILL)
	}()
	res := r.Render(scrape.Listed(ctx), site.URL+"/app/2")
	if res.Error != nil || res.Title != testsite.JSTitle(2) {
		t.Fatalf("render across a crash: title %q err %v", res.Title, res.Error)
	}
	if r.Restarts() != 1 || r.PID() == old {
		t.Errorf("restarts %d, pid %d (was %d)", r.Restarts(), r.PID(), old)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(render.GroupPIDs(old)) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if left := render.GroupPIDs(old); len(left) > 0 {
		t.Errorf("the killed browser's processes are left: %v", left)
	}
}

// Several pages through one tab: each waits for its own network to go
// quiet, not for the idleness the blank page before it reports late.
func TestRenderReusesTab(t *testing.T) {
	site := testsite.NewJSApp(t)
	r := open(t, scrape.Config{})
	for n := range 4 {
		res := r.Render(scrape.Listed(t.Context()), site.URL+"/app/"+strconv.Itoa(n))
		if res.Error != nil || !slices.Contains(res.Headings, testsite.JSPrice(n)) {
			t.Fatalf("page %d: headings %v, error %v", n, res.Headings, res.Error)
		}
	}
}
