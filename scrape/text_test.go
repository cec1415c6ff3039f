package scrape

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestExtractText(t *testing.T) {
	tests := []struct {
		name, page, want string
	}{
		{
			name: "fixture",
			page: string(readFixture(t, "text.html")),
			// No title, head, script, style, template, hidden element, iframe
			// fallback or SVG tooltip; <noscript> content is kept.
			want: "Visible heading First paragraph with boldand glued link. No-JS fallback one two cell a cell b svg text",
		},
		{name: "empty", page: "", want: ""},
		{name: "only head", page: "<title>t</title><script>x</script>", want: ""},
		{name: "body without tags", page: "  hello \n\t world  ", want: "hello world"},
		{name: "invalid UTF-8", page: "<p>a\xffb</p>", want: "a\uFFFDb"},
		{name: "noscript in head", page: "<head><noscript><style>x</style></noscript></head><p>body</p>", want: "body"},
	}
	for _, tt := range tests {
		got, err := Extract(mustParseURL(t, testPageURL), strings.NewReader(tt.page), ExtractOptions{Text: true})
		if err != nil {
			t.Fatal(err)
		}
		if got.Text != tt.want {
			t.Errorf("%s: text\n%q\nwant\n%q", tt.name, got.Text, tt.want)
		}
	}

	// Only on request.
	got, err := Extract(mustParseURL(t, testPageURL), strings.NewReader("<p>text</p>"), ExtractOptions{})
	if err != nil || got.Text != "" {
		t.Errorf("without the option: text %q, %v; want none", got.Text, err)
	}
}

func TestExtractTextLimit(t *testing.T) {
	tests := []struct {
		name  string
		page  string
		check func(t *testing.T, text string)
	}{
		{
			name: "long page cut at the cap",
			page: "<p>" + strings.Repeat("é word ", maxPageText) + "</p>",
			check: func(t *testing.T, text string) {
				if len(text) > maxPageText || len(text) < maxPageText-8 || !strings.HasPrefix(text, "é word é") {
					t.Errorf("text of %d bytes, want close to the cap of %d", len(text), maxPageText)
				}
			},
		},
		{
			// The cap counts the text kept, not the source's whitespace.
			name: "whitespace does not count",
			page: strings.Repeat("<p>word</p>"+strings.Repeat(" \n\t", 10<<10), 50),
			check: func(t *testing.T, text string) {
				if want := strings.TrimSpace(strings.Repeat("word ", 50)); text != want {
					t.Errorf("text %.60q... of %d bytes, want 50 words", text, len(text))
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Extract(mustParseURL(t, testPageURL), strings.NewReader(tt.page), ExtractOptions{Text: true})
			if err != nil {
				t.Fatal(err)
			}
			if !utf8.ValidString(got.Text) || got.Text != strings.TrimSpace(got.Text) {
				t.Errorf("text %.60q... is not trimmed valid UTF-8", got.Text)
			}
			tt.check(t, got.Text)
		})
	}
}

// A title or heading cut at the limit never ends in a space, whichever way
// it is cleaned (found by FuzzExtract).
func TestCleanTextCutEndsInNoSpace(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("a", maxTextLen-1) + " b",
		strings.Repeat("a", maxTextLen-1) + "  b", // collapsed first
		"x\t" + strings.Repeat("a", maxTextLen-3) + " b c",
	} {
		got := cleanText(in)
		if len(got) > maxTextLen || strings.HasSuffix(got, " ") {
			t.Errorf("cleanText of %d bytes = %d bytes ending in %q", len(in), len(got), got[max(0, len(got)-3):])
		}
	}
}
