package scrape

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"
)

// Limits on what --select may add to one record; see the limits in
// extract.go for why there are any. A value is cut to maxFieldLen like a
// title is cut to maxTextLen; once the page's values together reach
// maxFieldsBytes, later values are dropped, so the record keeps a prefix of
// every list in document and selector order.
const (
	maxFieldValues  = 1000    // values per field
	maxFieldLen     = 4096    // bytes per value
	maxFieldsBytes  = 1 << 20 // bytes of all values of one page
	maxSelectorName = 64      // bytes
)

// urlAttrs are the attributes whose value is a URL, resolved against the
// document's base as a browser's element.href or img.src would be. srcset is
// not here: it is a list of URLs with sizes, and is kept as written.
var urlAttrs = map[string]bool{
	"href": true, "src": true, "action": true, "formaction": true, "cite": true,
	"poster": true, "background": true, "longdesc": true, "data": true,
	"data-src": true, "data-href": true, "xlink:href": true,
}

// Selector is one --select expression. For every element of the page that CSS
// matches, Fields[Name] gets the element's text, or with Attr the value of
// that attribute (elements without it are skipped).
//
// It travels inside Config to every worker, so it holds only the expression;
// each Fetcher compiles it once.
type Selector struct {
	Name string
	CSS  string
	Attr string // "" for the element's text
}

// String returns the expression in the form ParseSelector reads.
func (s Selector) String() string {
	if s.Attr == "" {
		return s.Name + "=" + s.CSS
	}
	return s.Name + "=" + s.CSS + "@" + s.Attr
}

// SelectorError says which selector expression is wrong and why.
type SelectorError struct {
	Expr string // the expression as given
	Err  error
}

func (e *SelectorError) Error() string { return fmt.Sprintf("selector %q: %v", e.Expr, e.Err) }
func (e *SelectorError) Unwrap() error { return e.Err }

// ParseSelector reads a command-line selector: NAME=CSS for the text of the
// matching elements, NAME=CSS@ATTR for the value of their attribute ATTR, as
// in price=.price, img=img.hero@src or next=a[rel=next]@href.
//
// NAME ends at the first '='; attribute selectors put more of them in CSS.
// ATTR starts after the last '@', and only when what follows is an attribute
// name and the '@' is not escaped: '@' has no other use at the end of a
// selector. The CSS is compiled here, so that a mistake stops the run before
// it starts instead of giving every record an empty field.
func ParseSelector(expr string) (Selector, error) {
	name, css, ok := strings.Cut(expr, "=")
	if !ok {
		return Selector{}, &SelectorError{expr, errors.New("want NAME=CSS or NAME=CSS@ATTR")}
	}
	s := Selector{Name: strings.TrimSpace(name), CSS: strings.TrimSpace(css)}
	if err := checkName(s.Name); err != nil {
		return Selector{}, &SelectorError{expr, err}
	}
	hint := ""
	if i := strings.LastIndexByte(s.CSS, '@'); i >= 0 && !escaped(s.CSS, i) {
		attr := strings.TrimSpace(s.CSS[i+1:])
		switch {
		case attr == "":
			return Selector{}, &SelectorError{expr, errors.New(`missing attribute name after "@"`)}
		case validAttrName(attr):
			s.CSS, s.Attr = strings.TrimSpace(s.CSS[:i]), attr
		default:
			hint = fmt.Sprintf(" (%q is not an attribute name)", attr)
		}
	}
	if _, err := s.compile(); err != nil {
		return Selector{}, &SelectorError{expr, fmt.Errorf("%w%s", err, hint)}
	}
	return s, nil
}

// escaped reports whether s[i] is escaped by a backslash, as in .a\@b.
func escaped(s string, i int) bool {
	n := 0
	for i > 0 && s[i-1] == '\\' {
		n++
		i--
	}
	return n%2 == 1
}

// validAttrName accepts what HTML and SVG pages use as attribute names:
// letters, digits, '-', '_', '.' and ':', not starting with a digit, '-' or
// '.'.
func validAttrName(s string) bool {
	if s == "" || len(s) > maxSelectorName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_', c == ':':
		case '0' <= c && c <= '9', c == '-', c == '.':
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func checkName(name string) error {
	if name == "" {
		return errors.New(`missing NAME before "="`)
	}
	if len(name) > maxSelectorName {
		return fmt.Errorf("name longer than %d bytes", maxSelectorName)
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' && r != '-' && r != '.' {
			return fmt.Errorf("invalid name %q: use letters, digits, '_', '-' and '.'", name)
		}
	}
	return nil
}

// field is a compiled Selector.
type field struct {
	name  string
	match cascadia.Matcher
	attr  string
	isURL bool
}

func (s Selector) compile() (field, error) {
	if err := checkName(s.Name); err != nil {
		return field{}, err
	}
	if s.Attr != "" && !validAttrName(s.Attr) {
		return field{}, fmt.Errorf("invalid attribute name %q", s.Attr)
	}
	if strings.TrimSpace(s.CSS) == "" {
		return field{}, errors.New("empty CSS selector")
	}
	m, err := cascadia.ParseGroup(s.CSS)
	if err != nil {
		return field{}, fmt.Errorf("invalid CSS selector: %w", err)
	}
	return field{name: s.Name, match: m, attr: s.Attr, isURL: urlAttrs[strings.ToLower(s.Attr)]}, nil
}

// compileSelectors compiles sels and checks that their names are distinct:
// each name is one key of Fields and one output column.
func compileSelectors(sels []Selector) ([]field, error) {
	if len(sels) == 0 {
		return nil, nil
	}
	fields := make([]field, 0, len(sels))
	seen := make(map[string]bool, len(sels))
	for _, s := range sels {
		f, err := s.compile()
		if err != nil {
			return nil, &SelectorError{s.String(), err}
		}
		if seen[f.name] {
			return nil, &SelectorError{s.String(), fmt.Errorf("duplicate name %q", f.name)}
		}
		seen[f.name] = true
		fields = append(fields, f)
	}
	return fields, nil
}

// extractFields applies every field to the document under root. Each field's
// key is present, with an empty (not nil) list when nothing matched, so that
// consumers see the same keys on every page. Elements inside a <template> are
// not on the page and never match.
func extractFields(fields []field, root *html.Node, base *url.URL) map[string][]string {
	out := make(map[string][]string, len(fields))
	budget := maxFieldsBytes
	for _, f := range fields {
		values := []string{}
		for n := root; n != nil && budget > 0 && len(values) < maxFieldValues; n = nextNode(n, root) {
			if n.Type != html.ElementNode || !f.match.Match(n) || inTemplate(n) {
				continue
			}
			v, ok := f.value(n, base)
			if !ok {
				continue
			}
			if len(v) > budget {
				budget = 0 // keep a clean prefix: no smaller value after this one
				break
			}
			budget -= len(v)
			values = append(values, v)
		}
		out[f.name] = values
	}
	return out
}

// value is what element n contributes to f, if anything.
func (f field) value(n *html.Node, base *url.URL) (string, bool) {
	if f.attr == "" {
		return nodeText(n, maxFieldLen, false), true
	}
	v, ok := attrFold(n, f.attr)
	if !ok {
		return "", false
	}
	if f.isURL {
		v = resolveRef(base, v)
	}
	return truncate(strings.ToValidUTF8(v, "\uFFFD"), maxFieldLen), true
}

// attrFold returns the value of attribute key, matched without regard to
// case: the parser lower-cases HTML attribute names but keeps SVG's viewBox
// and friends as written. A key with a prefix, like xlink:href, also finds the
// attribute the parser put in that namespace.
func attrFold(n *html.Node, key string) (string, bool) {
	prefix, local, hasPrefix := strings.Cut(key, ":")
	for _, a := range n.Attr {
		switch {
		case a.Namespace == "" && strings.EqualFold(a.Key, key),
			hasPrefix && strings.EqualFold(a.Namespace, prefix) && strings.EqualFold(a.Key, local):
			return a.Val, true
		}
	}
	return "", false
}

// resolveRef makes a URL attribute absolute, as the DOM's element.href does:
// relative references resolve against base, fragments stay, and anything that
// does not parse or has a scheme other than http(s) (mailto:, javascript:,
// data:) is kept as written.
func resolveRef(base *url.URL, ref string) string {
	ref = cleanHref(ref)
	if s, ok := scheme(ref); ok && !strings.EqualFold(s, "http") && !strings.EqualFold(s, "https") {
		return ref
	}
	u, err := base.Parse(ref)
	if err != nil {
		return ref
	}
	return u.String()
}

// nextNode returns the node after n in document order within root, or nil.
func nextNode(n, root *html.Node) *html.Node {
	if n.FirstChild != nil {
		return n.FirstChild
	}
	for n != root && n.NextSibling == nil {
		n = n.Parent
	}
	if n == root {
		return nil
	}
	return n.NextSibling
}
