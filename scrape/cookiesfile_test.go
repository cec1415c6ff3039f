package scrape

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseCookiesFile(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     []Cookie
		wantLine int // of the error; 0 for none
	}{
		{"curl's own", "# Netscape HTTP Cookie File\n# https://curl.se/docs/http-cookies.html\n\n" +
			".example.com\tTRUE\t/\tFALSE\t0\tsid\tabc\n" +
			"#HttpOnly_shop.example.com\tFALSE\t/cart\tTRUE\t1893456000\ttoken\tx-y\n",
			[]Cookie{
				{Name: "sid", Value: "abc", Domain: "example.com", Subdomains: true, Path: "/"},
				{Name: "token", Value: "x-y", Domain: "shop.example.com", Path: "/cart", Secure: true, Expires: time.Unix(1893456000, 0).UTC()},
			}, 0},
		{"CRLF, BOM and an empty value without its field", "\uFEFFexample.com\tFALSE\t/\tFALSE\t0\tempty\r\n",
			[]Cookie{{Name: "empty", Domain: "example.com", Path: "/"}}, 0},
		{"domain upper case", "EXAMPLE.com\tfalse\t/\tfalse\t0\ta\tb\n",
			[]Cookie{{Name: "a", Value: "b", Domain: "example.com", Path: "/"}}, 0},
		{"too few fields", "# c\nexample.com\tTRUE\t/\tFALSE\t0\n", nil, 2},
		{"spaces, not tabs", "example.com TRUE / FALSE 0 a b\n", nil, 1},
		{"bad flag", "example.com\tyes\t/\tFALSE\t0\ta\tb\n", nil, 1},
		{"bad expiry", "\nexample.com\tTRUE\t/\tFALSE\tsoon\ta\tb\n", nil, 2},
		{"no name", "example.com\tTRUE\t/\tFALSE\t0\t\tb\n", nil, 1},
		{"relative path", "example.com\tTRUE\tcart\tFALSE\t0\ta\tb\n", nil, 1},
		{"a URL for a domain", "http://example.com\tTRUE\t/\tFALSE\t0\ta\tb\n", nil, 1},
		{"value a header cannot carry", "example.com\tTRUE\t/\tFALSE\t0\ta\tb;c\n", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCookiesFile(strings.NewReader(tt.in), "cookies.txt")
			if tt.wantLine > 0 {
				var ce *CookieFileError
				if !errors.As(err, &ce) || ce.Line != tt.wantLine || ce.File != "cookies.txt" {
					t.Fatalf("error %v, want one naming cookies.txt line %d", err, tt.wantLine)
				}
				if strings.Contains(err.Error(), "\tb") {
					t.Errorf("error %q holds the value", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("cookie %d: %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func FuzzParseCookiesFile(f *testing.F) {
	f.Add(".example.com\tTRUE\t/\tFALSE\t0\tsid\tabc\n")
	f.Add("#HttpOnly_a.test\tFALSE\t/x\tTRUE\t99999999999999\tn\tv\r\n# c\n\n")
	f.Add("a\tb\tc\td\te\tf\tg\th\n")
	f.Fuzz(func(t *testing.T, in string) {
		cs, err := ParseCookiesFile(strings.NewReader(in), "f")
		if err != nil {
			var ce *CookieFileError
			if !errors.As(err, &ce) && !strings.HasPrefix(err.Error(), "read f") {
				t.Fatalf("error %v names no line", err)
			}
			return
		}
		for _, c := range cs {
			// What parses must be sendable: a valid cookie, a path from
			// the root, a bare host name.
			if c.Name == "" || c.valid() != nil || (c.Path != "" && c.Path[0] != '/') || c.Domain == "" || strings.ContainsAny(c.Domain, " /:") {
				t.Fatalf("parsed %+v from %q", c, in)
			}
		}
	})
}
