package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
)

// linkOut adds, to the site's page 0, a link to another host, which a crawl
// restricted to the seed's host must not follow.
type linkOut struct {
	site    http.Handler
	outside string
}

func (l linkOut) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/page/0" {
		l.site.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html")
	fmt.Fprintf(w, `<html><head><title>Page 0</title></head><body>
<a href="/page/1">next</a> <a href="/page/1#top">same page</a> <a href="/page/9/../3">dots</a>
<a href="%s/elsewhere">outside</a></body></html>`, l.outside)
}

// depthToReach is the link distance from page 0 to the farthest page.
func depthToReach(site *testsite.Site) int {
	dist := map[int]int{0: 0}
	queue := []int{0}
	deepest := 0
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, l := range site.Links(n) {
			var m int
			fmt.Sscanf(l, "/page/%d", &m)
			if _, ok := dist[m]; !ok {
				dist[m] = dist[n] + 1
				deepest = max(deepest, dist[m])
				queue = append(queue, m)
			}
		}
	}
	return deepest + 1 // page 0 here links to page 1 only
}

func TestCrawlFetchesEveryPageOnce(t *testing.T) {
	const pages = 2000
	site := testsite.New(pages)
	t.Cleanup(site.Close)
	other := &testsite.Recorder{Handler: site}
	outside := serveHandler(t, "127.0.0.2", other)
	rec := &testsite.Recorder{Handler: linkOut{site: site, outside: outside}}
	base := serveHandler(t, "127.0.0.1", rec)
	// Twice the shortest distance to the farthest page: a concurrent crawl
	// counts a page's depth along the path it first found the page by,
	// which a slow fetch can make longer than the shortest (README,
	// Crawling). At exactly the shortest distance, a loaded run once left
	// a page out.
	depth := 2 * depthToReach(site)

	out := filepath.Join(t.TempDir(), "out.jsonl")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := scrapeCmd(t, ctx, "run", "-f", writeFile(t, "mf", threeNodes), writeFile(t, "urls.txt", base+"/page/0\n"),
		"-o", out, "--depth", fmt.Sprint(depth), "--same-host", "--per-host", "24")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scrape run: %v\n%s", err, stderr.String())
	}
	data, err := readFileT(t, out)
	if err != nil {
		t.Fatal(err)
	}
	recs := readJSONL(t, data)
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.URL]++
		if r.Error != nil {
			t.Errorf("%s: %+v", r.URL, r.Error)
		}
		if r.URL != base+"/page/0" && (r.Depth == 0 || r.Depth > depth || r.Parent == "") {
			t.Errorf("%s: depth %d (limit %d) parent %q", r.URL, r.Depth, depth, r.Parent)
		}
	}
	for n := range pages {
		u := fmt.Sprintf("%s/page/%d", base, n)
		if seen[u] != 1 {
			t.Errorf("%s has %d records", u, seen[u])
		}
		if h := rec.Requests(fmt.Sprintf("/page/%d", n)); h != 1 {
			t.Errorf("/page/%d fetched %d times", n, h)
		}
	}
	if len(recs) != pages {
		t.Errorf("%d records, want %d", len(recs), pages)
	}
	if n := len(other.Hosts()); n != 0 {
		t.Errorf("the crawl left the seed's host: %v", other.Hosts())
	}
	if strings.Contains(stderr.String(), "warning") {
		t.Errorf("warnings:\n%s", stderr.String())
	}
}

// With --depth 1 the seed's links are fetched and theirs are not.
func TestCrawlDepthLimit(t *testing.T) {
	site := testsite.New(50)
	t.Cleanup(site.Close)
	rec := &testsite.Recorder{Handler: linkOut{site: site, outside: "http://127.0.0.2:1"}}
	base := serveHandler(t, "127.0.0.1", rec)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := scrapeCmd(t, ctx, "run", "-f", writeFile(t, "mf", "localhost:4\n"), writeFile(t, "urls.txt", base+"/page/0\n"),
		"-o", out, "--depth", "1", "--same-host")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scrape run: %v\n%s", err, b)
	}
	data, err := readFileT(t, out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range readJSONL(t, data) {
		got[strings.TrimPrefix(r.URL, base)] = r.Depth
	}
	// Page 0 links to /page/1, to it again with a fragment, to /page/3
	// through a dot segment, and off the host.
	want := map[string]int{"/page/0": 0, "/page/1": 1, "/page/3": 1}
	if !maps.Equal(got, want) {
		t.Errorf("pages and depths %v, want %v", got, want)
	}
	for n := range 50 {
		path := fmt.Sprintf("/page/%d", n)
		if _, ok := want[path]; !ok && rec.Requests(path) != 0 {
			t.Errorf("%s fetched beyond the depth limit", path)
		}
	}
}

func TestCrawlMaxPages(t *testing.T) {
	site := testsite.New(500)
	t.Cleanup(site.Close)
	base := serveHandler(t, "127.0.0.1", site)
	out := filepath.Join(t.TempDir(), "out.jsonl")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := scrapeCmd(t, ctx, "run", writeFile(t, "urls.txt", base+"/page/0\n"), "-o", out, "--depth", "50", "--max-pages", "37")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scrape run: %v\n%s", err, b)
	}
	data, _ := readFileT(t, out)
	if n := len(readJSONL(t, data)); n != 37 {
		t.Errorf("%d records with --max-pages 37", n)
	}
}
