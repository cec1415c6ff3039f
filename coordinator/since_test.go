package coordinator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/output"
	"github.com/scrape-cluster/scrape/scrape"
)

// newSinceSite serves a testsite of pages with validators (/fresh/) and
// without (/bare/).
func newSinceSite(t *testing.T, pages int) (*testsite.Site, *httptest.Server) {
	t.Helper()
	site := testsite.New(pages)
	srv := httptest.NewServer(site)
	t.Cleanup(srv.Close)
	t.Cleanup(site.Close)
	return site, srv
}

// TestRunSince: a second run given the first one's output, in each format,
// on two nodes: the unchanged pages with validators cost a 304 and no body
// and are written whole from the earlier record, marked unchanged; those
// without validators come whole and are marked unchanged by their sum; a
// page changed in between is fetched and written as new.
func TestRunSince(t *testing.T) {
	const pages, changed = 12, 3
	for _, f := range []output.Format{output.JSON, output.JSONL, output.CSV} {
		t.Run(string(f), func(t *testing.T) {
			site, srv := newSinceSite(t, pages)
			var lines []string
			for _, kind := range []string{"fresh", "bare"} {
				for n := range pages {
					lines = append(lines, fmt.Sprintf("%s/%s/%d", srv.URL, kind, n))
				}
			}

			first := newHarness(t, 2, 2)
			first.cfg.Output = strings.TrimSuffix(first.out, ".jsonl") + "." + string(f)
			if _, err := first.run(lines); err != nil {
				t.Fatalf("first run: %v", err)
			}
			before := readPrevious(t, first.cfg.Output)
			firstBytes := site.BodyBytes()
			site.Change(changed)

			second := newHarness(t, 2, 2)
			second.cfg.Since = first.cfg.Output
			sum, err := second.run(lines)
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			got := byURL(t, second.records())
			if len(got) != len(lines) {
				t.Fatalf("%d records, want %d", len(got), len(lines))
			}
			// All but the changed page of each kind.
			checkUnchangedCounted(t, sum, got, len(lines)-2)
			var fetched int64 // body bytes the records of the second run say they read
			for _, line := range lines {
				r := got[line]
				fetched += r.Bytes
				kind, n := pageKind(t, srv.URL, line)
				was := before[line]
				if r.Error != nil || r.SHA256 == "" || r.Title != testsite.Title(n) || len(r.Links) == 0 {
					t.Errorf("%s: %+v, want the page with its sum", line, r)
					continue
				}
				switch {
				case n == changed:
					if r.Unchanged || r.Status != 200 || r.SHA256 == was.SHA256 || r.Bytes == 0 {
						t.Errorf("%s, changed: status %d, unchanged %v, %d bytes, sum %s (was %s)", line, r.Status, r.Unchanged, r.Bytes, r.SHA256, was.SHA256)
					}
				case kind == "fresh":
					// From the earlier record: its page and sum.
					if !r.Unchanged || r.Status != 304 || r.Bytes != 0 || r.SHA256 != was.SHA256 || r.ETag != was.ETag || r.LastModified != was.LastModified ||
						r.Description != was.Description || !slices.Equal(r.Links, was.Links) || !slices.Equal(r.Headings, was.Headings) {
						t.Errorf("%s: %+v\nwant a 304 with the earlier record's page %+v", line, r, was)
					}
				default:
					if !r.Unchanged || r.Status != 200 || r.SHA256 != was.SHA256 || r.ETag != "" {
						t.Errorf("%s, no validators: status %d, unchanged %v, sum %s (was %s)", line, r.Status, r.Unchanged, r.SHA256, was.SHA256)
					}
				}
			}
			// What the site served the second time is what was read: the
			// pages without validators and the changed one, no more.
			served := site.BodyBytes() - firstBytes
			if served != fetched || served > firstBytes*2/3 {
				t.Errorf("second run: the site served %d body bytes, the records read %d; the first run %d", served, fetched, firstBytes)
			}
			t.Logf("body bytes served: %d the first run, %d the second", firstBytes, served)
		})
	}
}

// checkUnchangedCounted checks that the summary counts the records marked
// unchanged, want of them, in its line and its JSON.
func checkUnchangedCounted(t *testing.T, sum *Summary, recs map[string]scrape.Result, want int) {
	t.Helper()
	n := 0
	for _, r := range recs {
		if r.Unchanged {
			n++
		}
	}
	if n != want || sum.Unchanged != n {
		t.Errorf("%d records unchanged, the summary says %d; want %d", n, sum.Unchanged, want)
	}
	var line strings.Builder
	sum.Print(&line)
	if first, _, _ := strings.Cut(line.String(), "\n"); !strings.Contains(first, fmt.Sprintf(", %d unchanged)", want)) {
		t.Errorf("summary line %q does not count the %d unchanged records", first, want)
	}
	js, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), fmt.Sprintf(`"unchanged":%d,`, want)) {
		t.Errorf("summary JSON %s does not count the %d unchanged records", js, want)
	}
}

// TestRunSinceCrawl: a crawl given its earlier output follows the links of
// pages that answer 304, from their earlier records, so an unchanged site
// is crawled whole again without a body served.
func TestRunSinceCrawl(t *testing.T) {
	const pages = 30
	site, srv := newSinceSite(t, pages)
	crawl := func(h *harness) map[string]scrape.Result {
		t.Helper()
		h.cfg.Depth, h.cfg.SameHost = 4, true
		if _, err := h.run([]string{srv.URL + "/fresh/1"}); err != nil {
			t.Fatalf("run: %v", err)
		}
		return byURL(t, h.records())
	}
	h1 := newHarness(t, 2, 2)
	first := crawl(h1)
	firstBytes := site.BodyBytes()
	second := newHarness(t, 2, 2)
	second.cfg.Since = h1.out
	again := crawl(second)
	if len(again) != len(first) || len(first) < 5 {
		t.Fatalf("the crawl again found %d pages, the first %d", len(again), len(first))
	}
	for u, r := range again {
		w, ok := first[u]
		if !ok || !r.Unchanged || r.Status != 304 || r.Depth != w.Depth || !slices.Equal(r.Links, w.Links) {
			t.Errorf("%s: %+v\nwant the unchanged page the first crawl found: %+v", u, r, w)
		}
	}
	if served := site.BodyBytes() - firstBytes; served != 0 {
		t.Errorf("the unchanged site served %d body bytes the second time, want 0 (first time %d)", served, firstBytes)
	}
}

// TestRunSinceRefused: a --since output that is no output, or the run's own
// output, fails the run before it starts, saying why.
func TestRunSinceRefused(t *testing.T) {
	_, srv := newSinceSite(t, 2)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{\"url\":\"http://x/a\"}\n{\"url\":\"http://x/b\",\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, since, out string
		wantErr          string
	}{
		{"malformed", bad, "", "line 2"},
		{"missing", filepath.Join(dir, "none.jsonl"), "", "no such file"},
		{"its own output", bad, bad, "the run's own output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 1)
			h.cfg.Since, h.cfg.Force = tt.since, true
			if tt.out != "" {
				h.cfg.Output = tt.out
			}
			_, err := h.run([]string{srv.URL + "/fresh/0"})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
			}
			var pe *output.PreviousError
			if tt.name == "malformed" && !errors.As(err, &pe) {
				t.Errorf("error %T, want an *output.PreviousError", err)
			}
			if _, err := os.Stat(h.out); tt.out == "" && err == nil {
				t.Errorf("a run refused at the start left its output")
			}
		})
	}
}

// pageKind splits a URL of the site into its kind and page number.
func pageKind(t *testing.T, base, u string) (string, int) {
	t.Helper()
	var kind string
	var n int
	if _, err := fmt.Sscanf(strings.ReplaceAll(strings.TrimPrefix(u, base+"/"), "/", " "), "%s %d", &kind, &n); err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	return kind, n
}

// readPrevious reads an output back by URL, as --since does.
func readPrevious(t *testing.T, path string) map[string]scrape.Result {
	t.Helper()
	p, err := output.OpenPrevious(path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	recs := map[string]scrape.Result{}
	err = p.Scan(func(pr output.PreviousRecord) error {
		r, err := p.ReadAt(pr.Offset)
		recs[r.URL] = r
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// BenchmarkLoadSince reads a 100,000-record JSON lines output into the
// --since index and reports its memory per page (heap after, less before,
// with the file's records of about 600 bytes each) and the pace of the read:
//
//	go test ./coordinator -run '^$' -bench LoadSince -benchtime 3x
func BenchmarkLoadSince(b *testing.B) {
	const records = 100_000
	path := filepath.Join(b.TempDir(), "previous.jsonl")
	file, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	for i := range records {
		r := scrape.Result{URL: fmt.Sprintf("https://www.example.com/articles/2026/%d/some-title-of-the-page", i), Status: 200,
			Title: "Some title of the page", Description: strings.Repeat("words ", 20), Links: []string{"https://www.example.com/a", "https://www.example.com/b"},
			ETag: fmt.Sprintf(`W/"%x-5f3a2b1c"`, i), LastModified: "Sun, 01 Nov 2026 12:00:00 GMT", SHA256: strings.Repeat("ab", 32), Bytes: 12345}
		if buf, err = appendRecord(buf[:0], &r); err != nil {
			b.Fatal(err)
		}
		file.Write(append(buf, '\n'))
	}
	if err := file.Close(); err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		idx, err := loadSince(path)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if len(idx.pages) != records {
			b.Fatalf("%d pages indexed, want %d", len(idx.pages), records)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/records, "heap-B/page")
		idx.close()
	}
}
