package scrape

import (
	"bytes"
	"regexp"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// With --render auto a page is fetched over HTTP first, and only a page that
// looks as though its content is made by scripts is loaded again in a
// browser. NeedsRender is that judgement. It reads the body the request
// returned, and says why it would render, or "" to keep the HTTP record.
// In order:
//
//  1. --render-match: the body matches the run's regular expression (a
//     marker the user knows, such as `id="__next"` or `ng-app`).
//  2. A <noscript> element that asks for JavaScript: its text mentions
//     "javascript" (any case), the way apps that need it say so.
//  3. An empty or script-only body: the page has a <script>, and its body
//     holds fewer than minVisibleText bytes of text outside script, style,
//     noscript and template elements, and no link.
//
// A page without a script never needs a browser: nothing would change it.
func NeedsRender(body []byte, match *regexp.Regexp) string {
	if match != nil && match.Match(body) {
		return "body matches --render-match"
	}
	z := html.NewTokenizer(bytes.NewReader(body))
	var (
		scripts, links, text int
		inBody               bool
		skip                 int // depth in script, style, noscript, template
		inNoscript           bool
		noscriptAsks         bool
	)
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			switch {
			case noscriptAsks:
				return "a <noscript> asks for JavaScript"
			case scripts > 0 && text < minVisibleText && links == 0:
				return "script-only body"
			}
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch atom.Lookup(name) {
			case atom.Body:
				inBody = true
			case atom.Script:
				scripts++
				if tt == html.StartTagToken {
					skip++
				}
			case atom.Noscript:
				inNoscript = true
				skip++
			case atom.Style, atom.Template:
				if tt == html.StartTagToken {
					skip++
				}
			case atom.A:
				if inBody && skip == 0 {
					links++
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch atom.Lookup(name) {
			case atom.Script, atom.Style, atom.Template:
				skip = max(skip-1, 0)
			case atom.Noscript:
				inNoscript = false
				skip = max(skip-1, 0)
			}
		case html.TextToken:
			t := z.Text()
			if inNoscript && containsFold(t, "javascript") {
				noscriptAsks = true
			}
			if inBody && skip == 0 {
				text += len(bytes.TrimSpace(t))
			}
		}
	}
}

// minVisibleText is the text below which a body with scripts counts as
// script-only: a "Loading…" or an app's empty shell, not an article.
const minVisibleText = 64

func containsFold(b []byte, word string) bool {
	return bytes.Contains(bytes.ToLower(b), []byte(word))
}
