package output

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/scrape"
)

var wantHeader = []string{
	"url", "line", "final_url", "status", "content_type", "title", "description",
	"headings", "links", "bytes", "duration_ms", "fetched_at", "node", "worker",
	"attempts", "depth", "parent", "error_kind", "error_message", "text",
}

// wantSinceHeader ends every header, after the optional columns.
var wantSinceHeader = []string{"etag", "last_modified", "sha256", "unchanged"}

func encode(t testing.TB, r scrape.Result) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readCSV parses data strictly: every row must have as many cells as the
// header, and quotes must be well formed.
func readCSV(t *testing.T, data []byte) [][]string {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("not valid CSV: %v\n%s", err, data)
	}
	return rows
}

// cells maps the header's column names to a row's cells.
func cells(header, row []string) map[string]string {
	m := make(map[string]string, len(header))
	for i, name := range header {
		m[name] = row[i]
	}
	return m
}

func TestCSVOutput(t *testing.T) {
	fetched := time.Date(2025, 3, 2, 10, 4, 5, 123000000, time.UTC)
	records := []scrape.Result{
		{
			URL: "https://example.com/a", Line: 3, FinalURL: "https://example.com/a/", Status: 200,
			ContentType: "text/html; charset=utf-8",
			Title:       `Quotes "and", commas`, Description: "two\r\nlines",
			Headings: []string{"First", "Second | with bar"},
			Links:    []string{"https://example.com/x", "https://example.com/y?a=1,2"},
			Fields: map[string][]string{
				"price":   {"€ 19.90"},
				"img":     {"https://example.com/1.jpg", "https://example.com/2.jpg", ""},
				"alt":     {"line one\nline two\r\nthree"},
				"ignored": {"not a column"},
			},
			Text:  "Some visible text.",
			Depth: 2, Parent: "https://example.com/",
			Bytes: 1234, DurationMS: 56, FetchedAt: fetched, Node: "node1", Worker: "node1:42", Attempts: 1,
		},
		{
			URL: "https://example.com/gone", Line: 4, FinalURL: "https://example.com/gone", Status: 404,
			ContentType: "text/html", Title: "Not found", Bytes: 10, DurationMS: 7, FetchedAt: fetched,
			Node: "node2", Worker: "node2:7", Attempts: 2,
			Fields: map[string][]string{"price": {}, "img": {}, "alt": {}},
			Error:  &scrape.Error{Kind: scrape.KindHTTPStatus, Message: "404 Not Found"},
		},
		{
			URL: "not a url", Line: 5, Attempts: 0,
			Error: &scrape.Error{Kind: scrape.KindInvalidURL, Message: `"not a url": missing scheme`},
		},
	}
	var buf bytes.Buffer
	w, err := Create(Stdout, CSV, &buf, Options{Fields: []string{"price", "img", "none", "alt"}})
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

	rows := readCSV(t, buf.Bytes())
	header := append(slices.Clone(wantHeader), "fields.price", "fields.img", "fields.none", "fields.alt")
	header = append(header, wantSinceHeader...)
	if !reflect.DeepEqual(rows[0], header) {
		t.Fatalf("header\n%q\nwant\n%q", rows[0], header)
	}
	if len(rows) != 1+len(records) {
		t.Fatalf("%d rows, want a header and %d records", len(rows), len(records))
	}
	want := []map[string]string{
		{
			"url": "https://example.com/a", "line": "3", "final_url": "https://example.com/a/", "status": "200",
			"content_type": "text/html; charset=utf-8", "title": `Quotes "and", commas`, "description": "two\nlines",
			"headings": "First\nSecond | with bar", "links": "https://example.com/x\nhttps://example.com/y?a=1,2",
			"bytes": "1234", "duration_ms": "56", "fetched_at": "2025-03-02T10:04:05.123Z", "node": "node1",
			"worker": "node1:42", "attempts": "1", "depth": "2", "parent": "https://example.com/",
			"error_kind": "", "error_message": "", "text": "Some visible text.",
			"fields.price": "€ 19.90", "fields.img": "https://example.com/1.jpg\nhttps://example.com/2.jpg\n",
			"fields.none": "", "fields.alt": "line one line two three",
		},
		{
			"url": "https://example.com/gone", "line": "4", "final_url": "https://example.com/gone", "status": "404",
			"content_type": "text/html", "title": "Not found", "description": "", "headings": "", "links": "",
			"bytes": "10", "duration_ms": "7", "fetched_at": "2025-03-02T10:04:05.123Z", "node": "node2",
			"worker": "node2:7", "attempts": "2", "depth": "", "parent": "",
			"error_kind": "http_status", "error_message": "404 Not Found", "text": "",
			"fields.price": "", "fields.img": "", "fields.none": "", "fields.alt": "",
		},
		{
			"url": "not a url", "line": "5", "final_url": "", "status": "", "content_type": "", "title": "",
			"description": "", "headings": "", "links": "", "bytes": "0", "duration_ms": "0", "fetched_at": "",
			"node": "", "worker": "", "attempts": "0", "depth": "", "parent": "",
			"error_kind": "invalid_url", "error_message": `"not a url": missing scheme`, "text": "",
			"fields.price": "", "fields.img": "", "fields.none": "", "fields.alt": "",
		},
	}
	for i, wantRow := range want {
		if got := cells(rows[0], rows[i+1]); !reflect.DeepEqual(got, wantRow) {
			for col := range wantRow {
				if got[col] != wantRow[col] {
					t.Errorf("record %d, %s = %q, want %q", i, col, got[col], wantRow[col])
				}
			}
		}
	}

	// Splitting a list cell gives the list back.
	got := cells(rows[0], rows[1])
	for col, list := range map[string][]string{
		"headings":   records[0].Headings,
		"links":      records[0].Links,
		"fields.img": records[0].Fields["img"],
	} {
		if split := strings.Split(got[col], ListSeparator); !reflect.DeepEqual(split, list) {
			t.Errorf("%s split to %q, want %q", col, split, list)
		}
	}
}

func TestCSVEmpty(t *testing.T) {
	for _, fields := range [][]string{nil, {"a", "b.c"}} {
		var buf bytes.Buffer
		w, err := Create(Stdout, CSV, &buf, Options{Fields: fields})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		header := strings.Join(wantHeader, ",")
		for _, f := range fields {
			header += ",fields." + f
		}
		header += "," + strings.Join(wantSinceHeader, ",")
		if got := buf.String(); got != header+"\n" {
			t.Errorf("with fields %q: %q, want just the header %q", fields, got, header)
		}
		if err := w.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}
}

// TestCSVFlushOnDisk: after each Flush, the file on disk holds the header and
// every row written so far, whole.
func TestCSVFlushOnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.csv")
	f, err := FormatFor(path, "")
	if err != nil || f != CSV {
		t.Fatalf("FormatFor(%q) = %q, %v", path, f, err)
	}
	w, err := Create(path, f, nil, Options{Fields: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(want int) {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rows := readCSV(t, data)
		if len(rows) != 1+want || rows[0][0] != "url" {
			t.Fatalf("file holds %d rows, want a header and %d:\n%s", len(rows), want, data)
		}
		if want > 0 && rows[want][0] != "https://example.com/"+strconv.Itoa(want-1) {
			t.Errorf("last row %q", rows[want])
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	check(0)
	for i := range 3 {
		r := scrape.Result{URL: "https://example.com/" + strconv.Itoa(i), Fields: map[string][]string{"x": {"a\nb", "c"}}}
		if err := w.Write(encode(t, r)); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		check(i + 1)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	check(3)
}

// TestCSVBadRecord: a record that is not JSON is an error, not a crash and
// not a broken row; the next good record is written as usual.
func TestCSVBadRecord(t *testing.T) {
	var buf bytes.Buffer
	w, err := Create(Stdout, CSV, &buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"not json", `{"url":`, `[1,2]`, `{"url": 5}`, ""} {
		if err := w.Write([]byte(bad)); err == nil || !strings.Contains(err.Error(), "csv: decode record") {
			t.Errorf("Write(%q) error %v, want a decode error", bad, err)
		}
	}
	if err := w.Write(encode(t, scrape.Result{URL: "https://example.com/"})); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rows := readCSV(t, buf.Bytes())
	if len(rows) != 2 || rows[1][0] != "https://example.com/" {
		t.Errorf("rows %q, want the header and the good record", rows)
	}
}

// TestCSVMemoryFlat writes 200,000 records and checks that the live heap
// barely moves: the writer keeps no record once it is written. Accumulating
// even the URLs alone would hold several MiB.
func TestCSVMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200,000 records")
	}
	w, err := Create(Stdout, CSV, io.Discard, Options{Fields: []string{"price", "img"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := sampleRecord(t)

	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	// One record first, so buffers that grow to their working size once are
	// part of the baseline.
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	before := heap()
	const n = 200_000
	for range n {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	after := heap()
	runtime.KeepAlive(w)
	const slack = 1 << 20
	if after > before+slack {
		t.Errorf("live heap grew from %d to %d bytes over %d records, want at most %d", before, after, n, slack)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func sampleRecord(t testing.TB) []byte {
	return encode(t, scrape.Result{
		URL: "https://example.com/products/lamp", Line: 123456, FinalURL: "https://example.com/products/lamp", Status: 200,
		ContentType: "text/html; charset=utf-8", Title: "Desk lamp", Description: "A lamp for a desk.",
		Headings: []string{"Desk lamp", "Details", "Reviews"},
		Links:    []string{"https://example.com/", "https://example.com/cart", "https://example.com/products/chair"},
		Fields:   map[string][]string{"price": {"€ 19.90"}, "img": {"https://example.com/1.jpg", "https://example.com/2.jpg"}},
		Bytes:    48213, DurationMS: 120, FetchedAt: time.Now().UTC(), Node: "node1", Worker: "node1:4242", Attempts: 1,
	})
}

func BenchmarkCSVWrite(b *testing.B) {
	w, err := Create(Stdout, CSV, io.Discard, Options{Fields: []string{"price", "img"}})
	if err != nil {
		b.Fatal(err)
	}
	rec := sampleRecord(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if err := w.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

// TestCSVDataLastmod: --structured and --sitemap add their columns after the
// fields, the data as the record's JSON in one cell; without them the
// columns are the usual ones.
func TestCSVDataLastmod(t *testing.T) {
	data := `{"jsonld":[{"@type":"Product","name":"Kettle, \"1.2 L\""}],"opengraph":{"og:title":["Kettle"]}}`
	rec := scrape.Result{URL: "https://example.com/p", Status: 200, Lastmod: "2026-11-30", Data: []byte(data),
		Fields: map[string][]string{"price": {"34.90"}}, SHA256: "0f"}
	tests := []struct {
		name string
		opt  Options
		want map[string]string // extra columns and their cells
	}{
		{"both", Options{Fields: []string{"price"}, Lastmod: true, Data: true}, map[string]string{LastmodColumn: "2026-11-30", DataColumn: data}},
		{"data", Options{Fields: []string{"price"}, Data: true}, map[string]string{DataColumn: data}},
		{"neither", Options{Fields: []string{"price"}}, map[string]string{}},
	}
	for _, tt := range tests {
		// The --since columns end every row.
		for _, col := range wantSinceHeader {
			tt.want[col] = ""
		}
		tt.want["sha256"] = "0f"
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := Create(Stdout, CSV, &buf, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(encode(t, rec)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			rows := readCSV(t, buf.Bytes())
			base := len(wantHeader) + 1
			if got := len(rows[0]) - base; got != len(tt.want) {
				t.Fatalf("header %q: %d extra columns, want %d", rows[0], got, len(tt.want))
			}
			if rows[1][base-1] != "34.90" {
				t.Errorf("fields.price moved: row %q", rows[1])
			}
			for i, col := range rows[0][base:] {
				if want, ok := tt.want[col]; !ok || rows[1][base+i] != want {
					t.Errorf("column %q = %q, want %q", col, rows[1][base+i], want)
				}
			}
			if tt.opt.Data {
				var v map[string]any
				if err := json.Unmarshal([]byte(cells(rows[0], rows[1])[DataColumn]), &v); err != nil {
					t.Errorf("data cell is no JSON: %v", err)
				}
			}
		})
	}
}
