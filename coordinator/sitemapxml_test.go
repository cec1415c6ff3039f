package coordinator

import (
	"bytes"
	"compress/gzip"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const sitemapNS = `xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"`

func gzipped(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// readAll is readSitemap's entries, whether the file was an index, and its
// error.
func readAll(src string, limit int) ([]sitemapEntry, bool, error) {
	var got []sitemapEntry
	isIndex := false
	err := readSitemap(strings.NewReader(src), func(index bool, e sitemapEntry) bool {
		isIndex = index
		got = append(got, e)
		return limit == 0 || len(got) < limit
	})
	return got, isIndex, err
}

func TestReadSitemap(t *testing.T) {
	urlset := `<?xml version="1.0" encoding="UTF-8"?>
<urlset ` + sitemapNS + ` xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc> https://a.test/p/1 </loc><lastmod>2026-11-30</lastmod><changefreq>daily</changefreq></url>
  <url><loc>https://a.test/p?x=1&amp;y=2</loc><image:image><image:loc>https://a.test/i.jpg</image:loc></image:image></url>
  <url><lastmod>2026-01-01</lastmod></url>
  <url><loc><![CDATA[https://a.test/p/3]]></loc><lastmod>2026-11-30T10:00:00+01:00</lastmod></url>
</urlset>`
	want := []sitemapEntry{
		{"https://a.test/p/1", "2026-11-30"},
		{"https://a.test/p?x=1&y=2", ""},
		{"https://a.test/p/3", "2026-11-30T10:00:00+01:00"},
	}
	index := `<sitemapindex ` + sitemapNS + `><sitemap><loc>https://a.test/s1.xml.gz</loc><lastmod>2026-11-01</lastmod></sitemap>
<sitemap><loc>https://a.test/s2.xml</loc></sitemap></sitemapindex>`
	tests := []struct {
		name    string
		src     string
		limit   int
		want    []sitemapEntry
		index   bool
		wantErr bool
	}{
		{name: "urlset", src: urlset, want: want},
		{name: "gzipped", src: gzipped(t, urlset), want: want},
		{name: "no namespace", src: `<urlset><url><loc>https://a.test/</loc></url></urlset>`, want: []sitemapEntry{{"https://a.test/", ""}}},
		{name: "index", src: index, index: true, want: []sitemapEntry{{"https://a.test/s1.xml.gz", "2026-11-01"}, {"https://a.test/s2.xml", ""}}},
		{name: "stopped early", src: urlset, limit: 2, want: want[:2]},
		// The entries before a fault are kept, and the fault is said.
		{name: "cut short", src: urlset[:strings.Index(urlset, "<url><lastmod>")], want: want[:2], wantErr: true},
		{name: "html", src: `<!doctype html><html><body>Not found</body></html>`, wantErr: true},
		{name: "empty", src: ``, wantErr: true},
		{name: "url outside an entry", src: `<urlset><loc>https://a.test/x</loc></urlset>`},
		{name: "a sitemap in a urlset is no entry", src: `<urlset><sitemap><loc>https://a.test/x</loc></sitemap></urlset>`},
		{name: "overlong loc", src: `<urlset><url><loc>https://a.test/` + strings.Repeat("x", maxSitemapValue) + `</loc></url></urlset>`,
			want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, isIndex, err := readAll(tt.src, tt.limit)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want one: %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) || isIndex != tt.index && len(got) > 0 {
				t.Errorf("got %q (index %v), want %q (index %v)", got, isIndex, tt.want, tt.index)
			}
		})
	}
	if _, _, err := readAll(`<feed/>`, 0); !errors.Is(err, errNotSitemap) {
		t.Errorf("a feed: %v, want errNotSitemap", err)
	}
}

// A gzip bomb unpacks no further than sitemapMaxBytes.
func TestReadSitemapBounded(t *testing.T) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(`<urlset><url><loc>https://a.test/1</loc></url><url><loc>`))
	zeros := make([]byte, 1<<20)
	for range sitemapMaxBytes>>20 + 4 {
		zw.Write(zeros)
	}
	zw.Close()
	got, _, err := readAll(b.String(), 0)
	if err == nil || len(got) != 1 {
		t.Errorf("%d entries, error %v; want the one before the bomb, and an error", len(got), err)
	}
}

func FuzzReadSitemap(f *testing.F) {
	f.Add(`<urlset ` + sitemapNS + `><url><loc>https://a.test/</loc><lastmod>2026-11-30</lastmod></url></urlset>`)
	f.Add(`<sitemapindex><sitemap><loc>https://a.test/s.xml</loc></sitemap></sitemapindex>`)
	f.Add(gzipped(f, `<urlset><url><loc>x</loc></url></urlset>`))
	f.Fuzz(func(t *testing.T, src string) {
		n := 0
		_ = readSitemap(strings.NewReader(src), func(_ bool, e sitemapEntry) bool {
			n++
			if e.loc == "" || len(e.loc) > maxSitemapValue || len(e.lastmod) > maxSitemapValue {
				t.Fatalf("entry %q", e)
			}
			return n < 100
		})
		if n > 100 {
			t.Fatalf("%d entries after fn said stop", n)
		}
	})
}
