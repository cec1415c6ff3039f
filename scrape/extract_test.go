package scrape

import (
	"bytes"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

const testPageURL = "https://example.com/dir/page.html"

func mustParseURL(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := ParseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExtract(t *testing.T) {
	tests := []struct {
		file        string
		contentType string // as a server would send it; drives charset decoding
		want        Page
	}{
		{
			file: "basic.html",
			want: Page{
				Title:       "Example Domain",
				Description: "An example page for tests.",
				Headings:    []string{"Welcome", "Section one", "Detail"},
				Links: []string{
					"https://www.iana.org/domains/example",
					"https://example.com/about",
					"https://example.com/dir/next.html",
					"https://example.com/up/",
					"http://other.example.net/x?y=1&z=2",
				},
			},
		},
		{
			file: "base.html",
			want: Page{
				Title: "Base",
				// Only the first <base href> counts.
				Links: []string{
					"https://cdn.example.org/docs/v2/intro.html",
					"https://cdn.example.org/docs/v1/old.html",
					"https://cdn.example.org/root",
					"https://proto.example.com/rel",
					"https://cdn.example.org/docs/v2/?q=search",
					"https://absolute.example/",
				},
			},
		},
		{
			file: "base_relative.html",
			want: Page{
				Title: "Relative base",
				Links: []string{"https://example.com/static/a.html", "https://example.com/static/b.html"},
			},
		},
		{
			file: "base_javascript.html",
			want: Page{Title: "Bad base", Links: []string{"https://example.com/dir/kept.html"}},
		},
		{
			file: "duplicates.html",
			want: Page{
				Title: "Duplicates",
				Links: []string{"https://example.com/one", "https://example.com/two", "https://example.com/three"},
			},
		},
		{
			file: "fragments.html",
			want: Page{
				Title: "Fragments",
				Links: []string{"https://example.com/guide", "https://example.com/dir/other.html", "https://example.org/faq?x=1"},
			},
		},
		{
			file: "nonhttp.html",
			want: Page{
				Title: "Not http",
				Links: []string{
					"https://ok.example/kept",
					"https://example.com/spaced",
					"https://example.com/wrapped/path",
					"https://Upper.Example/Path",
				},
			},
		},
		{
			file: "og.html",
			want: Page{Title: "Open Graph title", Description: "From Open Graph"},
		},
		{
			file: "description_precedence.html",
			want: Page{Title: "Has both", Description: "From the description meta"},
		},
		{
			file: "whitespace.html",
			want: Page{
				Title:       "Lots of whitespace here",
				Description: "spread over lines",
				Headings:    []string{"Nested inline bold text", "Line break", "Block children", "Hello", "With script", "A linked heading"},
				Links:       []string{"https://example.com/in-heading"},
			},
		},
		{
			file: "malformed.html",
			want: Page{
				Title:       "Malformed & <b>odd</b>",
				Description: "unquoted",
				// An unclosed <h2> runs to the end of the document, and the
				// link in the broken table is moved out in front of it.
				Headings: []string{"Heading that never closes", "Next heading three five no-js fallback four"},
				Links: []string{
					"https://example.com/unquoted",
					"https://example.com/single",
					"https://example.com/after-headings",
					"https://example.com/stray-end",
					"https://example.com/noscript",
					"https://example.com/in-table",
				},
			},
		},
		{
			file: "unclosed_title.html",
			want: Page{Title: `Everything after this is title text, as in a browser <body><h1>Never a heading</h1><a href="/never-a-link">x</a>`},
		},
		{
			// Declared only by <meta charset>; 0x97 and 0x93 are Windows-1252
			// punctuation, control characters in true Latin-1.
			file: "windows1252.html",
			want: Page{
				Title:       "Café — crème brûlée",
				Description: "“Quoted” naïve résumé",
				Headings:    []string{"£ 5 • € 6"},
				Links:       []string{"https://example.com/men%C3%BC"},
			},
		},
		{
			// The header outranks the document's own <meta>.
			file:        "windows1252.html",
			contentType: "text/html; charset=windows-1252",
			want: Page{
				Title:       "Café — crème brûlée",
				Description: "“Quoted” naïve résumé",
				Headings:    []string{"£ 5 • € 6"},
				Links:       []string{"https://example.com/men%C3%BC"},
			},
		},
		{
			// Declared only by <meta>, in a charset no fallback would guess.
			file: "koi8r_meta.html",
			want: Page{Title: "Привет, мир", Headings: []string{"Заголовок"}},
		},
		{
			file: "invalid_utf8.html",
			want: Page{Title: "Bad \uFFFD bytes \uFFFD", Headings: []string{"ok \uFFFD"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file+tt.contentType, func(t *testing.T) {
			body := readFixture(t, tt.file)
			got, err := Extract(mustParseURL(t, testPageURL), utf8Reader(body, tt.contentType), ExtractOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Extract(%s)\n got %#v\nwant %#v", tt.file, got, tt.want)
			}
		})
	}
}

func TestExtractLimits(t *testing.T) {
	var page bytes.Buffer
	page.WriteString("<title>" + strings.Repeat("long ", 1000) + "</title>")
	page.WriteString(`<a href="/` + strings.Repeat("y", maxLinkLen) + `">too long</a>`)
	for i := range maxLinks + 10 {
		page.WriteString(`<a href="/p/` + strconv.Itoa(i) + `">x</a>`)
	}
	for range maxHeadings + 10 {
		page.WriteString("<h2>h</h2>")
	}

	got, err := Extract(mustParseURL(t, testPageURL), &page, ExtractOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Links) != maxLinks {
		t.Errorf("got %d links, want the cap of %d", len(got.Links), maxLinks)
	}
	if len(got.Links) > 0 && got.Links[0] != "https://example.com/p/0" {
		t.Errorf("first link %.40q..., want the over-long one skipped", got.Links[0])
	}
	if len(got.Headings) != maxHeadings {
		t.Errorf("got %d headings, want the cap of %d", len(got.Headings), maxHeadings)
	}
	if len(got.Title) > maxTextLen || !strings.HasPrefix(got.Title, "long long") {
		t.Errorf("title of %d bytes, want a prefix of at most %d", len(got.Title), maxTextLen)
	}
}

// TestExtractParseLimit: a document the HTML parser refuses, nested deeper
// than its 512 open elements, is an *Error of KindParseLimit that comes with
// what the token scan read of it.
func TestExtractParseLimit(t *testing.T) {
	head := `<title>Deep</title><meta name=description content=D><h1>Top</h1><a href=/a>a</a>`
	deep := strings.Repeat("<div>", 600)
	after := `<h2>After</h2><a href=/b>b</a>`
	read := Page{Title: "Deep", Description: "D", Headings: []string{"Top"}, Links: []string{"https://example.com/a"}}
	whole := Page{Title: "Deep", Description: "D", Headings: []string{"Top", "After"},
		Links: []string{"https://example.com/a", "https://example.com/b"}}
	tests := []struct {
		name    string
		doc     string
		opt     ExtractOptions
		want    Page
		refused bool // whether the parser's refusal is the error
	}{
		// With nothing that needs the tree, the scan reads it all itself.
		{"scan alone", head + deep + after, ExtractOptions{}, whole, false},
		{"text", head + deep + after, ExtractOptions{Text: true}, whole, true},
		{"select", head + deep + after, ExtractOptions{Select: mustSelectors(t, "h=h1")}, whole, true},
		{"scan declines at a table", head + "<table>" + deep + after, ExtractOptions{}, read, true},
		{"scan declines at a heading", head + "<h2>Cut<table>" + deep + after, ExtractOptions{}, read, true},
		{"NUL", head + "\x00" + deep + after, ExtractOptions{}, read, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Extract(mustParseURL(t, testPageURL), strings.NewReader(tt.doc), tt.opt)
			var e *Error
			switch {
			case !tt.refused && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.refused && (!errors.As(err, &e) || e.Kind != KindParseLimit || !strings.Contains(e.Message, "512")):
				t.Errorf("error %#v, want an *Error of kind %s naming the limit", err, KindParseLimit)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("page\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestCleanText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"one two", "one two"},
		{"  lead", "lead"},
		{"trail  ", "trail"},
		{"a \t\n b", "a b"},
		{"a\u00a0b", "a b"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{strings.Repeat("é", maxTextLen), strings.Repeat("é", maxTextLen/2)},
	}
	for _, tt := range tests {
		if got := cleanText(tt.in); got != tt.want {
			t.Errorf("cleanText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzExtract(f *testing.F) {
	files, err := filepath.Glob("testdata/*.html")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, testPageURL)
	}
	f.Add([]byte(`<base href="//x"><a href="/a">`), "http://h:8080/p?q#f")
	f.Add([]byte(`<a href="http://[fe80::1%25en0]/">`), "https://[::1]/")
	f.Add([]byte("<title>t</title><table>"+strings.Repeat("<div>", 600)+"<a href=/x>"), testPageURL)

	// Selectors of every kind: text, URL and plain attributes, a group, and
	// one that matches everything.
	opt := ExtractOptions{
		Select: mustSelectors(f, "text=p, li, h1, title", "href=a, link, base@href", "src=img, script@src",
			"alt=[alt]@alt", "all=*"),
		Text: true,
	}
	f.Fuzz(func(t *testing.T, page []byte, rawBase string) {
		base, err := ParseURL(rawBase)
		if err != nil {
			base = mustParseURL(t, testPageURL)
		}
		// Raw bytes reach Extract unchecked when a page lies about its
		// charset, so both paths must hold up.
		for _, r := range []func() (Page, error){
			func() (Page, error) { return Extract(base, bytes.NewReader(page), opt) },
			func() (Page, error) { return Extract(base, utf8Reader(page, ""), opt) },
		} {
			p, err := r()
			checkPage(t, p)
			// A page the parser refused has what the scan read, and no
			// fields or text.
			if refused := (*Error)(nil); !errors.As(err, &refused) {
				checkExtras(t, p, opt)
			} else if p.Fields != nil || p.Text != "" {
				t.Errorf("refused page (%v) has fields %q or text %.40q", err, p.Fields, p.Text)
			}
		}
	})
}

// checkExtras checks what opt adds to a page: every field present and within
// its bounds, and the text trimmed, collapsed and within its cap.
func checkExtras(t *testing.T, p Page, opt ExtractOptions) {
	t.Helper()
	if len(p.Fields) != len(opt.Select) {
		t.Errorf("%d fields for %d selectors", len(p.Fields), len(opt.Select))
	}
	total := 0
	for _, s := range opt.Select {
		values, ok := p.Fields[s.Name]
		if !ok || values == nil {
			t.Errorf("field %s missing or nil", s.Name)
		}
		if len(values) > maxFieldValues {
			t.Errorf("field %s has %d values", s.Name, len(values))
		}
		for _, v := range values {
			total += len(v)
			if !utf8.ValidString(v) || len(v) > maxFieldLen {
				t.Errorf("field %s: bad value of %d bytes %.40q", s.Name, len(v), v)
			}
			if s.Attr == "" && v != strings.TrimSpace(v) {
				t.Errorf("field %s: text %q not trimmed", s.Name, v)
			}
		}
	}
	if total > maxFieldsBytes {
		t.Errorf("fields hold %d bytes", total)
	}
	if !utf8.ValidString(p.Text) || len(p.Text) > maxPageText || p.Text != strings.TrimSpace(p.Text) || strings.Contains(p.Text, "  ") {
		t.Errorf("bad text of %d bytes %.60q", len(p.Text), p.Text)
	}
}

func checkPage(t *testing.T, p Page) {
	t.Helper()
	for _, s := range append([]string{p.Title, p.Description}, p.Headings...) {
		if !utf8.ValidString(s) || len(s) > maxTextLen || s != strings.TrimSpace(s) {
			t.Errorf("bad text %q", s)
		}
	}
	for _, h := range p.Headings {
		if h == "" {
			t.Error("empty heading")
		}
	}
	if len(p.Links) > maxLinks {
		t.Errorf("%d links", len(p.Links))
	}
	seen := map[string]bool{}
	for _, link := range p.Links {
		if seen[link] {
			t.Errorf("duplicate link %q", link)
		}
		seen[link] = true
		u, err := url.Parse(link)
		if err != nil || !utf8.ValidString(link) || len(link) > maxLinkLen {
			t.Errorf("link %q: %v", link, err)
			continue
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
			t.Errorf("link %q is not an absolute http(s) URL without fragment", link)
		}
	}
}

func BenchmarkExtract(b *testing.B) {
	page := readFixture(b, "bench.html")
	base := mustParseURL(b, testPageURL)
	b.ReportAllocs()
	b.SetBytes(int64(len(page)))
	for b.Loop() {
		p, err := Extract(base, bytes.NewReader(page), ExtractOptions{})
		if err != nil || len(p.Links) != 20 {
			b.Fatalf("got %d links, err %v", len(p.Links), err)
		}
	}
}
