package coordinator

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/internal/warctest"
	"github.com/scrape-cluster/scrape/scrape"
)

// A run with a WARC archives every page that got a response, its request
// beside it, the body as the site served it (cut at --max-body), across
// two workers; as the output, the WARC holds every input line's record
// once too.
func TestRunArchivesPages(t *testing.T) {
	const maxBody = 256 << 10
	tests := []struct {
		name   string
		output bool // the WARC is the output, not beside it
	}{
		{"beside", false},
		{"output", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site := warctest.NewSite(20)
			srv := httptest.NewServer(site)
			t.Cleanup(srv.Close)
			base := srv.URL

			h := newHarness(t, 2, 2)
			warc := filepath.Join(t.TempDir(), "crawl.warc.gz")
			if tt.output {
				h.cfg.Output = warc
			} else {
				h.cfg.Warc = warc
			}
			h.cfg.Fetch.MaxBody = maxBody
			h.cfg.Retries = 0
			dead := "http://" + testsite.ClosedPort(t) + "/"
			lines := []string{dead, "not a url", base + "/redirect"}
			for _, p := range site.Paths() {
				lines = append(lines, base+p)
			}
			if _, err := h.run(lines); err != nil {
				t.Fatal(err)
			}

			recs := warctest.Read(t, warc)
			if len(recs) == 0 || recs[0].Type != "warcinfo" {
				t.Fatalf("the WARC does not begin with warcinfo: %+v", recs[:min(len(recs), 1)])
			}
			responses := map[string]int{} // by target
			byID := map[string]warctest.Record{}
			var metas []warctest.Record
			for _, r := range recs[1:] {
				if r.Warcinfo != recs[0].ID {
					t.Errorf("%s %s names warcinfo %q, want %q", r.Type, r.Target, r.Warcinfo, recs[0].ID)
				}
				byID[r.ID] = r
				switch r.Type {
				case "response":
					responses[r.Target]++
					path := strings.TrimPrefix(r.Target, base)
					want := site.Body(path)
					if path == "/big" {
						if r.Truncated != "length" {
							t.Errorf("/big: WARC-Truncated %q, want length", r.Truncated)
						}
						want = want[:maxBody]
					}
					if !bytes.Equal(r.Payload, want) {
						t.Errorf("%s: payload of %d bytes differs from the %d the site served", path, len(r.Payload), len(want))
					}
					if wantStatus := map[bool]int{true: 404, false: 200}[path == "/missing"]; r.Status != wantStatus {
						t.Errorf("%s: status %d, want %d", path, r.Status, wantStatus)
					}
				case "metadata":
					metas = append(metas, r)
				}
			}
			for _, p := range site.Paths() {
				want := 1
				if p == "/page/0" {
					want = 2 // its own, and where /redirect led
				}
				if got := responses[base+p]; got != want {
					t.Errorf("%s: %d responses, want %d", p, got, want)
				}
			}
			if n := responses[dead]; n != 0 {
				t.Errorf("a page that got no response has %d response records", n)
			}
			requests := 0
			for _, r := range recs {
				if r.Type != "request" {
					continue
				}
				requests++
				resp, ok := byID[r.ConcurrentTo]
				if !ok || resp.Type != "response" || resp.Target != r.Target {
					t.Errorf("request %s is concurrent to %q, not its response", r.Target, r.ConcurrentTo)
				}
				if path := strings.TrimPrefix(r.Target, base); !bytes.HasPrefix(r.Block, []byte("GET "+path+" HTTP/1.1\r\n")) {
					t.Errorf("request %s: block %.80q", r.Target, r.Block)
				}
			}
			if want := len(site.Paths()) + 1; requests != want {
				t.Errorf("%d request records, want %d", requests, want)
			}

			if !tt.output {
				if len(metas) != 0 {
					t.Errorf("%d metadata records in a WARC beside the output", len(metas))
				}
				byURL(t, h.records()) // one record a line, in the output
				if got := len(h.records()); got != len(lines) {
					t.Errorf("%d records in the output for %d lines", got, len(lines))
				}
				return
			}
			seen := map[string]bool{}
			for _, m := range metas {
				var r scrape.Result
				if err := json.Unmarshal(m.Block, &r); err != nil {
					t.Fatalf("metadata record is not a record: %v: %.200q", err, m.Block)
				}
				if seen[r.URL] {
					t.Errorf("%s has two records", r.URL)
				}
				seen[r.URL] = true
				resp, hasResp := byID[m.ConcurrentTo]
				switch {
				case r.URL == dead || r.URL == "not a url":
					if r.Error == nil || m.ConcurrentTo != "" {
						t.Errorf("%s: record %+v concurrent to %q, want an error and no response", r.URL, r.Error, m.ConcurrentTo)
					}
				case !hasResp || resp.Type != "response":
					t.Errorf("%s: metadata concurrent to %q, not a response", r.URL, m.ConcurrentTo)
				}
			}
			for _, l := range lines {
				if !seen[l] {
					t.Errorf("%s has no record in the WARC", l)
				}
			}
		})
	}
}

// Bodies leave the workers only for an archive, and an archive is one
// file of its own.
func TestConfigArchive(t *testing.T) {
	tests := []struct {
		output, format, warc string
		archive              bool
		wantErr              string
	}{
		{output: "out.jsonl"},
		{output: "-"},
		{output: "crawl.warc.gz", archive: true},
		{output: "-", format: "warc", archive: true},
		{output: "out.jsonl", warc: "pages.warc.gz", archive: true},
		{output: "crawl.warc.gz", warc: "pages.warc.gz", wantErr: "WARC already"},
		{output: "out.jsonl", warc: "out.jsonl", wantErr: "file of its own"},
		{output: "out.jsonl", warc: "-", wantErr: "file of its own"},
	}
	for _, tt := range tests {
		c := Config{Output: tt.output, Format: tt.format, Warc: tt.warc, Input: strings.NewReader(""), LocalBin: "scrape"}
		err := c.setDefaults()
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("-o %s --warc %q: %v, want an error saying %q", tt.output, tt.warc, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("-o %s --warc %q: %v", tt.output, tt.warc, err)
		case c.Fetch.Archive != tt.archive:
			t.Errorf("-o %s --format %q --warc %q: archive %v, want %v", tt.output, tt.format, tt.warc, c.Fetch.Archive, tt.archive)
		}
	}
}

// A new run refuses to overwrite an existing --warc file, as it refuses an
// existing output, unless Force.
func TestCheckOutputRefusesExistingWarc(t *testing.T) {
	dir := t.TempDir()
	warc := filepath.Join(dir, "pages.warc.gz")
	if err := os.WriteFile(warc, []byte("earlier"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &Coordinator{cfg: Config{Output: filepath.Join(dir, "out.jsonl"), Warc: warc}}
	if err := c.checkOutput(); !errors.Is(err, ErrOutputExists) || !strings.Contains(err.Error(), warc) {
		t.Errorf("existing --warc: %v, want %v naming it", err, ErrOutputExists)
	}
	c.cfg.Force = true
	if err := c.checkOutput(); err != nil {
		t.Errorf("existing --warc with Force: %v", err)
	}
}
