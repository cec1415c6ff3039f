package coordinator

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/scrape"
)

func TestAppendRecord(t *testing.T) {
	at := time.Date(2026, 12, 3, 18, 0, 0, 120000000, time.UTC)
	tests := []struct {
		name string
		r    scrape.Result
	}{
		{"empty", scrape.Result{}},
		{"a page", scrape.Result{URL: "http://x/a?b=1&c=<2>", Line: 7, FinalURL: "http://x/b", Status: 200, ContentType: "text/html",
			Title: "Tom & \"Jerry\"\n\t\\", Description: "\u2028\u2029 \x00\x1f\x7f é 日本", Headings: []string{"", "h"}, Links: []string{"http://x/c"},
			Bytes: 12345, DurationMS: 17, FetchedAt: at, Node: "n1", Worker: "n1:9", Attempts: 2}},
		{"fields and text", scrape.Result{URL: "u", Fields: map[string][]string{"b": {"1", ""}, "a": nil, "c": {}}, Text: "t", Depth: 2, Parent: "p"}},
		{"an error", scrape.Result{URL: "u", Error: scrape.Errorf(scrape.KindTimeout, "slow </script>"), Attempts: 3}},
		{"rendered", scrape.Result{URL: "u", Attempts: 2, Rendered: true, Error: scrape.Errorf(scrape.KindHTTPStatus, "404")}},
		{"not rendered", scrape.Result{URL: "u", Attempts: 1, NeedsRender: "script-only <body>"}},
		{"invalid UTF-8", scrape.Result{URL: "\xff\xfe", Title: "a\xc3(b", Description: "\xed\xa0\x80"}},
		{"empty lists", scrape.Result{URL: "u", Headings: []string{}, Links: []string{}, Fields: map[string][]string{}}},
		{"negative numbers", scrape.Result{URL: "u", Line: -1, Status: -2, Bytes: -3, DurationMS: -4, Depth: -5, Attempts: -6}},
		{"data and lastmod", scrape.Result{URL: "u", Data: []byte(` {"jsonld": [ {"name":"<b>&\u2028"} ],"n":1.50} `), Lastmod: "2026-01-02"}},
		{"since", scrape.Result{URL: "u", Status: 304, ETag: `W/"<a&b>"`, LastModified: "Wed, 02 Dec 2026 10:00:00 GMT", SHA256: "00ff", Unchanged: true, Lastmod: "x"}},
		{"data that is no JSON", scrape.Result{URL: "u", Data: []byte(`{"a":`)}},
		{"a zone", scrape.Result{URL: "u", FetchedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sameAsMarshal(t, &tt.r)
		})
	}
}

func sameAsMarshal(t *testing.T, r *scrape.Result) {
	t.Helper()
	want, werr := json.Marshal(r)
	got, err := appendRecord([]byte("prefix"), r)
	if (err != nil) != (werr != nil) {
		t.Fatalf("error %v, json.Marshal's %v", err, werr)
	}
	if werr == nil && string(got) != "prefix"+string(want) {
		t.Errorf("\n got %s\nwant prefix%s", got, want)
	}
}

// FuzzAppendRecord: whatever a worker puts in a record's strings, the
// coordinator writes the bytes json.Marshal would.
func FuzzAppendRecord(f *testing.F) {
	f.Add("http://x/", "Title <b>", "\u2028\xff", "link", "k", int64(1), int64(0), `{"a":[1,"<"]}`)
	f.Fuzz(func(t *testing.T, url, title, desc, link, key string, n, nanos int64, data string) {
		r := scrape.Result{URL: url, Title: title, Description: desc, Links: []string{link, title}, Headings: []string{desc},
			Fields: map[string][]string{key: {link}, desc: nil}, Text: title + desc, Bytes: n, Status: int(n % 1000),
			FetchedAt: time.Unix(0, nanos).UTC(), Error: &scrape.Error{Kind: key, Message: desc}, Data: []byte(data), Lastmod: link,
			ETag: title, LastModified: desc, SHA256: key, Unchanged: n%2 == 0, NeedsRender: desc}
		sameAsMarshal(t, &r)
	})
}
