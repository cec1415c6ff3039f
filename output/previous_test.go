package output

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/scrape-cluster/scrape/scrape"
)

// previousRecords are what an earlier run wrote: pages with validators and
// sums, one without, and a failure.
func previousRecords() []scrape.Result {
	return []scrape.Result{
		{URL: "http://x/a", FinalURL: "http://x/a/", Status: 200, ContentType: "text/html", Title: `A "quoted", title`,
			Description: "d", Headings: []string{"h1", "h2"}, Links: []string{"http://x/b", "http://x/c?d=1,2"},
			Fields: map[string][]string{"price": {"1", "2"}, "none": {}}, Text: "body text",
			ETag: `W/"a1"`, LastModified: "Sun, 01 Nov 2026 12:00:00 GMT", SHA256: strings.Repeat("0a", 32), Bytes: 100},
		{URL: "http://x/b", Status: 200, SHA256: strings.Repeat("0b", 32), Unchanged: true, Links: []string{"http://x/a"}},
		{URL: "http://x/gone", Status: 404, ETag: `"g"`, Error: scrape.Errorf(scrape.KindHTTPStatus, "404 Not Found")},
	}
}

// writePrevious writes records with this package's own writer, as a run
// would.
func writePrevious(t *testing.T, f Format, records []scrape.Result) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "previous."+string(f))
	w, err := Create(path, f, nil, Options{Fields: []string{"price", "none"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		if err := w.Write(encode(t, r)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPrevious: each format's output reads back, the validators and sums
// of every record by Scan, and each record whole at its offset.
func TestPrevious(t *testing.T) {
	records := previousRecords()
	for _, f := range []Format{JSON, JSONL, CSV} {
		t.Run(string(f), func(t *testing.T) {
			p, err := OpenPrevious(writePrevious(t, f, records))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			if p.Format() != f {
				t.Errorf("read as %s", p.Format())
			}
			var got []PreviousRecord
			if err := p.Scan(func(r PreviousRecord) error { got = append(got, r); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(records) {
				t.Fatalf("%d records, want %d", len(got), len(records))
			}
			for i, g := range got {
				w := records[i]
				if g.URL != w.URL || g.ETag != w.ETag || g.LastModified != w.LastModified || g.SHA256 != w.SHA256 || g.Failed != (w.Error != nil) {
					t.Errorf("record %d: %+v, want %+v", i, g, w)
				}
				back, err := p.ReadAt(g.Offset)
				if err != nil {
					t.Fatalf("record %d at %d: %v", i, g.Offset, err)
				}
				want := pageOf(w)
				if f == CSV {
					// A CSV row has the page's columns, and a cell
					// for each field.
					want.Error, want.Bytes = nil, 0
					for _, name := range []string{"price", "none"} {
						if want.Fields == nil {
							want.Fields = map[string][]string{}
						}
						if want.Fields[name] == nil {
							want.Fields[name] = []string{}
						}
					}
				}
				if back = pageOf(back); !reflect.DeepEqual(back, want) {
					t.Errorf("record %d read back:\n got %+v\nwant %+v", i, back, want)
				}
			}
		})
	}
}

// pageOf is what a re-crawl copies of a record.
func pageOf(r scrape.Result) scrape.Result {
	p := scrape.Result{URL: r.URL, FinalURL: r.FinalURL, Status: r.Status, ContentType: r.ContentType, Title: r.Title,
		Description: r.Description, Headings: r.Headings, Links: r.Links, Text: r.Text, ETag: r.ETag,
		LastModified: r.LastModified, SHA256: r.SHA256, Unchanged: r.Unchanged, Error: r.Error, Bytes: r.Bytes}
	for k, v := range r.Fields {
		if p.Fields == nil {
			p.Fields = map[string][]string{}
		}
		p.Fields[k] = v
	}
	return p
}

// TestPreviousMalformed: a file that is not an output names its line.
func TestPreviousMalformed(t *testing.T) {
	tests := []struct {
		name, content string
		wantLine      int
		wantMsg       string
	}{
		{"jsonl syntax", "{\"url\":\"http://x/a\"}\n{\"url\":\"http://x/b\"}\n{\"url\": oops}\n", 3, "invalid character"},
		{"jsonl cut short", "{\"url\":\"http://x/a\"}\n{\"url\":\"http://x/b\",\"ti", 2, "unexpected end of file"},
		{"jsonl without url", "{\"url\":\"http://x/a\"}\n\n{\"title\":\"t\"}\n", 3, "without url"},
		{"jsonl wrong type", "{\"url\":\"http://x/a\"}\n{\"url\":7}\n", 2, "cannot unmarshal"},
		{"json array", "[\n{\"url\":\"http://x/a\"},\n{\"url\":\"http://x/b\"},\n{\"url\":\"http://x/c\"\n]\n", 5, "invalid character"},
		{"json not closed", "[\n{\"url\":\"http://x/a\"},\n{\"url\":\"http://x/b\"}", 3, "unexpected end of file"},
		{"csv without url column", "title,status\nA,200\n", 1, "no url column"},
		{"csv ragged", "url,status\nhttp://x/a,200\nhttp://x/b\n", 3, "wrong number of fields"},
		{"csv bad quote", "url,status\nhttp://x/a,200\n\"http://x/b,200\nhttp://x/c,200\n", 3, "quote"},
		{"csv without url", "url,status\nhttp://x/a,200\n,200\n", 3, "without url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "old")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := OpenPrevious(path)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			err = p.Scan(func(PreviousRecord) error { return nil })
			var pe *PreviousError
			if !errors.As(err, &pe) || pe.Line != tt.wantLine || !strings.Contains(err.Error(), tt.wantMsg) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %v, want one naming %s, line %d, saying %q", err, path, tt.wantLine, tt.wantMsg)
			}
		})
	}
}

// TestPreviousEmpty: an empty file, or one of a run that wrote nothing,
// has no records and no error.
func TestPreviousEmpty(t *testing.T) {
	for _, content := range []string{"", "[\n\n]\n", "url,line\n"} {
		path := filepath.Join(t.TempDir(), "old")
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := OpenPrevious(path)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		if err := p.Scan(func(PreviousRecord) error { n++; return nil }); err != nil || n != 0 {
			t.Errorf("%q: %d records, %v", content, n, err)
		}
		p.Close()
	}
}
