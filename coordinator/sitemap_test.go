package coordinator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/scrape"
)

// sitemapSite is a site whose robots.txt declares a sitemap index: one
// gzipped sitemap and one plain, pages /p/1 to /p/n between them, each page
// linking to /linked. The index also names another host's sitemap, and the
// plain one another host's page, a page twice and the input URL: none of
// which may become a task.
func sitemapSite(t *testing.T, n int, other string) (*site, string) {
	t.Helper()
	var base string
	entries := func(from, to int) string {
		var b strings.Builder
		for i := from; i <= to; i++ {
			fmt.Fprintf(&b, "<url><loc>%s/p/%d</loc><lastmod>2026-11-%02d</lastmod></url>\n", base, i, i%28+1)
		}
		return b.String()
	}
	web, srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/robots.txt":
			fmt.Fprintf(w, "User-agent: *\nAllow: /\nSitemap: %s/sitemap_index.xml\nSitemap: %s/sitemap.xml\n", base, other)
		case "/sitemap_index.xml":
			fmt.Fprintf(w, `<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>%[1]s/sm1.xml.gz</loc></sitemap><sitemap><loc>%[1]s/sm2.xml</loc></sitemap>
<sitemap><loc>%[2]s/sitemap.xml</loc></sitemap><sitemap><loc>%[1]s/sm2.xml</loc></sitemap></sitemapindex>`, base, other)
		case "/sm1.xml.gz":
			w.Header().Set("Content-Type", "application/gzip")
			io.WriteString(w, gzipped(t, `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">`+entries(1, n/2)+`</urlset>`))
		case "/sm2.xml":
			fmt.Fprintf(w, `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">%s
<url><loc>%s/p/1</loc></url><url><loc>%s/start</loc></url><url><loc>%s/away</loc></url></urlset>`, entries(n/2+1, n), base, base, other)
		case "/start", "/linked":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, "<title>%s</title>", r.URL.Path)
		default:
			if !strings.HasPrefix(r.URL.Path, "/p/") {
				http.NotFound(w, r)
				return
			}
			time.Sleep(10 * time.Millisecond) // long enough for both nodes to take some
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<title>%s</title><a href="/linked">more</a>`, r.URL.Path)
		}
	}))
	base = srv.URL
	return web, srv.URL
}

func TestRunSitemap(t *testing.T) {
	const n = 40
	tests := []struct {
		name         string
		max, depth   int
		maxPages     int
		wantPages    int // of /p/*
		wantLinked   bool
		wantSplitted bool
	}{
		{name: "seeds", wantPages: n, wantSplitted: true},
		{name: "capped per host", max: 7, wantPages: 7},
		{name: "capped by max-pages", maxPages: 5, wantPages: 4}, // the input line is one of the 5
		{name: "with depth", depth: 1, wantPages: n, wantLinked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			away, other := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `<urlset><url><loc>http://127.0.0.1:1/x</loc></url></urlset>`)
			}))
			web, base := sitemapSite(t, n, other.URL)
			h := newHarness(t, 2, 2)
			h.cfg.PerHost = 4 // as many as the two nodes fetch at once
			h.cfg.Sitemap, h.cfg.SitemapMax, h.cfg.Depth, h.cfg.MaxPages = true, tt.max, tt.depth, tt.maxPages
			if _, err := h.run([]string{base + "/start"}); err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := byURL(t, h.records())
			pages, workers := 0, map[string]bool{}
			for i := 1; i <= n; i++ {
				u := fmt.Sprintf("%s/p/%d", base, i)
				r, ok := got[u]
				if !ok {
					continue
				}
				pages++
				workers[r.Node] = true
				wantParent := base + "/sm1.xml.gz"
				if i > n/2 {
					wantParent = base + "/sm2.xml"
				}
				if r.Error != nil || r.Lastmod != fmt.Sprintf("2026-11-%02d", i%28+1) || r.Parent != wantParent || r.Depth != 0 {
					t.Errorf("%s: error %v, lastmod %q, parent %q, depth %d", u, r.Error, r.Lastmod, r.Parent, r.Depth)
				}
				if hits := web.Hits(fmt.Sprintf("/p/%d", i)); hits != 1 {
					t.Errorf("%s requested %d times", u, hits)
				}
			}
			if pages != tt.wantPages {
				t.Errorf("%d sitemap pages recorded, want %d", pages, tt.wantPages)
			}
			if r, ok := got[base+"/start"]; !ok || r.Line != 1 || r.Lastmod != "" {
				t.Errorf("input line: %+v", r)
			}
			_, linked := got[base+"/linked"]
			if linked != tt.wantLinked || (web.Hits("/linked") > 0) != tt.wantLinked {
				t.Errorf("/linked recorded %v, requested %d times; want %v", linked, web.Hits("/linked"), tt.wantLinked)
			}
			if extra := len(got) - pages - 1; linked && extra != 1 || !linked && extra != 0 {
				t.Errorf("%d records beyond the pages and the input", extra)
			}
			if away.Hits("/sitemap.xml") != 0 || away.Hits("/away") != 0 {
				t.Error("another host's sitemap or page was requested")
			}
			if tt.wantSplitted && len(workers) < 2 {
				t.Errorf("sitemap pages fetched by %d nodes, want both'", len(workers))
			}
			if hits := web.Hits("/sm2.xml"); hits > 1 || hits == 0 && tt.max == 0 && tt.maxPages == 0 {
				t.Errorf("sm2.xml, listed twice, requested %d times", hits)
			}
		})
	}
}

// A sitemap run interrupted after it checkpointed, and resumed: the resume
// reads the sitemaps again, and every URL they list still has exactly one
// record, with its lastmod.
func TestRunSitemapInterruptedAndResumed(t *testing.T) {
	const n = 200
	_, other := serve(t, http.NotFoundHandler())
	_, base := sitemapSite(t, n, other.URL)
	h := newHarness(t, 2, 2)
	h.cfg.Sitemap = true
	h.cfg.MaxQueued, h.cfg.CheckpointEvery = 16, 50*time.Millisecond
	h.cfg.Input = strings.NewReader(base + "/start\n")
	c, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	watched := make(chan struct{})
	interrupted := false
	go func() {
		defer close(watched)
		for ctx.Err() == nil {
			if _, err := os.Stat(filepath.Join(h.state, checkpointFile)); err == nil && lines(h.out) >= n/3 {
				interrupted = true
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	_, err = c.Run(ctx)
	cancel()
	<-watched
	if !interrupted || err == nil {
		t.Fatalf("the run ended (%v) before it was interrupted: %d records", err, lines(h.out))
	}
	before := lines(h.out)

	h.cfg.Resume, h.cfg.Input = true, nil
	h.launcher = newInprocLauncher(t, h.log)
	h.cfg.Launcher = h.launcher
	if _, err := h.run(nil); err != nil {
		t.Fatalf("resume: %v", err)
	}
	recs := byURL(t, h.records())
	if len(recs) != n+1 {
		t.Errorf("%d records, want %d (%d before the interruption)", len(recs), n+1, before)
	}
	for i := 1; i <= n; i++ {
		u := fmt.Sprintf("%s/p/%d", base, i)
		if r, ok := recs[u]; !ok || r.Error != nil || r.Lastmod == "" {
			t.Errorf("%s: %+v", u, r)
		}
	}
}

// A sitemap that redirects to another host is not read there: the sitemap
// speaks for its own host alone. Within the host, a redirect is followed.
func TestSitemapRedirects(t *testing.T) {
	elsewhere, other := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<urlset><url><loc>x</loc></url></urlset>`)
	}))
	_, srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away.xml":
			http.Redirect(w, r, other.URL+"/sitemap.xml", http.StatusFound)
		case "/moved.xml":
			http.Redirect(w, r, "/sitemap.xml", http.StatusMovedPermanently)
		default:
			io.WriteString(w, `<urlset/>`)
		}
	}))
	s := newSitemapFetcher("test", scrape.Config{Timeout: 5 * time.Second, AllowPrivateAll: true}, 0, newTestLog(t).logger(slog.LevelInfo, ""))
	tests := []struct {
		path string
		ok   bool
	}{{"/away.xml", false}, {"/moved.xml", true}}
	for _, tt := range tests {
		body, err := s.open(t.Context(), srv.URL+tt.path, true)
		if (err == nil) != tt.ok {
			t.Errorf("%s: error %v, want one: %v", tt.path, err, !tt.ok)
		}
		if body != nil {
			body.Close()
		}
	}
	if n := elsewhere.Hits("/sitemap.xml"); n != 0 {
		t.Errorf("another host's sitemap requested %d times", n)
	}
}
