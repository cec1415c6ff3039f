package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/scrape-cluster/scrape/internal/testcluster"
	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/internal/warctest"
)

// scrape run with a WARC, on two worker processes: -o crawl.warc.gz holds
// every line's record and every response; --warc beside -o holds the
// requests and responses. Each response's payload is the body the site
// served, cut at --max-body.
func TestRunWARC(t *testing.T) {
	const maxBody = 256 << 10
	tests := []struct {
		name string
		args func(dir string) (warc, out string, args []string)
	}{
		{"output", func(dir string) (string, string, []string) {
			w := filepath.Join(dir, "crawl.warc.gz")
			return w, "", []string{"-o", w}
		}},
		{"beside", func(dir string) (string, string, []string) {
			w, o := filepath.Join(dir, "pages.warc.gz"), filepath.Join(dir, "out.jsonl")
			return w, o, []string{"--warc", w, "-o", o}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site := warctest.NewSite(30)
			// 20 ms a page, so that both nodes take some of them.
			base := serveHandler(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(20 * time.Millisecond)
				site.ServeHTTP(w, r)
			}))
			lines := []string{base + "/redirect", "http://" + testsite.ClosedPort(t) + "/"}
			for _, p := range site.Paths() {
				lines = append(lines, base+p)
			}
			warc, out, args := tt.args(t.TempDir())
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := scrapeCmd(t, ctx, append([]string{"run", "-f", writeFile(t, "mf", "localhost:2\n127.0.0.1:2\n"),
				writeFile(t, "urls.txt", strings.Join(lines, "\n")+"\n"), "--max-body", "256KiB", "--retries", "0", "-q"}, args...)...)
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("scrape run: %v\n%s", err, msg)
			}

			recs := warctest.Read(t, warc)
			if len(recs) == 0 || recs[0].Type != "warcinfo" || !bytes.Contains(bytes.ToLower(recs[0].Block), []byte("software: scrape/")) {
				t.Fatalf("no warcinfo record first: %+v", recs[:min(1, len(recs))])
			}
			responses, requests := map[string][]warctest.Record{}, map[string]int{}
			nodes := map[string]bool{}
			var metas int
			for _, r := range recs[1:] {
				switch r.Type {
				case "response":
					responses[strings.TrimPrefix(r.Target, base)] = append(responses[strings.TrimPrefix(r.Target, base)], r)
				case "request":
					requests[r.ConcurrentTo]++
				case "metadata":
					metas++
					var rec record
					if err := json.Unmarshal(r.Block, &rec); err != nil {
						t.Fatalf("metadata: %v", err)
					}
					nodes[rec.Node] = true
				}
			}
			for _, p := range site.Paths() {
				want := 1
				if p == "/page/0" {
					want = 2 // and /redirect's final response
				}
				if len(responses[p]) != want {
					t.Errorf("%s: %d responses, want %d", p, len(responses[p]), want)
					continue
				}
				r := responses[p][0]
				body := site.Body(p)
				if len(body) > maxBody {
					body = body[:maxBody]
					if r.Truncated != "length" {
						t.Errorf("%s: cut at --max-body without WARC-Truncated", p)
					}
				}
				if !bytes.Equal(r.Payload, body) {
					t.Errorf("%s: payload of %d bytes is not the %d the site served", p, len(r.Payload), len(body))
				}
				if requests[r.ID] != 1 {
					t.Errorf("%s: %d requests concurrent to its response, want 1", p, requests[r.ID])
				}
			}
			if out == "" {
				if metas != len(lines) {
					t.Errorf("%d records in the WARC for %d lines", metas, len(lines))
				}
				if !nodes["localhost"] || !nodes["127.0.0.1"] {
					t.Errorf("records from nodes %v, want both", nodes)
				}
				return
			}
			if metas != 0 {
				t.Errorf("%d metadata records in a WARC beside -o", metas)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(readJSONL(t, data)); got != len(lines) {
				t.Errorf("%d records in %s for %d lines", got, out, len(lines))
			}
		})
	}
}

// A run killed mid-crawl and resumed archives every page once: the WARC
// goes on from the last commit, as the output does. As the output, it
// holds every page's record once too, and the resume's summary counts the
// records from before it, read back from the WARC.
func TestRunWARCResume(t *testing.T) {
	const pages = 400
	tests := []struct {
		name   string
		output bool // -o crawl.warc.gz, not --warc beside -o
	}{
		{"beside", false},
		{"output", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site := testsite.New(pages)
			t.Cleanup(site.Close)
			var hits atomic.Int64
			// Pages of 100 KB: the archive's buffer then reaches the
			// file between two commits, and a kill leaves records past
			// the last one, which a resume must cut off.
			noise := make([]byte, 100<<10) // random letters: gzip does not make them small
			for i := range noise {
				noise[i] = 'a' + byte(rand.IntN(26))
			}
			pad := "<!--" + string(noise) + "-->"
			slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(10 * time.Millisecond)
				site.ServeHTTP(w, r)
				if strings.HasPrefix(r.URL.Path, "/page/") {
					io.WriteString(w, pad)
				}
				hits.Add(1)
			})
			base := serveHandler(t, "127.0.0.1", slow)
			dir := t.TempDir()
			out, warc, state := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "pages.warc.gz"), filepath.Join(dir, "state")
			dest := []string{"-o", out, "--warc", warc}
			if tt.output {
				dest = []string{"-o", warc}
			}
			cmd := scrapeCmd(t, t.Context(), append([]string{"run", "-f", writeFile(t, "mf", "localhost:8\n"), writeFile(t, "urls.txt", base+"/page/0\n"),
				"--state", state, "--depth", "50", "--same-host", "--per-host", "8", "-q"}, dest...)...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// The pages fetched, not the records written: a WARC being
			// written is not read back whole.
			waitFor(t, 60*time.Second, "half the pages", func() bool { return hits.Load() >= pages/2 })
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			if n := hits.Load(); n >= pages {
				t.Fatalf("the crawl finished before it was killed (%d pages fetched)", n)
			}

			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			stats := filepath.Join(dir, "stats.json")
			if msg, err := scrapeCmd(t, ctx, "run", "--resume", state, "-q", "--stats", stats).CombinedOutput(); err != nil {
				t.Fatalf("resume: %v\n%s", err, msg)
			}
			responses, records := map[string]int{}, map[string]int{}
			for _, r := range warctest.Read(t, warc) {
				switch r.Type {
				case "response":
					responses[r.Target]++
				case "metadata":
					var rec record
					if err := json.Unmarshal(r.Block, &rec); err != nil {
						t.Fatal(err)
					}
					records[rec.URL]++
				}
			}
			for n := range pages {
				u := fmt.Sprintf("%s/page/%d", base, n)
				if responses[u] != 1 {
					t.Errorf("%s: %d responses, want 1", u, responses[u])
				}
				if tt.output && records[u] != 1 {
					t.Errorf("%s: %d records, want 1", u, records[u])
				}
			}
			if len(responses) != pages || (tt.output && len(records) != pages) {
				t.Errorf("%d pages archived, %d records; want %d", len(responses), len(records), pages)
			}
			var sum struct{ Records, Earlier int }
			data, err := os.ReadFile(stats)
			if err == nil {
				err = json.Unmarshal(data, &sum)
			}
			if err != nil || sum.Records != pages || sum.Earlier == 0 || sum.Earlier >= pages {
				t.Errorf("resume's summary: %+v, %v; want %d records, some of them earlier", sum, err, pages)
			}
		})
	}
}

// Through a NATS of the default largest message (1 MiB), a body larger
// than that is archived cut to fit, with WARC-Truncated, and its page's
// record stands: the batch is not refused, and the run ends.
func TestRunWARCNATSMaxPayload(t *testing.T) {
	_, url := startNATS(t, func(o *server.Options) { o.MaxPayload = 0 }) // the server's default
	big := bytes.Repeat([]byte("0123456789abcdef"), (2<<20)/16)
	base := serveHandler(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.URL.Path == "/big" {
			w.Write(big)
			return
		}
		fmt.Fprintf(w, "small %s", r.URL.Path)
	}))
	dir := t.TempDir()
	warc, out := filepath.Join(dir, "pages.warc.gz"), filepath.Join(dir, "out.jsonl")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := scrapeCmd(t, ctx, "run", "-q", "-f", writeFile(t, "mf", "localhost:2\n127.0.0.1:2\n"),
		writeFile(t, "urls.txt", base+"/big\n"+base+"/a\n"+base+"/b\n"), "--nats", url, "--max-body", "4MiB", "--warc", warc, "-o", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scrape run: %v\n%s", err, msg)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range readJSONL(t, data) {
		if r.URL == base+"/big" && r.Bytes != int64(len(big)) {
			t.Errorf("/big: record says %d bytes, the site sent %d", r.Bytes, len(big))
		}
	}
	got := map[string]warctest.Record{}
	for _, r := range warctest.Read(t, warc) {
		if r.Type == "response" {
			got[strings.TrimPrefix(r.Target, base)] = r
		}
	}
	if r := got["/big"]; r.Truncated != "length" || len(r.Payload) == 0 || len(r.Payload) >= 1<<20 || !bytes.HasPrefix(big, r.Payload) {
		t.Errorf("/big: %d bytes archived, truncated %q; want a prefix under 1 MiB, marked", len(r.Payload), r.Truncated)
	}
	for _, p := range []string{"/a", "/b"} {
		if r := got[p]; string(r.Payload) != "small "+p || r.Truncated != "" {
			t.Errorf("%s: archived %q (truncated %q)", p, r.Payload, r.Truncated)
		}
	}
}

// On three hosts over ssh, --warc archives every page once, whichever node
// fetched it, with the body the site served.
func TestClusterWARC(t *testing.T) {
	c := testcluster.New(t, 4) // node4 only serves the site
	const pages = 40
	base := serveSiteIn(t, c.Hosts[3], pages)
	urls := slowURLs(base, 20, 120)
	warc := filepath.Join(t.TempDir(), "pages.warc.gz")
	r := startClusterRun(t, c, "node1:2\nnode2:2\nnode3:2\n", urls, "--warc", warc)
	if code := r.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s", code, r.stderr.String())
	}
	perNode := map[string]int{}
	for _, rec := range r.checkComplete(t) {
		perNode[rec.Node]++
	}
	if len(perNode) != 3 {
		t.Errorf("records from nodes %v, want node1..node3", perNode)
	}
	// The site's pages, served here by the same code, are what node4
	// served: a page depends on its number alone.
	local := testsite.New(pages)
	t.Cleanup(local.Close)
	seen := map[string]int{}
	for _, rec := range warctest.Read(t, warc) {
		if rec.Type != "response" {
			continue
		}
		seen[rec.Target]++
		path := strings.TrimPrefix(rec.Target, base)
		var ms, n int
		if _, err := fmt.Sscanf(path, "/slow/%d/%d", &ms, &n); err != nil {
			t.Errorf("a response for %s, not an input URL", rec.Target)
			continue
		}
		w := httptest.NewRecorder()
		local.ServeHTTP(w, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/page/%d", n%pages), nil))
		if !bytes.Equal(rec.Payload, w.Body.Bytes()) {
			t.Errorf("%s: archived %d bytes, not the %d served", path, len(rec.Payload), w.Body.Len())
		}
	}
	for _, u := range urls {
		if seen[u] != 1 {
			t.Errorf("%s: %d responses, want 1", u, seen[u])
		}
	}
}
