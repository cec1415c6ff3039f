package scrape

import (
	"bytes"
	"net/url"
	"slices"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// scanPage is Extract's fast path for the fields every record has (title,
// description, headings, links): one pass over the tokens, with no tree, no
// selectors and almost no allocation. Building the HTML5 tree costs several
// times more than reading the tokens, and for the default fields of a
// well-formed page the tree only confirms what the tokens already say.
//
// It reports false when the document holds markup whose tree it does not
// predict exactly: foreign content (<svg>, <math>), <template>, tables and
// <select> (which move or drop what they contain), an unclosed <title>, a NUL
// byte, and, inside a heading, anything but text, phrasing elements and
// properly nested blocks. The caller then builds the tree, so a page gives the
// same record either way; FuzzScanMatchesTree holds the two paths to that.
func scanPage(base *url.URL, doc []byte) (Page, bool) {
	if bytes.IndexByte(doc, 0) >= 0 {
		return Page{}, false // the tree builder drops or replaces NULs, by context
	}
	s := scanner{z: html.NewTokenizer(bytes.NewReader(doc))}
	if !s.run() {
		return Page{}, false
	}
	return s.result(base), true
}

// result is the page as far as the scan has read it.
func (s *scanner) result(base *url.URL) Page {
	p := s.page
	s.meta.fill(&p)
	p.Links = resolveLinks(documentBase(base, s.baseHref, s.hasBase), s.hrefs)
	return p
}

type scanner struct {
	z    *html.Tokenizer
	page Page

	title     int // titleNone, titleOpen or titleDone
	titleText []byte
	meta      metaInfo
	baseHref  string
	hasBase   bool
	hrefs     []string
	// formatting counts the start tags of each formatting element (<a>,
	// <b>, ...) not yet matched by an end tag: those may still be in the
	// tree builder's list of active formatting elements, which it copies
	// into whatever comes next. In a heading that changes what a nested <a>
	// or heading does, so the scan then declines them.
	formatting [len(formattingElements)]int

	// The heading being read, if any: its level (0 for none), whether it is
	// one of h1–h3 and so recorded, the elements open inside it, its text.
	heading int
	record  bool
	open    []atom.Atom
	text    []byte
}

const (
	titleNone = iota
	titleOpen
	titleDone
)

// maxScanHeading is the longest heading text the scan reads itself. textOf
// stops a little after 4*maxTextLen; longer headings go to the tree builder,
// which then stops exactly where Extract always has.
const maxScanHeading = 2 * maxTextLen

func (s *scanner) run() bool {
	z := s.z
	for {
		switch z.Next() {
		case html.ErrorToken:
			// bytes.Reader only ever fails with io.EOF.
			if s.title == titleOpen {
				return false // an unclosed <title> takes the rest of the page
			}
			s.endHeading()
			return true
		case html.TextToken:
			switch {
			case s.title == titleOpen:
				s.titleText = append(s.titleText, z.Text()...)
			case s.heading > 0 && s.record:
				if n := len(s.open); n > 0 && (s.open[n-1] == atom.Script || s.open[n-1] == atom.Style) {
					continue
				}
				s.text = append(s.text, z.Text()...)
				if len(s.text) > maxScanHeading {
					return false
				}
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			if !s.start() {
				return false
			}
		case html.EndTagToken:
			if !s.end() {
				return false
			}
		}
	}
}

func (s *scanner) start() bool {
	z := s.z
	a, hasAttr := s.tag()
	switch a {
	case atom.Svg, atom.Math, atom.Template, atom.Table, atom.Select, atom.Frameset, atom.Frame, atom.Plaintext:
		return false
	case atom.Noscript:
		// Scripting is off, as in Extract: <noscript> holds markup.
		z.NextIsNotRawText()
	}
	if s.heading > 0 && !s.startInHeading(a) {
		return false
	}
	if i := formattingIndex(a); i >= 0 {
		s.formatting[i]++
	}
	switch a {
	case atom.Title:
		if s.title == titleNone {
			s.title = titleOpen
		}
	case atom.Meta:
		if hasAttr {
			s.readMeta()
		}
	case atom.Base:
		if hasAttr && !s.hasBase {
			s.baseHref, s.hasBase = s.attr("href")
		}
	case atom.A:
		if hasAttr {
			if href, ok := s.attr("href"); ok {
				s.hrefs = append(s.hrefs, href)
			}
		}
	case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		if s.heading == 0 {
			s.heading = headingLevel(a)
			s.record = s.heading <= 3 && len(s.page.Headings) < maxHeadings
			s.open, s.text = s.open[:0], s.text[:0]
		}
	}
	return true
}

// startInHeading follows a start tag inside a heading. It accepts what keeps
// the heading's text predictable and reports false for the rest.
func (s *scanner) startInHeading(a atom.Atom) bool {
	switch {
	case a == atom.H1 || a == atom.H2 || a == atom.H3 || a == atom.H4 || a == atom.H5 || a == atom.H6:
		// <h1>One<h2>Two: a heading start closes a heading that is the
		// current node. With anything open inside it, or a formatting
		// element the tree builder may have reopened there, it nests.
		if len(s.open) > 0 || s.anyFormatting() {
			return false
		}
		s.endHeading()
		return true
	case a == atom.A && s.formatting[formattingIndex(atom.A)] > 0:
		return false // the adoption agency would move things around
	case a == atom.Br || a == atom.Wbr || a == atom.Img || a == atom.Meta || a == atom.Link || a == atom.Base:
		if a == atom.Br {
			s.space()
			s.space()
		}
		return true
	case a == atom.Script || a == atom.Style:
		s.open = append(s.open, a)
		return true
	case phrasing(a):
		s.open = append(s.open, a)
		return true
	case blockInHeading(a):
		if closesP(a) && slices.Contains(s.open, atom.P) {
			return false
		}
		if (a == atom.Li || a == atom.Dd || a == atom.Dt) && (slices.Contains(s.open, atom.Li) || slices.Contains(s.open, atom.Dd) || slices.Contains(s.open, atom.Dt)) {
			return false
		}
		s.open = append(s.open, a)
		s.space()
		return true
	}
	return false
}

func (s *scanner) end() bool {
	a, _ := s.tag()
	switch a {
	case atom.Title:
		if s.title == titleOpen {
			s.title = titleDone
			s.page.Title = cleanText(string(s.titleText))
		}
	}
	if i := formattingIndex(a); i >= 0 && s.formatting[i] > 0 {
		s.formatting[i]--
	}
	if s.heading == 0 {
		return true
	}
	switch a {
	case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		// Any heading end tag closes the open heading, with all inside it.
		s.endHeading()
		return true
	}
	n := len(s.open)
	if n == 0 || s.open[n-1] != a {
		return false // misnested: the tree builder repairs it its own way
	}
	s.open = s.open[:n-1]
	if blockInHeading(a) {
		s.space()
	}
	return true
}

// tag returns the atom of the current tag's name (0 for a name with none) and
// whether it has attributes. It reads the name from the raw token, as the
// tokenizer does, instead of calling TagName, which copies it: the scan sees
// no NULs, the one thing TagName would replace.
func (s *scanner) tag() (atom.Atom, bool) {
	raw := s.z.Raw()
	i := 1 // past '<'
	if i < len(raw) && raw[i] == '/' {
		i++
	}
	var buf [16]byte // longer than any atom the scan cares about
	n := 0
	for ; i < len(raw); i++ {
		c := raw[i]
		if c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '/' || c == '>' {
			break
		}
		if n == len(buf) {
			return 0, s.hasAttr(raw[i:])
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	return atom.Lookup(buf[:n]), s.hasAttr(raw[i:])
}

// hasAttr reports whether the rest of a tag, after its name, holds an
// attribute. TagAttr then reads them.
func (s *scanner) hasAttr(rest []byte) bool {
	return bytes.IndexFunc(rest, func(r rune) bool {
		return r != ' ' && r != '\n' && r != '\r' && r != '\t' && r != '\f' && r != '/' && r != '>'
	}) >= 0
}

func headingLevel(a atom.Atom) int {
	switch a {
	case atom.H1:
		return 1
	case atom.H2:
		return 2
	case atom.H3:
		return 3
	}
	return 4 // h4-h6: followed, not recorded
}

func (s *scanner) endHeading() {
	if s.heading == 0 {
		return
	}
	if s.record && len(s.page.Headings) < maxHeadings {
		if t := cleanText(string(s.text)); t != "" {
			s.page.Headings = append(s.page.Headings, t)
		}
	}
	s.heading, s.record = 0, false
}

func (s *scanner) space() {
	if s.record {
		s.text = append(s.text, ' ')
	}
}

func (s *scanner) readMeta() {
	var content, name, property string
	var hasContent, hasName, hasProperty bool
	for more := true; more; {
		var k, v []byte
		k, v, more = s.z.TagAttr()
		switch {
		case !hasContent && string(k) == "content":
			content, hasContent = string(v), true
		case !hasName && string(k) == "name":
			name, hasName = string(v), true
		case !hasProperty && string(k) == "property":
			property, hasProperty = string(v), true
		}
	}
	if hasContent {
		s.meta.add(name, property, content)
	}
}

// attr returns the first value of the current tag's attribute key.
func (s *scanner) attr(key string) (string, bool) {
	for more := true; more; {
		var k, v []byte
		k, v, more = s.z.TagAttr()
		if string(k) == key {
			return string(v), true
		}
	}
	return "", false
}

func (s *scanner) anyFormatting() bool {
	for _, n := range s.formatting {
		if n > 0 {
			return true
		}
	}
	return false
}

// formattingElements are the HTML "formatting" elements: the ones the tree
// builder reopens after an implied close.
var formattingElements = [...]atom.Atom{atom.A, atom.B, atom.Big, atom.Code, atom.Em, atom.Font, atom.I,
	atom.Nobr, atom.S, atom.Small, atom.Strike, atom.Strong, atom.Tt, atom.U}

func formattingIndex(a atom.Atom) int {
	if a == 0 {
		return -1
	}
	for i, f := range formattingElements {
		if f == a {
			return i
		}
	}
	return -1
}

// phrasing reports whether a is an inline element that the tree builder
// nests as written.
func phrasing(a atom.Atom) bool {
	switch a {
	case atom.A, atom.Abbr, atom.B, atom.Bdi, atom.Bdo, atom.Cite, atom.Code, atom.Data, atom.Dfn,
		atom.Em, atom.I, atom.Kbd, atom.Mark, atom.Q, atom.S, atom.Samp, atom.Small, atom.Span,
		atom.Strong, atom.Sub, atom.Sup, atom.Time, atom.U, atom.Var, atom.Font, atom.Big,
		atom.Strike, atom.Tt, atom.Label, atom.Ins, atom.Del:
		return true
	}
	return false
}

// blockInHeading reports whether a is a block that textOf reads as a word
// boundary and that the scan follows inside a heading.
func blockInHeading(a atom.Atom) bool {
	switch a {
	case atom.Address, atom.Article, atom.Aside, atom.Blockquote, atom.Dd, atom.Details, atom.Div,
		atom.Dl, atom.Dt, atom.Fieldset, atom.Figcaption, atom.Figure, atom.Footer, atom.Header,
		atom.Li, atom.Main, atom.Nav, atom.Noscript, atom.Ol, atom.P, atom.Pre, atom.Section,
		atom.Summary, atom.Ul:
		return true
	}
	return false
}

// closesP reports whether a start tag of a closes an open <p>.
func closesP(a atom.Atom) bool {
	switch a {
	case atom.Address, atom.Article, atom.Aside, atom.Blockquote, atom.Details, atom.Div, atom.Dl,
		atom.Fieldset, atom.Figcaption, atom.Figure, atom.Footer, atom.Header, atom.Main, atom.Nav,
		atom.Ol, atom.P, atom.Section, atom.Summary, atom.Ul, atom.Pre, atom.Li, atom.Dd, atom.Dt:
		return true
	}
	return false
}
