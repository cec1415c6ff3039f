package render_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/render"
	"github.com/scrape-cluster/scrape/scrape"
)

// A browser over its memory limit or its page count is retired: the next
// page goes to a new browser, every page renders in full, and nothing of
// the old browser's process group is left.
func TestRenderRetires(t *testing.T) {
	site := testsite.NewJSApp(t)
	tests := []struct {
		name  string
		cfg   render.Config
		pages int
		// browsers[i] is which browser page i renders in, by start order;
		// nil: any, so long as the last is not the first.
		browsers []int
	}{
		// A byte: every browser is over it once measured, which happens
		// beside the page after its first, so the page after that may
		// still go to it.
		{"memory", render.Config{MemoryLimit: 1}, 3, nil},
		{"pages", render.Config{MaxPages: 2}, 3, []int{0, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := openConfig(t, tt.cfg)
			var pids []int // of the browsers started, in order
			var in []int   // the browser of each page
			for i := range tt.pages {
				res := r.Render(scrape.Listed(t.Context()), site.URL+"/app/"+strconv.Itoa(i))
				if res.Error != nil || res.Title != testsite.JSTitle(i) || !slices.Contains(res.Headings, testsite.JSPrice(i)) {
					t.Fatalf("page %d: title %q headings %v err %v", i, res.Title, res.Headings, res.Error)
				}
				// The browser a page rendered in stays the current one
				// until the next page, even once it is to retire.
				pid := r.PID()
				if !slices.Contains(pids, pid) {
					pids = append(pids, pid)
				}
				in = append(in, slices.Index(pids, pid))
			}
			if tt.browsers != nil && !slices.Equal(in, tt.browsers) || len(pids) < 2 {
				t.Fatalf("pages rendered in browsers %v (pids %v), want %v", in, pids, tt.browsers)
			}
			retired := len(pids) - 1
			if r.Retired() != retired || r.Restarts() != retired {
				t.Errorf("retired %d, restarts %d; want %d of each", r.Retired(), r.Restarts(), retired)
			}
			for _, pid := range pids[:retired] {
				if left := groupGone(pid); len(left) > 0 {
					t.Errorf("retired browser %d: processes left %v", pid, left)
				}
			}
		})
	}
}

// A retired browser finishes the page it was rendering while the next page
// renders in its successor, then is closed; Close kills one still draining.
func TestRenderRetiredDrains(t *testing.T) {
	for _, closeFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("close=%v", closeFirst), func(t *testing.T) {
			site := testsite.NewJSApp(t)
			gate := newGateSite(t)
			r := openConfig(t, render.Config{MaxPages: 1})
			first := r.PID()
			slow := make(chan scrape.Result, 1)
			go func() { slow <- r.Render(scrape.Listed(t.Context()), gate.URL+"/page") }()
			select {
			case <-gate.entered: // the page is in the first browser, its request held
			case res := <-slow:
				t.Fatalf("the held page returned: %+v", res.Error)
			}

			res := r.Render(scrape.Listed(t.Context()), site.URL+"/app/4")
			if res.Error != nil || res.Title != testsite.JSTitle(4) {
				t.Fatalf("page in the new browser: title %q err %v", res.Title, res.Error)
			}
			second := r.PID()
			if second == first || r.Retired() != 1 {
				t.Fatalf("pid %d (first %d), retired %d: want a second browser", second, first, r.Retired())
			}
			if len(render.GroupPIDs(first)) == 0 {
				t.Fatal("the first browser is gone with a page still in it")
			}

			if closeFirst {
				if err := r.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
				for _, pid := range []int{first, second} {
					if left := render.GroupPIDs(pid); len(left) > 0 {
						t.Errorf("browser %d: processes left after Close %v", pid, left)
					}
				}
				if res := <-slow; res.Error == nil {
					t.Errorf("the page of a browser killed by Close has no error: %+v", res)
				}
				return
			}
			close(gate.release)
			if res := <-slow; res.Error != nil || res.Title != "released" {
				t.Fatalf("the page left in the retired browser: title %q err %v", res.Title, res.Error)
			}
			if left := groupGone(first); len(left) > 0 {
				t.Errorf("the drained browser's processes are left: %v", left)
			}
		})
	}
}

// gateSite serves /page, whose script asks for /gate and takes its answer
// as the title; /gate answers once release is closed.
type gateSite struct {
	*httptest.Server
	entered chan struct{} // receives when /gate is asked for
	release chan struct{}
}

func newGateSite(t *testing.T) *gateSite {
	t.Helper()
	g := &gateSite{entered: make(chan struct{}, 1), release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html><head><title>held</title></head><body><script>
fetch("/gate").then(r => r.text()).then(t => { document.title = t; });
</script></body></html>`)
	})
	mux.HandleFunc("/gate", func(w http.ResponseWriter, r *http.Request) {
		select {
		case g.entered <- struct{}{}:
		default:
		}
		select {
		case <-g.release:
			fmt.Fprint(w, "released")
		case <-r.Context().Done():
		}
	})
	g.Server = httptest.NewServer(mux)
	t.Cleanup(func() {
		select {
		case <-g.release:
		default:
			close(g.release)
		}
		g.Close()
	})
	return g
}

// groupGone waits a little for process group pgid to be gone, closed in
// the background, and returns what is left of it.
func groupGone(pgid int) []int {
	deadline := time.Now().Add(10 * time.Second)
	for len(render.GroupPIDs(pgid)) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	return render.GroupPIDs(pgid)
}
