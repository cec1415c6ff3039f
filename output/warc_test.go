package output

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nlnwa/gowarc/v3"

	"github.com/scrape-cluster/scrape/scrape"
)

// readWARC reads every record of the WARC at path with gowarc's reader,
// strictly: a record whose digest or length is wrong fails the test.
func readWARC(t *testing.T, path string) []warcRec {
	t.Helper()
	r, err := gowarc.NewWarcFileReader(path, 0, gowarc.WithStrictValidation())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []warcRec
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("record %d: %v", len(out)+1, err)
		}
		wr := rec.WarcRecord
		if _, err := wr.ValidateDigest(); err != nil {
			t.Fatalf("record %d: %v", len(out)+1, err)
		}
		got := warcRec{Type: wr.Type(), Header: wr.WarcHeader()}
		if pb, ok := wr.Block().(gowarc.PayloadBlock); ok {
			p, err := pb.PayloadBytes()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(p)
			got.Payload = string(b)
		}
		if hb, ok := wr.Block().(gowarc.HttpResponseBlock); ok {
			got.Status = hb.HttpStatusCode()
		}
		rec.Close()
		out = append(out, got)
	}
}

type warcRec struct {
	Type    gowarc.RecordType
	Header  *gowarc.WarcFields
	Payload string
	Status  int
}

func page(url, body string, truncated bool) Page {
	return Page{URL: url, Date: time.Date(2026, 12, 3, 21, 0, 0, 0, time.UTC), Exchange: &scrape.Exchange{
		Request:  "GET / HTTP/1.1\r\nHost: example.test\r\nUser-Agent: t\r\n\r\n",
		Response: "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n",
		Body:     body, Truncated: truncated, IP: "127.0.0.1",
	}}
}

func TestArchiveRecordsAndLinks(t *testing.T) {
	tests := []struct {
		name    string
		records bool // the run's output, or beside it
	}{
		{"output", true},
		{"beside", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "crawl.warc.gz")
			a, err := CreateArchive(path, nil, tt.records, [][2]string{{"software", "scrape/test"}})
			if err != nil {
				t.Fatal(err)
			}
			body := "\x00\x01binary\xff" + strings.Repeat("x", 5000)
			if err := a.WritePage([]byte(`{"url":"http://example.test/"}`), page("http://example.test/", body, true)); err != nil {
				t.Fatal(err)
			}
			if err := a.WritePage([]byte(`{"url":"http://bad.test/","error":{"kind":"dns"}}`), Page{URL: "http://bad.test/"}); err != nil {
				t.Fatal(err)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			recs := readWARC(t, path)
			var types []string
			for _, r := range recs {
				types = append(types, r.Type.String())
			}
			want := "warcinfo response request"
			if tt.records {
				want += " metadata metadata"
			}
			if got := strings.Join(types, " "); got != want {
				t.Fatalf("records %q, want %q", got, want)
			}
			info, resp, req := recs[0], recs[1], recs[2]
			id := info.Header.Get(gowarc.WarcRecordID)
			for _, r := range recs[1:] {
				if r.Header.Get(gowarc.WarcWarcinfoID) != id {
					t.Errorf("%s names warcinfo %q, want %q", r.Type, r.Header.Get(gowarc.WarcWarcinfoID), id)
				}
			}
			if resp.Payload != body || resp.Status != 200 {
				t.Errorf("response: status %d, payload of %d bytes, want 200 and the %d bytes written", resp.Status, len(resp.Payload), len(body))
			}
			for name, want := range map[string]string{
				gowarc.WarcTargetURI: "http://example.test/", gowarc.WarcTruncated: "length",
				gowarc.WarcIPAddress: "127.0.0.1", gowarc.WarcDate: "2026-12-03T21:00:00Z",
			} {
				if got := resp.Header.Get(name); got != want {
					t.Errorf("response %s = %q, want %q", name, got, want)
				}
			}
			if got, want := resp.Header.Get(gowarc.WarcPayloadDigest), fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(body))); got != want {
				t.Errorf("response payload digest %q, want %q", got, want)
			}
			if got := req.Header.Get(gowarc.WarcConcurrentTo); got != resp.Header.Get(gowarc.WarcRecordID) {
				t.Errorf("request concurrent to %q, want the response %q", got, resp.Header.Get(gowarc.WarcRecordID))
			}
			if tt.records {
				if got := recs[3].Header.Get(gowarc.WarcConcurrentTo); got != resp.Header.Get(gowarc.WarcRecordID) {
					t.Errorf("metadata concurrent to %q, want the response", got)
				}
				if recs[4].Header.Has(gowarc.WarcConcurrentTo) {
					t.Errorf("metadata of a page without response names a record")
				}
			}
		})
	}
}

// A resumed archive goes on after the last flush: what was written after
// it is gone, and the records after the resume name the file's warcinfo.
func TestArchiveResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crawl.warc.gz")
	a, err := Create(path, WARC, nil, Options{Warcinfo: [][2]string{{"software", "scrape/test"}}})
	if err != nil {
		t.Fatal(err)
	}
	pw := a.(PageWriter)
	if err := pw.WritePage([]byte(`{"n":1}`), page("http://example.test/1", "one", false)); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	pos := a.Pos()
	if err := pw.WritePage([]byte(`{"n":2}`), page("http://example.test/2", "lost", false)); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil { // as a crash after the write, before the commit
		t.Fatal(err)
	}
	if pos.Records != 1 {
		t.Fatalf("pos %+v, want 1 record", pos)
	}
	b, err := Resume(path, WARC, Options{}, pos)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.(PageWriter).WritePage([]byte(`{"n":3}`), page("http://example.test/3", "three", false)); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	recs := readWARC(t, path)
	var bodies []string
	for _, r := range recs {
		if r.Type == gowarc.Response {
			bodies = append(bodies, r.Payload)
		}
		if r.Type != gowarc.Warcinfo && r.Header.Get(gowarc.WarcWarcinfoID) != recs[0].Header.Get(gowarc.WarcRecordID) {
			t.Errorf("%s %s names another warcinfo", r.Type, r.Header.Get(gowarc.WarcTargetURI))
		}
	}
	if got := strings.Join(bodies, ","); got != "one,three" {
		t.Errorf("responses %q, want one,three", got)
	}
	var metas []string
	fi, _ := os.Stat(path)
	if err := ArchiveRecords(path, fi.Size(), func(rec []byte) error {
		metas = append(metas, string(rec))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(metas, ","); got != `{"n":1},{"n":3}` {
		t.Errorf("records %q", got)
	}
}

// A run that died before its first commit resumes at offset 0: the
// archive keeps its warcinfo record, which its records name.
func TestArchiveResumeAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pages.warc.gz")
	a, err := CreateArchive(path, nil, false, [][2]string{{"software", "scrape/test"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WritePage(nil, page("http://example.test/lost", "lost", false)); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := ResumeArchive(path, false, Pos{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WritePage(nil, page("http://example.test/again", "again", false)); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	recs := readWARC(t, path)
	var types []string
	for _, r := range recs {
		types = append(types, r.Type.String()+" "+r.Header.Get(gowarc.WarcTargetURI))
	}
	if got, want := strings.Join(types, ", "), "warcinfo , response http://example.test/again, request http://example.test/again"; got != want {
		t.Fatalf("records %q, want %q", got, want)
	}
	if recs[1].Header.Get(gowarc.WarcWarcinfoID) != recs[0].Header.Get(gowarc.WarcRecordID) {
		t.Errorf("the response names warcinfo %q, not the file's", recs[1].Header.Get(gowarc.WarcWarcinfoID))
	}
}

func TestFormatForWARC(t *testing.T) {
	for path, want := range map[string]Format{"crawl.warc.gz": WARC, "CRAWL.WARC.GZ": WARC, "x.gz": JSONL, "x.jsonl": JSONL} {
		if got, err := FormatFor(path, ""); err != nil || got != want {
			t.Errorf("FormatFor(%q) = %q, %v; want %q", path, got, err, want)
		}
	}
}

// BenchmarkArchivePage is the coordinator's cost of archiving one page of
// 12 KB with its record, as the run's output.
func BenchmarkArchivePage(b *testing.B) {
	a, err := CreateArchive(filepath.Join(b.TempDir(), "bench.warc.gz"), nil, true, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	p := page("http://example.test/page/1", strings.Repeat("<p>some words of a page</p>\n", 440), false)
	rec := []byte(`{"url":"http://example.test/page/1","status":200,"title":"A page"}`)
	b.SetBytes(int64(len(p.Exchange.Body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := a.WritePage(rec, p); err != nil {
			b.Fatal(err)
		}
	}
}
