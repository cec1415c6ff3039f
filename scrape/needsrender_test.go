package scrape

import (
	"regexp"
	"strings"
	"testing"
)

func TestNeedsRender(t *testing.T) {
	article := "<p>" + strings.Repeat("Words a reader came for. ", 5) + "</p>"
	tests := []struct {
		name  string
		body  string
		match string
		want  string
	}{
		{"app shell", `<html><body><div id="root"></div><script src="/app.js"></script></body></html>`, "", "script-only body"},
		{"loading text", `<body><p>Loading…</p><script>boot()</script></body>`, "", "script-only body"},
		{"noscript hint", `<body>` + article + `<noscript>Please enable JavaScript to continue.</noscript><script>x()</script></body>`, "", "a <noscript> asks for JavaScript"},
		{"noscript without the word", `<body>` + article + `<noscript><img src="/pixel.gif"></noscript><script>x()</script></body>`, "", ""},
		{"article with scripts", `<body>` + article + `<script>analytics()</script></body>`, "", ""},
		{"empty page without script", `<html><body></body></html>`, "", ""},
		{"script-only with a link", `<body><a href="/a">next</a><script>x()</script></body>`, "", ""},
		{"script text is not visible", `<body><script>` + strings.Repeat("var a = 1;", 50) + `</script></body>`, "", "script-only body"},
		{"render-match", `<body>` + article + `<div id="__next"></div></body>`, `id="__next"`, "body matches --render-match"},
		{"render-match misses", `<body>` + article + `</body>`, `id="__next"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var re *regexp.Regexp
			if tt.match != "" {
				re = regexp.MustCompile(tt.match)
			}
			if got := NeedsRender([]byte(tt.body), re); got != tt.want {
				t.Errorf("NeedsRender = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzNeedsRender(f *testing.F) {
	f.Add([]byte(`<body><noscript>javascript</noscript><script>x</script></body>`))
	f.Add([]byte(`<script><script></noscript></body>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		NeedsRender(body, nil) // must not panic or hang
	})
}

func TestParseRenderMode(t *testing.T) {
	for in, want := range map[string]string{"": RenderNever, "never": RenderNever, "always": RenderAlways, "auto": RenderAuto, "sometimes": ""} {
		got, err := ParseRenderMode(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("ParseRenderMode(%q) = %q, %v", in, got, err)
		}
	}
}
