package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testcluster"
	"github.com/scrape-cluster/scrape/internal/testsite"
)

// helperServeSiteLate serves testsite, answering one client address late:
// -- serve-site-late ADDR PAGES SLOWFROM DELAY. This kernel has no netem to
// slow a host's link, so the site slows what it sends that host instead,
// which is what the run sees of a slow link or a slow node: its pages take
// longer.
const helperServeSiteLate = "serve-site-late"

// TestHelperServeSiteLate is the site of helperServeSiteLate.
func TestHelperServeSiteLate(t *testing.T) {
	args := helperArgs(t, helperServeSiteLate, 4)
	pages, err := strconv.Atoi(args[1])
	if err != nil {
		t.Fatal(err)
	}
	late, err := time.ParseDuration(args[3])
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", args[0])
	if err != nil {
		t.Fatal(err)
	}
	site := testsite.New(pages)
	slowed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if from, _, _ := net.SplitHostPort(r.RemoteAddr); from == args[2] {
			select {
			case <-time.After(late):
			case <-r.Context().Done():
				return
			}
		}
		site.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: slowed, ReadHeaderTimeout: 5 * time.Second}
	fmt.Println("serving on", l.Addr())
	t.Fatal(srv.Serve(l)) // Serve only returns with an error
}

// serveLateSiteIn serves the site of helperServeSiteLate from inside h's
// namespace, answering the host at slowFrom late, and returns its base URL.
func serveLateSiteIn(t *testing.T, h *testcluster.Host, pages int, slowFrom string, late time.Duration) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(h.Addr, sitePort)
	h.Start(t, exe, "-test.run=^TestHelperServeSiteLate$", "-test.timeout=0", "--", helperServeSiteLate,
		addr, strconv.Itoa(pages), slowFrom, late.String())
	waitFor(t, 10*time.Second, "the site on "+h.Name, func() bool {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	return "http://" + addr
}

// tail is what a run's records say of its end: when each node's last page
// ended, the run's last, and how many pages each node wrote.
type tail struct {
	first   time.Time            // the run's first page began
	lastEnd map[string]time.Time // by node, the end of its last page
	end     time.Time            // the end of the run's last page
	pages   map[string]int       // by node
	took    map[string][]time.Duration
}

func tailOf(recs map[int]record) tail {
	tl := tail{lastEnd: map[string]time.Time{}, pages: map[string]int{}, took: map[string][]time.Duration{}}
	for _, rec := range recs {
		d := time.Duration(rec.DurationMS) * time.Millisecond
		end := rec.FetchedAt.Add(d)
		if end.After(tl.lastEnd[rec.Node]) {
			tl.lastEnd[rec.Node] = end
		}
		if end.After(tl.end) {
			tl.end = end
		}
		if tl.first.IsZero() || rec.FetchedAt.Before(tl.first) {
			tl.first = rec.FetchedAt
		}
		tl.pages[rec.Node]++
		tl.took[rec.Node] = append(tl.took[rec.Node], d)
	}
	return tl
}

// after is how long after node's last page the run's last page ended.
func (tl tail) after(node string) time.Duration { return tl.end.Sub(tl.lastEnd[node]) }

// median is the median time of node's pages.
func (tl tail) median(node string) time.Duration {
	d := slices.Clone(tl.took[node])
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// TestClusterSlowNodeTail runs over a fast node and a slow one: the site
// answers the slow node's requests slowPage late, forty times the fast
// node's pages. Without care the run ends with the slow node's last pages,
// a slow page after the fast node ran out of work; the run's last page must
// end within half a slow page of the fast node's last, and every line be
// written once, also those fetched by both nodes.
func TestClusterSlowNodeTail(t *testing.T) {
	const (
		page     = 50 * time.Millisecond
		slowPage = 2 * time.Second
		pages    = 600
	)
	c := testcluster.New(t, 3) // node3 serves the site
	base := serveLateSiteIn(t, c.Hosts[2], 100, c.Hosts[1].Addr, slowPage)
	// Eight pages at a time on each node; --per-host above both nodes'
	// together, so the slow node's pages in flight never use up the
	// site's limit (which would starve the fast node all along).
	r := startClusterRun(t, c, "node1:1\nnode2:1\n", slowURLs(base, int(page/time.Millisecond), pages),
		"--per-slot", "8", "--per-host", "32")
	if code := r.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s", code, r.stderr.String())
	}
	took := time.Since(r.start)
	got := r.checkComplete(t)
	for line, rec := range got {
		if rec.Error != nil {
			t.Errorf("line %d: %+v", line, rec.Error)
		}
	}
	tl := tailOf(got)
	t.Logf("%d pages, per node %v; pages took %s on node1, %s on node2 (medians); the run's last page ended %s after the first began, %s after node1's last; the run took %s; %s",
		len(got), tl.pages, tl.median("node1"), tl.median("node2"), tl.end.Sub(tl.first).Round(time.Millisecond),
		tl.after("node1").Round(time.Millisecond), took.Round(time.Millisecond), summaryLine(r.stderr.String(), "offered again"))
	if tl.pages["node2"] == 0 {
		t.Fatalf("the slow node fetched nothing: %v", tl.pages)
	}
	if tail := tl.after("node1"); tail > slowPage/2 {
		t.Errorf("the run's last page ended %s after node1's last, want at most half a slow page (%s)", tail.Round(time.Millisecond), slowPage/2)
	}
}

// summaryLine is the line of the run's summary on stderr that says what,
// trimmed, or that there is none.
func summaryLine(stderr, what string) string {
	for line := range strings.Lines(stderr) {
		if strings.Contains(line, what) {
			return strings.TrimSpace(line)
		}
	}
	return "no line says " + strconv.Quote(what)
}
