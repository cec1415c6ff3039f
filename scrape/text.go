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
// With page, it is the text pageText describes; without, that of one element
// (see walkText).
//
// Without page, it also stops after visiting 8×limit nodes. A selector may
// match up to maxFieldValues elements nested in one another, each of which
// would otherwise be walked to its end when it holds no text.
func nodeText(root *html.Node, limit int, page bool) string {
	t := textBuf{limit: limit}
	steps := 0
	if !page {
		steps = 8 * limit
	}
	walkText(root, &t, page, steps)
	return t.b.String()
}

// textOf concatenates the text under n, like the DOM's textContent but read
// as walkText reads it, so <h1><div>Foo</div><div>Bar</div></h1> reads
// "Foo Bar" as it renders. The result is raw, for cleanText.
func textOf(root *html.Node) string {
	var t rawText
	walkText(root, &t, false, 0)
	return t.String()
}

// textSink is what walkText writes to.
type textSink interface {
	write(s string) // a text node's data
	space()         // a word boundary: the edge of a block, or a <br>
	full() bool     // whether the walk may stop
}

// walkText writes the text under root to w in document order, block
// boundaries and <br> as spaces. Script, style and template content is
// skipped below root (root itself may be a <script>: that is how a selector
// reads JSON-LD); with page, so is everything pageText leaves out. It stops
// once w is full and, when steps > 0, after visiting that many nodes.
func walkText(root *html.Node, w textSink, page bool, steps int) {
	bounded := steps > 0
	n := root.FirstChild
	for n != nil && !w.full() {
		if bounded {
			if steps == 0 {
				break
			}
			steps--
		}
		descend := true
		switch n.Type {
		case html.TextNode:
			w.write(n.Data)
		case html.ElementNode:
			switch {
			case skipText(n, page):
				descend = false
			case breaksText(n):
				w.space()
			}
		}
		if descend && n.FirstChild != nil {
			n = n.FirstChild
			continue
		}
		for n != root && n.NextSibling == nil {
			if breaksText(n) {
				w.space()
			}
			n = n.Parent
		}
		if n == root {
			break
		}
		if breaksText(n) {
			w.space()
		}
		n = n.NextSibling
	}
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

// breaksText reports whether n renders on its own line, which makes its
// boundaries word boundaries.
func breaksText(n *html.Node) bool {
	if n.Type != html.ElementNode || n.Namespace != "" {
		return false
	}
	switch n.DataAtom {
	case atom.Address, atom.Article, atom.Aside, atom.Blockquote, atom.Br, atom.Caption,
		atom.Dd, atom.Details, atom.Div, atom.Dl, atom.Dt, atom.Fieldset, atom.Figcaption,
		atom.Figure, atom.Footer, atom.Form, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5,
		atom.H6, atom.Header, atom.Hr, atom.Li, atom.Main, atom.Nav, atom.Noscript, atom.Ol,
		atom.P, atom.Pre, atom.Section, atom.Summary, atom.Table, atom.Td, atom.Th, atom.Tr,
		atom.Ul:
		return true
	}
	return false
}

// textBuf collects text with whitespace collapsed as it is written, so that
// its limit applies to what is kept, not to the indentation of the source.
// Invalid UTF-8 becomes U+FFFD. Once the next word does not fit, it is full
// and ignores the rest.
type textBuf struct {
	b       strings.Builder
	limit   int
	pending bool // a space goes before the next non-space
	filled  bool
}

func (t *textBuf) full() bool { return t.filled }

// space separates what was written from what comes next, unless nothing was
// written yet: the text never starts or ends with a space.
func (t *textBuf) space() {
	t.pending = t.b.Len() > 0
}

func (t *textBuf) write(s string) {
	for len(s) > 0 && !t.filled {
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
			t.filled = true
			return
		}
		if t.pending {
			t.b.WriteByte(' ')
			t.pending = false
		}
		t.b.WriteRune(r)
	}
}

// rawText keeps the text as written, for textOf. It is full once it holds
// far more than cleanText keeps, so that an unclosed <h1> that swallows the
// rest of a large page costs little.
type rawText struct{ strings.Builder }

func (t *rawText) write(s string) { t.WriteString(s) }
func (t *rawText) space()         { t.WriteByte(' ') }
func (t *rawText) full() bool     { return t.Len() >= 4*maxTextLen }

// cleanText makes s fit for a record: valid UTF-8, whitespace runs collapsed to
// one space, trimmed, and at most maxTextLen bytes.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if !needsCollapse(s) {
		// A cut can land just after a space: a field never ends in one.
		return strings.TrimRight(truncate(s, maxTextLen), " ")
	}
	// textBuf stops before a rune that would not fit; give it room for one
	// more, and a space, so that the cut is truncate's, as on the fast path.
	t := textBuf{limit: maxTextLen + 1 + utf8.UTFMax}
	t.b.Grow(min(len(s), t.limit))
	t.write(s)
	return strings.TrimRight(truncate(t.b.String(), maxTextLen), " ")
}

// needsCollapse reports whether s has leading, trailing, repeated or non-' '
// whitespace. Most titles and headings have none, and skipping the rewrite
// for them saves an allocation per string.
func needsCollapse(s string) bool {
	prevSpace := true // a leading space counts as "after a space"
	for _, r := range s {
		switch {
		case r == ' ':
			if prevSpace {
				return true
			}
			prevSpace = true
		case unicode.IsSpace(r):
			return true
		default:
			prevSpace = false
		}
	}
	return prevSpace && s != ""
}

// truncate cuts s to at most n bytes without splitting a rune.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
