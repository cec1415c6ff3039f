package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// scrape run --sitemap --structured on two nodes: a site whose only way in
// beyond the input line is its /sitemap.xml (robots.txt declares none), each
// page carrying JSON-LD. Every sitemap URL is fetched once, by either node,
// and recorded once with its lastmod and its data.
func TestSitemapStructuredOnTwoNodes(t *testing.T) {
	const pages = 60
	base := ""
	hits := make(chan string, 4*pages)
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- r.URL.Path
		switch {
		case r.URL.Path == "/sitemap.xml":
			var b strings.Builder
			b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">`)
			for i := range pages {
				fmt.Fprintf(&b, "<url><loc>%s/item/%d</loc><lastmod>2026-10-%02d</lastmod></url>", base, i, i%28+1)
			}
			b.WriteString(`</urlset>`)
			w.Write([]byte(b.String()))
		case strings.HasPrefix(r.URL.Path, "/item/") || r.URL.Path == "/":
			// With one page in flight per slot (--per-slot 1), one node
			// alone would take about a second: the other starts well before.
			time.Sleep(30 * time.Millisecond)
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<title>%s</title><script type="application/ld+json">{"@context":"https://schema.org","@type":"Product","sku":%q}</script>
<a href="/not-followed">x</a>`, r.URL.Path, r.URL.Path)
		default:
			http.NotFound(w, r)
		}
	})
	base = serveHandler(t, "127.0.0.1", site)

	out := filepath.Join(t.TempDir(), "out.jsonl")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := scrapeCmd(t, ctx, "run", "-f", writeFile(t, "mf", "localhost:2\n127.0.0.1:2\n"), writeFile(t, "urls.txt", base+"/\n"),
		"-o", out, "--sitemap", "--structured", "--per-slot", "1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scrape run: %v\n%s", err, stderr.String())
	}
	close(hits)
	requested := map[string]int{}
	for p := range hits {
		requested[p]++
	}
	data, err := readFileT(t, out)
	if err != nil {
		t.Fatal(err)
	}
	recs := readJSONL(t, data)
	seen, nodes := map[string]int{}, map[string]int{}
	for _, r := range recs {
		seen[r.URL]++
		nodes[r.Node]++
		var d struct {
			JSONLD []struct {
				SKU string `json:"sku"`
			} `json:"jsonld"`
		}
		if err := json.Unmarshal(r.Data, &d); err != nil || len(d.JSONLD) != 1 || base+d.JSONLD[0].SKU != r.URL {
			t.Errorf("%s: data %s (%v)", r.URL, r.Data, err)
		}
	}
	for i := range pages {
		u := fmt.Sprintf("%s/item/%d", base, i)
		if seen[u] != 1 || requested[fmt.Sprintf("/item/%d", i)] != 1 {
			t.Errorf("%s: %d records, requested %d times", u, seen[u], requested[fmt.Sprintf("/item/%d", i)])
		}
	}
	for _, r := range recs {
		if want := ""; r.URL != base+"/" {
			var i int
			fmt.Sscanf(strings.TrimPrefix(r.URL, base), "/item/%d", &i)
			want = fmt.Sprintf("2026-10-%02d", i%28+1)
			if r.Lastmod != want || r.Parent != base+"/sitemap.xml" {
				t.Errorf("%s: lastmod %q parent %q, want %q from the sitemap", r.URL, r.Lastmod, r.Parent, want)
			}
		}
	}
	if len(recs) != pages+1 {
		t.Errorf("%d records, want %d", len(recs), pages+1)
	}
	if requested["/not-followed"] != 0 {
		t.Error("--sitemap without --depth followed a link")
	}
	if nodes["localhost"] == 0 || nodes["127.0.0.1"] == 0 {
		t.Errorf("records per node %v: both nodes should have fetched sitemap pages", nodes)
	}
}
