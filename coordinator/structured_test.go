package coordinator

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scrape-cluster/scrape/output"
	"github.com/scrape-cluster/scrape/scrape"
)

// structuredSite serves the product, article and recipe pages of
// scrape/testdata/structured.
func structuredSite(t *testing.T) string {
	t.Helper()
	_, srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, err := os.ReadFile(filepath.Join("..", "scrape", "testdata", "structured", filepath.Base(r.URL.Path)+".html"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	}))
	return srv.URL
}

// dataTypes are the @type of a record's JSON-LD items and the first type of
// its microdata items, in order.
func dataTypes(t *testing.T, data []byte) (ld, micro []string) {
	t.Helper()
	var s scrape.Structured
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("data %s: %v", data, err)
	}
	for _, it := range s.JSONLD {
		var v struct {
			Type string `json:"@type"`
		}
		json.Unmarshal(it, &v)
		ld = append(ld, v.Type)
	}
	for _, it := range s.Microdata {
		micro = append(micro, strings.TrimPrefix(it.Type[0], "https://schema.org/"))
	}
	return ld, micro
}

func TestRunStructured(t *testing.T) {
	base := structuredSite(t)
	want := map[string]string{ // page: its JSON-LD types | its microdata types
		"/product": "Product,BreadcrumbList|Product",
		"/article": "NewsArticle,Person,Organization|",
		"/recipe":  "|Recipe,WebSite",
	}
	lines := []string{base + "/product", base + "/article", base + "/recipe"}

	t.Run("jsonl", func(t *testing.T) {
		h := newHarness(t, 1, 1)
		h.cfg.Fetch.Structured = true
		if _, err := h.run(lines); err != nil {
			t.Fatalf("Run: %v", err)
		}
		got := byURL(t, h.records())
		for path, w := range want {
			r := got[base+path]
			if r.Error != nil || r.Data == nil {
				t.Errorf("%s: error %v, data %s", path, r.Error, r.Data)
				continue
			}
			ld, micro := dataTypes(t, r.Data)
			if g := strings.Join(ld, ",") + "|" + strings.Join(micro, ","); g != w {
				t.Errorf("%s: types %s, want %s", path, g, w)
			}
		}
	})

	t.Run("csv", func(t *testing.T) {
		h := newHarness(t, 1, 1)
		h.out = filepath.Join(t.TempDir(), "out.csv")
		h.cfg.Output, h.cfg.Fetch.Structured = h.out, true
		if _, err := h.run(lines); err != nil {
			t.Fatalf("Run: %v", err)
		}
		f, err := os.Open(h.out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rows, err := csv.NewReader(f).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		// The data column ends the optional ones, before the columns
		// every file has (--since's).
		col := slices.Index(rows[0], output.DataColumn)
		if col < 0 || rows[0][col+1] != "etag" {
			t.Fatalf("header %q: no data column before the --since ones", rows[0])
		}
		for _, row := range rows[1:] {
			path := strings.TrimPrefix(row[0], base)
			ld, micro := dataTypes(t, []byte(row[col]))
			if g := strings.Join(ld, ",") + "|" + strings.Join(micro, ","); g != want[path] {
				t.Errorf("%s: types %s, want %s", path, g, want[path])
			}
		}
		if len(rows) != 1+len(lines) {
			t.Errorf("%d rows, want a header and %d", len(rows), len(lines))
		}
	})
}
