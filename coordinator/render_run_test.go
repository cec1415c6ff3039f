package coordinator

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/scrape-cluster/scrape/internal/testbrowser"
	"github.com/scrape-cluster/scrape/internal/testsite"
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
