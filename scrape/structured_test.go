package scrape

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// structuredOf extracts page with --structured and decodes its data.
func structuredOf(t testing.TB, page []byte, base string) map[string]any {
	t.Helper()
	p, err := Extract(mustParseURL(t, base), bytes.NewReader(page), ExtractOptions{Structured: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Data == nil {
		return nil
	}
	var v map[string]any
	d := json.NewDecoder(bytes.NewReader(p.Data))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("data is no JSON: %v\n%s", err, p.Data)
	}
	return v
}

// at walks v along path: map keys, and list indexes as numbers.
func at(t testing.TB, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: %T is no object", path, v)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at %v: no item %d in %v", path, k, v)
			}
			v = l[k]
		}
	}
	return v
}

func TestStructuredFixtures(t *testing.T) {
	tests := []struct {
		file string
		path []any
		want any
	}{
		// A product page: two JSON-LD blocks (an object and an array; a
		// third that is no JSON is skipped), Open Graph with the product:
		// namespace, a Twitter card, and a microdata Product with nested
		// items, URL values resolved against the page.
		{"product.html", []any{"jsonld", 0, "@type"}, "Product"},
		{"product.html", []any{"jsonld", 0, "offers", "price"}, json.Number("34.90")},
		{"product.html", []any{"jsonld", 1, "@type"}, "BreadcrumbList"},
		{"product.html", []any{"opengraph", "og:image"}, []any{"https://shop.example/img/kettle-front.jpg", "https://shop.example/img/kettle-side.jpg"}},
		{"product.html", []any{"opengraph", "product:price:amount"}, []any{"34.90"}},
		{"product.html", []any{"twitter", "twitter:card"}, []any{"summary_large_image"}},
		{"product.html", []any{"microdata", 0, "type"}, []any{"https://schema.org/Product"}},
		{"product.html", []any{"microdata", 0, "id"}, "https://shop.example/p/tk-12"},
		{"product.html", []any{"microdata", 0, "properties", "image"}, []any{"https://shop.example/img/kettle-front.jpg"}},
		{"product.html", []any{"microdata", 0, "properties", "description"}, []any{"A light aluminium kettle for two."}},
		{"product.html", []any{"microdata", 0, "properties", "aggregateRating", 0, "properties", "ratingValue"}, []any{"4.6"}},
		{"product.html", []any{"microdata", 0, "properties", "offers", 0, "properties"}, map[string]any{
			"priceCurrency": []any{"EUR"}, "price": []any{"34.90"}, "availability": []any{"https://schema.org/InStock"}}},
		// An article: an @graph block inside an HTML comment, flattened
		// to its items, each with the block's @context unless it has its
		// own; a repeated article:tag; a microdata item in a <template> is
		// not on the page.
		{"article.html", []any{"jsonld", 0, "@type"}, "NewsArticle"},
		{"article.html", []any{"jsonld", 0, "@context"}, "https://schema.org"},
		{"article.html", []any{"jsonld", 1, "name"}, "Anna Berg"},
		{"article.html", []any{"jsonld", 2, "@context"}, "https://schema.org/"},
		{"article.html", []any{"opengraph", "article:tag"}, []any{"rail", "travel"}},
		{"article.html", []any{"twitter", "twitter:creator"}, []any{"@ledger_anna"}},
		{"article.html", []any{"microdata"}, nil},
		// A recipe in microdata only: repeated properties in order, meta
		// and time values, a nested author, and a second top-level item.
		{"recipe.html", []any{"jsonld"}, nil},
		{"recipe.html", []any{"microdata", 0, "properties", "recipeIngredient"}, []any{"200 g red lentils", "1 onion", "1 lemon"}},
		{"recipe.html", []any{"microdata", 0, "properties", "prepTime"}, []any{"PT10M"}},
		{"recipe.html", []any{"microdata", 0, "properties", "cookTime"}, []any{"PT35M"}},
		{"recipe.html", []any{"microdata", 0, "properties", "author", 0, "properties", "name"}, []any{"Joe Pantry"}},
		{"recipe.html", []any{"microdata", 0, "properties", "nutrition", 0, "type"}, []any{"https://schema.org/NutritionInformation"}},
		{"recipe.html", []any{"microdata", 1, "properties", "url"}, []any{"https://shop.example/"}},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+strings.Trim(strings.ReplaceAll(strings.Trim(toString(tt.path), "[]"), " ", "."), "."), func(t *testing.T) {
			data := structuredOf(t, readFixture(t, filepath.Join("structured", tt.file)), "https://shop.example/p/kettle")
			if got := at(t, data, tt.path...); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%v = %#v, want %#v", tt.path, got, tt.want)
			}
		})
	}
}

func toString(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestStructuredOff: without --structured, no page gets data, and the fast
// scan still reads it.
func TestStructuredOff(t *testing.T) {
	page := readFixture(t, "structured/product.html")
	p, err := Extract(mustParseURL(t, testPageURL), bytes.NewReader(page), ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Data != nil {
		t.Errorf("data without Structured: %s", p.Data)
	}
	if p.Title == "" {
		t.Error("no title")
	}
}

func TestStructuredNone(t *testing.T) {
	if d := structuredOf(t, []byte(`<title>plain</title><meta name="description" content="x"><p>hi`), testPageURL); d != nil {
		t.Errorf("data of a page that states none: %v", d)
	}
}

// TestStructuredBounded: a page of many big JSON-LD items gets data within
// MaxData, marked truncated.
func TestStructuredBounded(t *testing.T) {
	var b strings.Builder
	big := strings.Repeat("x", 8<<10)
	for range maxItems + 10 {
		b.WriteString(`<script type="application/ld+json">{"@type":"Thing","name":"` + big + `"}</script>`)
	}
	p, err := Extract(mustParseURL(t, testPageURL), strings.NewReader(b.String()), ExtractOptions{Structured: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Data) > MaxData || len(p.Data) == 0 {
		t.Fatalf("data of %d bytes, want 1 to %d", len(p.Data), MaxData)
	}
	var s Structured
	if err := json.Unmarshal(p.Data, &s); err != nil {
		t.Fatal(err)
	}
	if !s.Truncated || len(s.JSONLD) == 0 || len(s.JSONLD) >= maxItems {
		t.Errorf("truncated %v with %d items", s.Truncated, len(s.JSONLD))
	}
}

func FuzzStructured(f *testing.F) {
	files, err := filepath.Glob("testdata/structured/*.html")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`<div itemscope><div itemprop="a b" itemscope><i itemprop=c>x</i></div></div>`))
	f.Add([]byte(`<script type="application/ld+json; charset=utf-8">{"@graph":[1,"a",{"@id":"x"}]}</script>`))
	base := mustParseURL(f, testPageURL)
	f.Fuzz(func(t *testing.T, page []byte) {
		p, err := Extract(base, bytes.NewReader(page), ExtractOptions{Structured: true})
		if err != nil {
			return // a document the parser refuses
		}
		if len(p.Data) > MaxData {
			t.Fatalf("data of %d bytes", len(p.Data))
		}
		if p.Data != nil && !json.Valid(p.Data) {
			t.Fatalf("data is no JSON: %s", p.Data)
		}
	})
}

// BenchmarkExtractStructured is what --structured costs on a product page
// against BenchmarkExtract's token scan: the tree, and the data read from it.
func BenchmarkExtractStructured(b *testing.B) {
	page := readFixture(b, "structured/product.html")
	base := mustParseURL(b, testPageURL)
	for _, opt := range []struct {
		name string
		opt  ExtractOptions
	}{{"off", ExtractOptions{}}, {"on", ExtractOptions{Structured: true}}} {
		b.Run(opt.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(page)))
			for b.Loop() {
				p, err := Extract(base, bytes.NewReader(page), opt.opt)
				if err != nil || (p.Data != nil) != opt.opt.Structured {
					b.Fatalf("data %s, err %v", p.Data, err)
				}
			}
		})
	}
}

// TestStructuredMetaBounded: a page of meta properties alone past MaxData
// still gets data within it.
func TestStructuredMetaBounded(t *testing.T) {
	var b strings.Builder
	v := strings.Repeat("v", maxTextLen)
	for i := range maxProps {
		for range maxValues {
			b.WriteString(`<meta property="og:p` + strconv.Itoa(i) + `" content="` + v + `">`)
			b.WriteString(`<meta name="twitter:p` + strconv.Itoa(i) + `" content="` + v + `">`)
		}
	}
	b.WriteString(`<script type="application/ld+json">{"@type":"Thing"}</script>`)
	p, err := Extract(mustParseURL(t, testPageURL), strings.NewReader(b.String()), ExtractOptions{Structured: true})
	if err != nil {
		t.Fatal(err)
	}
	var s Structured
	if err := json.Unmarshal(p.Data, &s); err != nil {
		t.Fatalf("data %.200s: %v", p.Data, err)
	}
	if len(p.Data) > MaxData || !s.Truncated || len(s.JSONLD) != 1 {
		t.Errorf("data of %d bytes, truncated %v, %d JSON-LD items", len(p.Data), s.Truncated, len(s.JSONLD))
	}
}
