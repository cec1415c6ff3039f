package scrape

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Limits on what one page may contribute to its record. A record travels as a
// single queue message, so it has to stay bounded however hostile the page:
// without these, a generated page could turn 10 MiB of HTML into a record many
// times that size. Real pages stay far below every one of them.
const (
	maxLinks    = 10000
	maxLinkLen  = 2048 // longer URLs are almost always tracking or session junk
	maxHeadings = 1000
	maxTextLen  = 1024 // bytes per title, description or heading
)

// Page is what Extract finds in one HTML document.
type Page struct {
	Title       string
	Description string
	Headings    []string
	Links       []string
	// Fields has one key per ExtractOptions.Select name, with an empty list
	// when nothing matched; it is nil without selectors.
	Fields map[string][]string
	// Text is the page's visible text, with ExtractOptions.Text.
	Text string
	// Data is the page's structured data as JSON (Structured), with
	// ExtractOptions.Structured; nil when the page states none.
	Data json.RawMessage
}

// ExtractOptions asks Extract for more than it always finds.
type ExtractOptions struct {
	Select []Selector // values for Page.Fields
	Text   bool       // fill Page.Text
	// Structured fills Page.Data. It needs the tree, as Select and Text do:
	// without any of them the fast token scan reads the page.
	Structured bool
}

// extractor is ExtractOptions compiled, ready for any number of pages.
type extractor struct {
	fields     []field
	text       bool
	structured bool
}

func newExtractor(opt ExtractOptions) (extractor, error) {
	fields, err := compileSelectors(opt.Select)
	return extractor{fields: fields, text: opt.Text, structured: opt.Structured}, err
}

// Extract parses the UTF-8 HTML document in r and pulls out its title,
// description, h1–h3 headings and outgoing http(s) links, resolved against
// base (or the document's own <base href>), and what opt asks for: the values
// of selectors and the page's text. The caller decodes other charsets and
// bounds the size of r; Fetch does both. The errors are invalid selectors in
// opt, a failing r, and a document the HTML parser refuses to build a tree
// of, such as one nested deeper than its 512 open elements: then the error is
// an *Error of KindParseLimit, and the Page holds what the token scan read
// (see scanPrefix), without Fields or Text.
//
// Malformed markup is not an error: it is repaired the way a browser would,
// which is why this builds the HTML5 tree instead of scanning tokens.
func Extract(base *url.URL, r io.Reader, opt ExtractOptions) (Page, error) {
	x, err := newExtractor(opt)
	if err != nil {
		return Page{}, err
	}
	return x.extract(base, r)
}

// docPool recycles the buffers extract reads documents into.
var docPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (x extractor) extract(base *url.URL, r io.Reader) (Page, error) {
	buf := docPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBuf {
			docPool.Put(buf)
		}
	}()
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return Page{}, fmt.Errorf("parse html: %w", err)
	}
	doc := buf.Bytes()
	if len(x.fields) == 0 && !x.text && !x.structured {
		if p, ok := scanPage(base, doc); ok {
			return p, nil
		}
	}
	p, err := x.extractTree(base, doc)
	if err != nil {
		return scanPrefix(base, doc), err
	}
	return p, nil
}

// scanPrefix is what scanPage reads of doc before it declines, or all of it
// when it does not: the most there is of a page the parser refused. A heading
// the scan was reading when it declined is left out, and nothing after a NUL
// is read.
func scanPrefix(base *url.URL, doc []byte) Page {
	if i := bytes.IndexByte(doc, 0); i >= 0 {
		doc = doc[:i]
	}
	s := scanner{z: html.NewTokenizer(bytes.NewReader(doc))}
	s.run()
	return s.result(base)
}

// extractTree builds the document's HTML5 tree and reads everything from it:
// the way for selectors and text, and for pages scanPage declines. The only
// error is the parser's refusal of src, an *Error of KindParseLimit.
func (x extractor) extractTree(base *url.URL, src []byte) (Page, error) {
	// Without scripting, <noscript> content is parsed as markup, which is what
	// a crawler that runs no JavaScript actually sees, fallback links included.
	root, err := html.ParseWithOptions(bytes.NewReader(src), html.ParseOptionEnableScripting(false))
	if err != nil {
		// A bytes.Reader does not fail, so this is the parser giving up on
		// the document itself (it panics past 512 open elements and returns
		// the panic): it will do so on every attempt.
		return Page{}, Errorf(KindParseLimit, "%s", err)
	}
	doc := goquery.NewDocumentFromNode(root)
	var p Page
	var meta metaInfo
	doc.Find("title").EachWithBreak(func(_ int, s *goquery.Selection) bool {
		if n := s.Get(0); rendered(n) {
			p.Title = cleanText(textOf(n))
			return false
		}
		return true
	})
	doc.Find("meta[content]").Each(func(_ int, s *goquery.Selection) {
		n := s.Get(0)
		if !rendered(n) {
			return
		}
		content, _ := attr(n, "content")
		name, _ := attr(n, "name")
		property, _ := attr(n, "property")
		meta.add(name, property, content)
	})
	meta.fill(&p)

	doc.Find("h1, h2, h3").EachWithBreak(func(_ int, s *goquery.Selection) bool {
		if n := s.Get(0); rendered(n) {
			if t := cleanText(textOf(n)); t != "" {
				p.Headings = append(p.Headings, t)
			}
		}
		return len(p.Headings) < maxHeadings
	})

	baseHref, hasBase := "", false
	doc.Find("base[href]").EachWithBreak(func(_ int, s *goquery.Selection) bool {
		if n := s.Get(0); rendered(n) {
			baseHref, hasBase = attr(n, "href")
			return false
		}
		return true
	})
	// Links inside SVG count too: they are followed like any other.
	var hrefs []string
	doc.Find("a[href]").Each(func(_ int, s *goquery.Selection) {
		n := s.Get(0)
		if inTemplate(n) {
			return
		}
		href, _ := attr(n, "href")
		hrefs = append(hrefs, href)
	})
	docBase := documentBase(base, baseHref, hasBase)
	p.Links = resolveLinks(docBase, hrefs)
	if len(x.fields) > 0 {
		p.Fields = extractFields(x.fields, root, docBase)
	}
	if x.text {
		p.Text = pageText(root)
	}
	if x.structured {
		p.Data = extractStructured(root, docBase)
	}
	return p, nil
}

// metaInfo is what the <meta content> elements of a page say, read in
// document order.
type metaInfo struct {
	description            string
	hasDescription         bool
	ogTitle, ogDescription string
}

func (m *metaInfo) add(name, property, content string) {
	switch {
	case strings.EqualFold(name, "description"):
		if !m.hasDescription {
			m.hasDescription = true
			m.description = cleanText(content)
		}
	// Open Graph says property=, but name= is a common mistake that every
	// consumer of og: tags accepts.
	case m.ogTitle == "" && (strings.EqualFold(property, "og:title") || strings.EqualFold(name, "og:title")):
		m.ogTitle = cleanText(content)
	case m.ogDescription == "" && (strings.EqualFold(property, "og:description") || strings.EqualFold(name, "og:description")):
		m.ogDescription = cleanText(content)
	}
}

// fill sets p's description, and its title and description where the page
// gave none, from what the <meta> elements said.
func (m *metaInfo) fill(p *Page) {
	p.Description = m.description
	if p.Title == "" {
		p.Title = m.ogTitle
	}
	if p.Description == "" {
		p.Description = m.ogDescription
	}
}

// rendered reports whether n is an HTML element that is part of the page as
// shown: an <svg><title> is a tooltip, not the document's title, and what
// sits in a <template> is not on the page at all.
func rendered(n *html.Node) bool {
	return n.Namespace == "" && !inTemplate(n)
}

func inTemplate(n *html.Node) bool {
	for p := n.Parent; p != nil; p = p.Parent {
		if p.Type == html.ElementNode && p.DataAtom == atom.Template {
			return true
		}
	}
	return false
}

// attr returns the first value of the plain (non-namespaced) attribute key.
func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key && a.Namespace == "" {
			return a.Val, true
		}
	}
	return "", false
}
