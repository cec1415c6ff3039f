package scrape

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseSelector(t *testing.T) {
	tests := []struct {
		expr string
		want Selector
	}{
		{"price=.price", Selector{Name: "price", CSS: ".price"}},
		{"img=img.hero@src", Selector{Name: "img", CSS: "img.hero", Attr: "src"}},
		// NAME ends at the first '=', ATTR starts at the last '@'.
		{"next=a[rel=next]@href", Selector{Name: "next", CSS: "a[rel=next]", Attr: "href"}},
		{`q=a[title="x@y"]@title`, Selector{Name: "q", CSS: `a[title="x@y"]`, Attr: "title"}},
		// What follows the last '@' is no attribute name: all of it is CSS.
		{`mail=a[href^="mailto:x@y"]`, Selector{Name: "mail", CSS: `a[href^="mailto:x@y"]`}},
		{`esc=.a\@b`, Selector{Name: "esc", CSS: `.a\@b`}},
		{`esc2=.a\\@b`, Selector{Name: "esc2", CSS: `.a\\`, Attr: "b"}},
		{" title = h1 ", Selector{Name: "title", CSS: "h1"}},
		{"img = img @ data-src ", Selector{Name: "img", CSS: "img", Attr: "data-src"}},
		{"h=h1, h2", Selector{Name: "h", CSS: "h1, h2"}},
		{`ld=script[type="application/ld+json"]`, Selector{Name: "ld", CSS: `script[type="application/ld+json"]`}},
		{"box=svg@viewBox", Selector{Name: "box", CSS: "svg", Attr: "viewBox"}},
		{"og.image_1-x=meta[property='og:image']@content", Selector{Name: "og.image_1-x", CSS: "meta[property='og:image']", Attr: "content"}},
		{"größe=.size", Selector{Name: "größe", CSS: ".size"}},
		{"x=svg a@xlink:href", Selector{Name: "x", CSS: "svg a", Attr: "xlink:href"}},
	}
	for _, tt := range tests {
		got, err := ParseSelector(tt.expr)
		if err != nil {
			t.Errorf("ParseSelector(%q): %v", tt.expr, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseSelector(%q) = %#v, want %#v", tt.expr, got, tt.want)
		}
		// String gives back an expression that parses the same.
		if again, err := ParseSelector(got.String()); err != nil || again != got {
			t.Errorf("ParseSelector(%q) = %#v, %v; want %#v", got.String(), again, err, got)
		}
	}
}

func TestParseSelectorErrors(t *testing.T) {
	tests := []struct {
		expr string
		want string // the whole message, or its prefix when it ends in "..."
	}{
		{"price", `selector "price": want NAME=CSS or NAME=CSS@ATTR`},
		{"", `selector "": want NAME=CSS or NAME=CSS@ATTR`},
		{"=.x", `selector "=.x": missing NAME before "="`},
		{"a b=.x", `selector "a b=.x": invalid name "a b": use letters, digits, '_', '-' and '.'`},
		{"a/b=.x", `selector "a/b=.x": invalid name "a/b": use letters, digits, '_', '-' and '.'`},
		{strings.Repeat("n", 65) + "=.x", `selector "` + strings.Repeat("n", 65) + `=.x": name longer than 64 bytes`},
		{"x=", `selector "x=": empty CSS selector`},
		{"x=@href", `selector "x=@href": empty CSS selector`},
		{"x=a@", `selector "x=a@": missing attribute name after "@"`},
		{"x=[[", `selector "x=[[": invalid CSS selector: ...`},
		{"x=a::before", `selector "x=a::before": invalid CSS selector: ...`},
		{"x=a,", `selector "x=a,": invalid CSS selector: ...`},
		{"x=a@data src", `selector "x=a@data src": invalid CSS selector: ...`},
	}
	for _, tt := range tests {
		got, err := ParseSelector(tt.expr)
		if err == nil {
			t.Errorf("ParseSelector(%q) = %#v, want error %q", tt.expr, got, tt.want)
			continue
		}
		var se *SelectorError
		if !errors.As(err, &se) || se.Expr != tt.expr {
			t.Errorf("ParseSelector(%q) error %#v, want a *SelectorError for the expression", tt.expr, err)
		}
		if prefix, ok := strings.CutSuffix(tt.want, "..."); ok {
			if !strings.HasPrefix(err.Error(), prefix) || len(err.Error()) == len(prefix) {
				t.Errorf("ParseSelector(%q) error %q, want %q followed by the reason", tt.expr, err, prefix)
			}
		} else if err.Error() != tt.want {
			t.Errorf("ParseSelector(%q) error %q, want %q", tt.expr, err, tt.want)
		}
	}
	// The hint says why the '@' was not taken as ATTR.
	if _, err := ParseSelector("x=a@data src"); err == nil || !strings.Contains(err.Error(), `"data src" is not an attribute name`) {
		t.Errorf("error %v, want a hint about the attribute name", err)
	}
}

func mustSelectors(t testing.TB, exprs ...string) []Selector {
	t.Helper()
	sels := make([]Selector, len(exprs))
	for i, e := range exprs {
		s, err := ParseSelector(e)
		if err != nil {
			t.Fatal(err)
		}
		sels[i] = s
	}
	return sels
}

func TestExtractSelect(t *testing.T) {
	tests := []struct {
		file string
		page string // the page's URL; testPageURL if empty
		sels []string
		want map[string][]string
	}{
		{
			file: "select.html",
			sels: []string{
				"name=h1.name",
				"price=.price",
				"tags=.tags li",
				"review=.review",
				"ld=script[type='application/ld+json']",
				"heads=p.price, h1",
				"none=.nothing",
				"none_attr=img.hero@data-missing",
				"hero=img.hero@src",
				"hero_upper=IMG.hero@SRC",
				"thumbs=img.thumb@src",
				"alt=img.hero@alt",
				"og=meta[property='og:image']@content",
				"next=a[rel=next]@href",
				"mail=a.mail@href",
				"frag=a.frag@href",
				"action=form@action",
				"buy=button@formaction",
				"reviews=.review@data-src",
				"svg=svg a@href",
				"xlink=svg a@xlink:href",
			},
			want: map[string][]string{
				// Text is whitespace-normalised; block boundaries and <br>
				// separate words; an empty element gives an empty value.
				"name":   {"Desk lamp"},
				"price":  {"€ 19.90"}, // not the one in <template>
				"tags":   {"light", "desk office", ""},
				"review": {"Great lamp really"},
				"ld":     {`{"@type": "Product", "name": "Lamp"}`},
				"heads":  {"Desk lamp", "€ 19.90"}, // document order
				// No match: the key is there, with an empty list.
				"none":      {},
				"none_attr": {},
				// URL attributes resolve against the page.
				"hero":       {"https://example.com/dir/img/lamp.jpg"},
				"hero_upper": {"https://example.com/dir/img/lamp.jpg"},
				// The thumbnail without src is skipped.
				"thumbs": {"https://example.com/img/t1.jpg", "https://cdn.example.net/t2.jpg"},
				// Other attributes are kept as written.
				"alt":     {"A  lamp"},
				"og":      {"/img/og.png"},
				"next":    {"https://example.com/dir/page.html?page=2"},
				"mail":    {"mailto:shop@example.com"},
				"frag":    {"https://example.com/dir/page.html#reviews"},
				"action":  {"https://example.com/cart"},
				"buy":     {"https://example.com/buy"},
				"reviews": {"https://example.com/dir/reviews/1.json"},
				"svg":     {"https://example.com/dir/svg-link.html"},
				"xlink":   {"https://example.com/dir/old-svg-link.html"},
			},
		},
		{
			// Resolved against <base href>, like the links.
			file: "base.html",
			sels: []string{"links=a@href", "first=a@href"},
			want: map[string][]string{
				"links": {
					"https://cdn.example.org/docs/v2/intro.html",
					"https://cdn.example.org/docs/v1/old.html",
					"https://cdn.example.org/root",
					"https://proto.example.com/rel",
					"https://cdn.example.org/docs/v2/?q=search",
					"https://absolute.example/",
				},
				"first": {
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
			page: "http://shop.example:8080/a/b/c.html",
			sels: []string{"links=a@href"},
			want: map[string][]string{"links": {"http://shop.example:8080/static/a.html", "http://shop.example:8080/static/b.html"}},
		},
		{
			// A javascript: base is ignored: the page's URL is the base.
			file: "base_javascript.html",
			sels: []string{"links=a@href"},
			want: map[string][]string{"links": {"https://example.com/dir/kept.html"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			page := tt.page
			if page == "" {
				page = testPageURL
			}
			body := readFixture(t, tt.file)
			got, err := Extract(mustParseURL(t, page), utf8Reader(body, ""), ExtractOptions{Select: mustSelectors(t, tt.sels...)})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Fields, tt.want) {
				t.Errorf("fields\n got %q\nwant %q", got.Fields, tt.want)
			}
			for name, values := range got.Fields {
				if values == nil {
					t.Errorf("field %s is nil, want an empty list", name)
				}
			}
			// Selectors add to the page; they change nothing else.
			plain, err := Extract(mustParseURL(t, page), utf8Reader(body, ""), ExtractOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got.Fields = nil
			if !reflect.DeepEqual(got, plain) {
				t.Errorf("with selectors\n%#v\nwithout\n%#v", got, plain)
			}
		})
	}
}

func TestExtractSelectJSON(t *testing.T) {
	got, err := Extract(mustParseURL(t, testPageURL), strings.NewReader("<p>x</p>"),
		ExtractOptions{Select: mustSelectors(t, "p=p", "none=.none")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(Result{URL: testPageURL, Fields: got.Fields})
	if err != nil {
		t.Fatal(err)
	}
	// An empty match is [] in the record, not null and not missing.
	if want := `"fields":{"none":[],"p":["x"]}`; !strings.Contains(string(b), want) {
		t.Errorf("record %s, want it to contain %s", b, want)
	}
}

func TestExtractSelectInvalid(t *testing.T) {
	tests := []struct {
		sels []Selector
		want string
	}{
		{[]Selector{{Name: "x", CSS: "[["}}, `selector "x=[[": invalid CSS selector: `},
		{[]Selector{{Name: "", CSS: "p"}}, `selector "=p": missing NAME`},
		{[]Selector{{Name: "x", CSS: "p", Attr: "a b"}}, `selector "x=p@a b": invalid attribute name "a b"`},
		{[]Selector{{Name: "x", CSS: "p"}, {Name: "x", CSS: "a", Attr: "href"}}, `selector "x=a@href": duplicate name "x"`},
	}
	for _, tt := range tests {
		_, err := Extract(mustParseURL(t, testPageURL), strings.NewReader("<p>x</p>"), ExtractOptions{Select: tt.sels})
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Extract with %v: error %v, want %q", tt.sels, err, tt.want)
		}
		if err := (Config{Select: tt.sels}).Validate(); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Validate with %v: error %v, want %q", tt.sels, err, tt.want)
		}
	}
	if err := (Config{Select: mustSelectors(t, "a=p", "b=a@href"), Text: true}).Validate(); err != nil {
		t.Errorf("Validate of a good config: %v", err)
	}
}

func TestExtractSelectLimits(t *testing.T) {
	var page strings.Builder
	for i := range maxFieldValues + 10 {
		page.WriteString(`<p class="many">` + strconv.Itoa(i) + `</p>`)
	}
	page.WriteString(`<p class="long">` + strings.Repeat("long ", maxFieldLen) + `</p>`)
	page.WriteString(`<a class="long" href="/` + strings.Repeat("é", maxFieldLen) + `">x</a>`)
	// A node-heavy element with its text at the end: walking it for its
	// text stops after 8×maxFieldLen nodes.
	page.WriteString(`<div class="deep">` + strings.Repeat("<i></i>", 8*maxFieldLen) + `late</div>`)
	page.WriteString(`<div class="shallow">` + strings.Repeat("<i></i>", 100) + `late</div>`)

	got, err := Extract(mustParseURL(t, testPageURL), strings.NewReader(page.String()),
		ExtractOptions{Select: mustSelectors(t, "many=p.many", "text=p.long", "href=a.long@href", "deep=.deep", "shallow=.shallow")})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Fields["many"]); n != maxFieldValues {
		t.Errorf("got %d values, want the cap of %d", n, maxFieldValues)
	} else if last := got.Fields["many"][n-1]; last != strconv.Itoa(maxFieldValues-1) {
		t.Errorf("last value %q, want the first %d in document order", last, maxFieldValues)
	}
	for _, name := range []string{"text", "href"} {
		v := got.Fields[name]
		if len(v) != 1 || len(v[0]) > maxFieldLen || len(v[0]) < maxFieldLen-4 || !strings.HasPrefix(v[0], map[string]string{"text": "long long", "href": "https://example.com/%C3%A9"}[name]) {
			t.Errorf("%s: %d values, first of %d bytes; want one, cut to at most %d bytes", name, len(v), len(v[0]), maxFieldLen)
		}
	}
	if want := []string{""}; !reflect.DeepEqual(got.Fields["deep"], want) {
		t.Errorf("deep = %q, want %q", got.Fields["deep"], want)
	}
	if want := []string{"late"}; !reflect.DeepEqual(got.Fields["shallow"], want) {
		t.Errorf("shallow = %q, want %q", got.Fields["shallow"], want)
	}
}

// TestExtractSelectBudget: the values of one page together stay under
// maxFieldsBytes; what passes it is dropped, later fields included, but every
// key stays.
func TestExtractSelectBudget(t *testing.T) {
	var page strings.Builder
	big := strings.Repeat("x", maxFieldLen)
	for range maxFieldsBytes/maxFieldLen + 10 {
		page.WriteString("<p>" + big + "</p>")
	}
	got, err := Extract(mustParseURL(t, testPageURL), strings.NewReader(page.String()),
		ExtractOptions{Select: mustSelectors(t, "big=p", "later=p")})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, v := range got.Fields["big"] {
		total += len(v)
	}
	if n := len(got.Fields["big"]); n != maxFieldsBytes/maxFieldLen || total > maxFieldsBytes {
		t.Errorf("big: %d values, %d bytes; want %d values within %d bytes", n, total, maxFieldsBytes/maxFieldLen, maxFieldsBytes)
	}
	if later, ok := got.Fields["later"]; !ok || len(later) != 0 {
		t.Errorf("later = %q (present %v), want an empty list", later, ok)
	}
}

func TestConfigJSON(t *testing.T) {
	cfg := Config{MaxBody: 1 << 20, Select: mustSelectors(t, "next=a[rel=next]@href", "price=.price"), Text: true}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got Config
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Errorf("after JSON %s\n got %#v\nwant %#v", b, got, cfg)
	}
}

func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"price=.price", "img=img.hero@src", "next=a[rel=next]@href", `q=a[title="x@y"]@title`, `e=.a\@b`, "x=[[", "x=a@", "=", "h=h1, h2:not(.x) > a[href$='.pdf' i]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		s, err := ParseSelector(expr)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "selector ") {
				t.Errorf("error %q does not name the flag", err)
			}
			return
		}
		if again, err := ParseSelector(s.String()); err != nil || again != s {
			t.Errorf("%q parsed as %#v, whose String %q parses as %#v, %v", expr, s, s.String(), again, err)
		}
		if err := (Config{Select: []Selector{s}}).Validate(); err != nil {
			t.Errorf("%q parsed as %#v, which Validate rejects: %v", expr, s, err)
		}
	})
}
