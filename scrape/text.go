package scrape

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// maxPageText bounds the page text of --text. The record, text included,
// travels as one queue message and is written as one line or row, and 64 KiB
// holds the prose of a long article (some 10,000 words) while keeping a
// record of thousands of such pages an ordinary file. A page with more has
// its text cut there (at a character boundary), not dropped.
const maxPageText = 64 << 10

// pageText is the text a reader sees on the page: the document's text without
// what never renders (scripts, styles, templates, the <head> and its <title>,
// the raw fallback text of <iframe>, <noembed> and <noframes>, and elements
// marked hidden). <noscript> content counts: with scripting off, which is how
// the page is parsed, it is what shows. Whitespace is collapsed and the
// result is at most maxPageText bytes of valid UTF-8.
func pageText(root *html.Node) string {
	return nodeText(root, maxPageText, true)
}

// nodeText is the whitespace-normalised text under root, at most limit bytes.
// Block boundaries and <br> separate words, as in textOf. Script, style and
// template content is skipped below root (root itself may be a <script>: that
// is how a selector reads JSON-LD); with page, so is everything pageText
// leaves out.
//
// Without page, it also stops after visiting 8×limit nodes. A selector may
// match up to maxFieldValues elements nested in one another, each of which
// would otherwise be walked to its end when it holds no text.
func nodeText(root *html.Node, limit int, page bool) string {
	t := textBuf{limit: limit}
	steps := 8 * limit
	n := root.FirstChild
	for n != nil && !t.full {
		if !page {
			if steps == 0 {
				break
			}
			steps--
		}
		descend := true
		switch n.Type {
		case html.TextNode:
			t.write(n.Data)
		case html.ElementNode:
			switch {
			case skipText(n, page):
				descend = false
			case breaksText(n):
				t.space()
			}
		}
		if descend && n.FirstChild != nil {
			n = n.FirstChild
			continue
		}
		for n != root && n.NextSibling == nil {
			if breaksText(n) {
				t.space()
			}
			n = n.Parent
		}
		if n == root {
			break
		}
		if breaksText(n) {
			t.space()
		}
		n = n.NextSibling
	}
	return t.b.String()
}

func skipText(n *html.Node, page bool) bool {
	switch n.DataAtom {
	case atom.Script, atom.Style, atom.Template:
		return true
	}
	if !page {
		return false
	}
	switch n.DataAtom {
	case atom.Head, atom.Title, atom.Iframe, atom.Noembed, atom.Noframes:
		return true
	}
	_, hidden := attr(n, "hidden")
	return hidden
}

// textBuf collects text with whitespace collapsed as it is written, so that
// its limit applies to what is kept, not to the indentation of the source.
// Invalid UTF-8 becomes U+FFFD. Once the next word does not fit, it is full
// and ignores the rest.
type textBuf struct {
	b       strings.Builder
	limit   int
	pending bool // a space goes before the next non-space
	full    bool
}

// space separates what was written from what comes next, unless nothing was
// written yet: the text never starts or ends with a space.
func (t *textBuf) space() {
	t.pending = t.b.Len() > 0
}

func (t *textBuf) write(s string) {
	for len(s) > 0 && !t.full {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		if unicode.IsSpace(r) {
			t.space()
			continue
		}
		n := utf8.RuneLen(r) // 3 for RuneError, written as U+FFFD
		if t.pending {
			n++
		}
		if t.b.Len()+n > t.limit {
			t.full = true
			return
		}
		if t.pending {
			t.b.WriteByte(' ')
			t.pending = false
		}
		t.b.WriteRune(r)
	}
}
