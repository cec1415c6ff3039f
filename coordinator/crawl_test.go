package coordinator

import (
	"net/url"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := map[string]string{
		"HTTP://Example.COM":                "http://example.com/",
		"http://example.com:80/a":           "http://example.com/a",
		"https://example.com:443/a":         "https://example.com/a",
		"https://example.com:8443/a":        "https://example.com:8443/a",
		"http://example.com/a/./b/../c":     "http://example.com/a/c",
		"http://example.com/a?q=1&r=2#frag": "http://example.com/a?q=1&r=2",
		"http://user:pw@example.com/":       "http://example.com/",
		"http://[::1]:80/x":                 "http://[::1]/x",
		"http://example.com/a%20b":          "http://example.com/a%20b",
	}
	for in, want := range tests {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := normalize(*u).String(); got != want {
			t.Errorf("normalize(%q) = %q; want %q", in, got, want)
		}
	}
}

// Seeding the scope leaves the caller's URL as it was: the frontier goes on
// to queue it, robots.txt path and all.
func TestCrawlScopeLeavesItsURLAlone(t *testing.T) {
	for _, in := range []string{"HTTP://Example.COM:80/a/../b?q=1#frag", "http://user:pw@example.com", "https://example.com:443/./x/"} {
		c := newCrawlScope(2, true, nil, 0)
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		before := *u
		c.seed(u)
		if *u != before {
			t.Errorf("seed(%q) rewrote it to %q", in, u)
		}
	}
}

func TestCrawlScopeAdmit(t *testing.T) {
	seed, _ := url.Parse("http://a.example/start")
	tests := []struct {
		name     string
		sameHost bool
		allow    []string
		links    []string
		want     []bool
	}{
		{"anything new", false, nil,
			[]string{"http://a.example/1", "http://b.example/1", "http://a.example/1#x", "HTTP://A.EXAMPLE/1", "mailto:x@y", "http://a.example/start"},
			[]bool{true, true, false, false, false, false}},
		{"same host", true, nil,
			[]string{"http://a.example/2", "http://b.example/2", "http://a.example:8080/2"},
			[]bool{true, false, false}},
		{"allowed domains", false, []string{"example.org", "*.example.net"},
			[]string{"http://example.org/", "http://www.example.org/", "http://notexample.org/", "http://x.example.net/", "http://a.example/"},
			[]bool{true, true, false, true, false}},
	}
	for _, tt := range tests {
		c := newCrawlScope(3, tt.sameHost, tt.allow, 0)
		c.seed(seed)
		for i, l := range tt.links {
			// Admitted as the frontier admits it: checked, then claimed.
			_, n, ok := c.check(l)
			ok = ok && c.claim(hash(n))
			if ok != tt.want[i] {
				t.Errorf("%s: admit(%q) = %v", tt.name, l, ok)
			}
		}
	}
}

func TestCrawlScopeMatchExclude(t *testing.T) {
	seed, _ := url.Parse("http://a.example/start")
	tests := []struct {
		name           string
		match, exclude []string
		links          []string
		want           []bool
	}{
		{"match any", []string{"/blog/", `[?&]id=\d+$`}, nil,
			[]string{"http://a.example/blog/1", "http://a.example/shop/1", "http://b.example/blog/2", "http://a.example/news?id=3"},
			[]bool{true, false, true, true}},
		{"exclude", nil, []string{"/logout", `(?i)\.pdf$`},
			[]string{"http://a.example/blog/1", "http://a.example/logout", "http://a.example/x.PDF", "http://a.example/y"},
			[]bool{true, false, false, true}},
		{"exclude wins over match", []string{"/blog/"}, []string{"/draft/"},
			[]string{"http://a.example/blog/1", "http://a.example/blog/draft/2", "http://a.example/shop"},
			[]bool{true, false, false}},
		// Patterns see the normalised link: no fragment, host lower case.
		{"on the normalised form", []string{`^http://a\.example/p$`}, nil,
			[]string{"HTTP://A.EXAMPLE/p#section", "http://a.example/p?x"},
			[]bool{true, false}},
	}
	for _, tt := range tests {
		c := newCrawlScope(3, false, nil, 0)
		var err error
		if c.match, err = CompilePatterns("match", tt.match); err != nil {
			t.Fatal(err)
		}
		if c.exclude, err = CompilePatterns("exclude", tt.exclude); err != nil {
			t.Fatal(err)
		}
		c.seed(seed)
		for i, l := range tt.links {
			if _, _, ok := c.check(l); ok != tt.want[i] {
				t.Errorf("%s: check(%q) = %v", tt.name, l, ok)
			}
		}
	}
	if _, err := CompilePatterns("match", []string{"ok", "("}); err == nil || !strings.Contains(err.Error(), `--match "("`) {
		t.Errorf("CompilePatterns error %v, want one naming --match and the expression", err)
	}
}
