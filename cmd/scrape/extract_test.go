package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/output"
)

// Selectors and text travel in the run's config to every worker, and CSV
// output gets a column per selector.
func TestSelectTextAndCSVThroughTheCluster(t *testing.T) {
	site := testsite.New(20)
	t.Cleanup(site.Close)
	base := serveHandler(t, "127.0.0.1", site)
	var urls strings.Builder
	for i := range 10 {
		fmt.Fprintf(&urls, "%s/page/%d\n", base, i)
	}
	urls.WriteString("not a url\n")
	out := filepath.Join(t.TempDir(), "out.csv")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := scrapeCmd(t, ctx, "run", "-f", writeFile(t, "mf", "localhost:2\n127.0.0.1:2\n"), writeFile(t, "urls.txt", urls.String()), "-o", out,
		"--select", "heading=h1", "--select", "nav=nav a@href", "--text")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scrape run: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("output is not CSV: %v", err)
	}
	if len(rows) != 12 {
		t.Fatalf("%d rows, want a header and 11 records", len(rows))
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, name := range []string{"url", "title", "error_kind", "text", output.FieldColumn("heading"), output.FieldColumn("nav")} {
		if _, ok := col[name]; !ok {
			t.Fatalf("no column %q in %q", name, rows[0])
		}
	}
	for _, row := range rows[1:] {
		u := row[col["url"]]
		if u == "not a url" {
			if row[col["error_kind"]] != "invalid_url" {
				t.Errorf("invalid line: %q", row)
			}
			continue
		}
		var n int
		fmt.Sscanf(u, base+"/page/%d", &n)
		if got := row[col[output.FieldColumn("heading")]]; got != fmt.Sprintf("Heading %d", n) {
			t.Errorf("%s: fields.heading %q", u, got)
		}
		nav := strings.Split(row[col[output.FieldColumn("nav")]], output.ListSeparator)
		for _, l := range site.Links(n) {
			if !slices.Contains(nav, base+l) {
				t.Errorf("%s: fields.nav %q lacks %s", u, nav, base+l)
			}
		}
		if text := row[col["text"]]; !strings.Contains(text, "Lorem ipsum") || strings.Contains(text, "<") {
			t.Errorf("%s: text %.80q", u, text)
		}
	}
}
