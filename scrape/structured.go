package scrape

import (
	"encoding/json"
	"mime"
	"net/url"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Limits on the structured data of one page (--structured). The data rides
// in the page's record, one queue message, so it is bounded like the rest of
// the record however many items a generated page holds. Real pages carry a
// handful of JSON-LD blocks and microdata items.
const (
	// MaxData is the most bytes of JSON Result.Data may hold. Past it the
	// last JSON-LD and microdata items are dropped and Truncated is set;
	// the coordinator refuses a larger one from a worker.
	MaxData         = 256 << 10
	maxLDBlock      = MaxData // bytes of one <script type="application/ld+json">
	maxItems        = 100     // JSON-LD items, and microdata items, per page
	maxProps        = 200     // properties of one microdata item, and meta keys
	maxValues       = 20      // values of one microdata property or meta key
	maxItemDepth    = 8       // microdata items nested in items
	maxPropValueLen = 4 * maxTextLen
)

// Structured is what a page states about itself in machine-readable form:
// the record's "data" with --structured.
type Structured struct {
	// JSONLD holds the parsed JSON of every <script type="application/ld+json">
	// block, one entry per item: a block that is an array gives each of its
	// elements, and an object with an @graph each item of the graph, so
	// a consumer reads one flat list whatever the site's style. A block
	// that is no valid JSON is skipped.
	JSONLD []json.RawMessage `json:"jsonld,omitempty"`
	// OpenGraph holds <meta property="og:*"> (and the other Open Graph
	// namespaces: article:, product:, book:, profile:, music:, video:), by
	// property, each with its values in document order: og:image may come
	// several times.
	OpenGraph map[string][]string `json:"opengraph,omitempty"`
	// Twitter holds <meta name="twitter:*"> cards' properties likewise.
	Twitter map[string][]string `json:"twitter,omitempty"`
	// Microdata holds the page's top-level itemscope items.
	Microdata []*MicroItem `json:"microdata,omitempty"`
	// Truncated says items were dropped to keep the data within MaxData.
	Truncated bool `json:"truncated,omitempty"`
}

// MicroItem is one microdata item: its types, its global identifier, and its
// properties by name. A property's values are strings (text, or an absolute
// URL for src and href) or nested items (*MicroItem).
type MicroItem struct {
	Type       []string         `json:"type,omitempty"`
	ID         string           `json:"id,omitempty"`
	Properties map[string][]any `json:"properties"`
}

func (s *Structured) empty() bool {
	return len(s.JSONLD) == 0 && len(s.OpenGraph) == 0 && len(s.Twitter) == 0 && len(s.Microdata) == 0
}

// encode returns s as JSON within MaxData, or nil when the page states
// nothing.
func (s *Structured) encode() json.RawMessage {
	if s.empty() {
		return nil
	}
	b, err := json.Marshal(s)
	if err == nil && len(b) <= MaxData {
		return b
	}
	s.Truncated = true
	// Each part's size, measured once: the lists' by item, so that items
	// are dropped from the end of whichever part is biggest at the time,
	// and a few huge meta tags cost the page its meta tags, not its items.
	ld := make([]int, len(s.JSONLD))
	for i, it := range s.JSONLD {
		ld[i] = len(it) + 1
	}
	micro := make([]int, len(s.Microdata))
	for i, it := range s.Microdata {
		mb, _ := json.Marshal(it)
		micro[i] = len(mb) + 1
	}
	og, tw := jsonSize(s.OpenGraph), jsonSize(s.Twitter)
	sum := func(sizes []int) (n int) {
		for _, x := range sizes {
			n += x
		}
		return n
	}
	ldSize, microSize := sum(ld), sum(micro)
	// What the keys and braces take besides the parts.
	const frame = 128
	for ldSize+microSize+og+tw+frame > MaxData {
		switch max(ldSize, microSize, og, tw) {
		case 0:
			return nil
		case ldSize:
			ldSize -= ld[len(ld)-1]
			ld = ld[:len(ld)-1]
			s.JSONLD = s.JSONLD[:len(ld)]
		case microSize:
			microSize -= micro[len(micro)-1]
			micro = micro[:len(micro)-1]
			s.Microdata = s.Microdata[:len(micro)]
		case og:
			s.OpenGraph, og = nil, 0
		default:
			s.Twitter, tw = nil, 0
		}
	}
	if b, err = json.Marshal(s); err != nil || len(b) > MaxData {
		return nil
	}
	return b
}

func jsonSize(m map[string][]string) int {
	if len(m) == 0 {
		return 0
	}
	b, _ := json.Marshal(m)
	return len(b)
}

// extractStructured reads the JSON-LD, Open Graph, Twitter card and
// microdata of the document at root. base resolves microdata URL values.
func extractStructured(root *html.Node, base *url.URL) json.RawMessage {
	var s Structured
	for n := root; n != nil; n = nextNode(n, root) {
		if n.Type != html.ElementNode || !rendered(n) {
			continue
		}
		switch n.DataAtom {
		case atom.Script:
			if t, _ := attr(n, "type"); isLDType(t) && len(s.JSONLD) < maxItems {
				s.JSONLD = appendLD(s.JSONLD, textContent(n))
			}
		case atom.Meta:
			content, ok := attr(n, "content")
			if !ok {
				continue
			}
			property, _ := attr(n, "property")
			name, _ := attr(n, "name")
			// Twitter documents name=, Open Graph property=; each is found
			// written the other way, and every consumer accepts both.
			for _, key := range []string{property, name} {
				k := strings.ToLower(strings.TrimSpace(key))
				switch {
				case strings.HasPrefix(k, "twitter:"):
					s.Twitter = addMeta(s.Twitter, k, content)
				case isOGKey(k):
					s.OpenGraph = addMeta(s.OpenGraph, k, content)
				default:
					continue
				}
				break
			}
		}
		if _, scope := attr(n, "itemscope"); scope && len(s.Microdata) < maxItems {
			if _, prop := attr(n, "itemprop"); !prop {
				s.Microdata = append(s.Microdata, microItem(n, base, 0))
			}
		}
	}
	return s.encode()
}

func isLDType(t string) bool {
	mt, _, err := mime.ParseMediaType(t)
	return err == nil && mt == "application/ld+json"
}

// ogPrefixes are the Open Graph namespaces a page's meta properties use.
var ogPrefixes = []string{"og:", "article:", "product:", "book:", "profile:", "music:", "video:", "fb:"}

func isOGKey(k string) bool {
	for _, p := range ogPrefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func addMeta(m map[string][]string, key, value string) map[string][]string {
	if m == nil {
		m = map[string][]string{}
	}
	if _, ok := m[key]; !ok && len(m) >= maxProps {
		return m
	}
	if len(m[key]) < maxValues {
		m[key] = append(m[key], cleanText(value))
	}
	return m
}

// textContent is the raw text of an element's children: a <script>'s source.
func textContent(n *html.Node) string {
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return b.String()
}

// appendLD parses one JSON-LD block and appends its items to items. The
// numbers stay as written (UseNumber): a price of 19.90 is not made 19.9.
func appendLD(items []json.RawMessage, src string) []json.RawMessage {
	if len(src) > maxLDBlock {
		return items
	}
	// Sites wrap blocks in HTML comments or CDATA markers for old browsers.
	src = strings.TrimSpace(src)
	for _, w := range [][2]string{{"<!--", "-->"}, {"//<![CDATA[", "//]]>"}, {"<![CDATA[", "]]>"}} {
		if strings.HasPrefix(src, w[0]) && strings.HasSuffix(src, w[1]) {
			src = strings.TrimSpace(src[len(w[0]) : len(src)-len(w[1])])
		}
	}
	d := json.NewDecoder(strings.NewReader(src))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return items
	}
	var list []any
	switch x := v.(type) {
	case []any:
		list = x
	case map[string]any:
		if g, ok := x["@graph"].([]any); ok {
			// Each item of the graph stands alone; the block's @context
			// applies to them all, so each keeps it.
			ctx, hasCtx := x["@context"]
			for _, it := range g {
				if m, ok := it.(map[string]any); ok && hasCtx {
					if _, own := m["@context"]; !own {
						m["@context"] = ctx
					}
				}
				list = append(list, it)
			}
		} else {
			list = []any{x}
		}
	default:
		return items
	}
	for _, it := range list {
		if len(items) >= maxItems {
			break
		}
		if b, err := json.Marshal(it); err == nil {
			items = append(items, b)
		}
	}
	return items
}

// microItem reads the item whose itemscope element is n: its properties
// are the itemprop elements under n that no nearer item claims. itemref is
// not followed.
func microItem(n *html.Node, base *url.URL, depth int) *MicroItem {
	it := &MicroItem{Properties: map[string][]any{}}
	if t, ok := attr(n, "itemtype"); ok {
		it.Type = strings.Fields(t)
	}
	if id, ok := attr(n, "itemid"); ok {
		it.ID = resolveRef(base, strings.TrimSpace(id))
	}
	var walk func(p *html.Node)
	walk = func(p *html.Node) {
		for c := p.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != html.ElementNode || inTemplate(c) {
				continue
			}
			props, hasProp := attr(c, "itemprop")
			_, scope := attr(c, "itemscope")
			if hasProp {
				var v any
				if scope {
					if depth+1 < maxItemDepth {
						v = microItem(c, base, depth+1)
					}
				} else {
					v = propValue(c, base)
				}
				if v != nil {
					for _, name := range strings.Fields(props) {
						if _, ok := it.Properties[name]; !ok && len(it.Properties) >= maxProps {
							continue
						}
						if len(it.Properties[name]) < maxValues {
							it.Properties[name] = append(it.Properties[name], v)
						}
					}
				}
			}
			// An element with itemscope is an item of its own: what is
			// inside belongs to it, not to this one.
			if !scope {
				walk(c)
			}
		}
	}
	walk(n)
	return it
}

// propValue is the value of a non-item itemprop element, by the rules of
// the HTML standard's microdata: URLs from the elements that link, machine
// values from meta, data, meter and time, and text from the rest.
func propValue(n *html.Node, base *url.URL) string {
	var key string
	isURL := false
	switch n.DataAtom {
	case atom.Meta:
		key = "content"
	case atom.Audio, atom.Embed, atom.Iframe, atom.Img, atom.Source, atom.Track, atom.Video:
		key, isURL = "src", true
	case atom.A, atom.Area, atom.Link:
		key, isURL = "href", true
	case atom.Object:
		key, isURL = "data", true
	case atom.Data, atom.Meter:
		key = "value"
	case atom.Time:
		if v, ok := attr(n, "datetime"); ok {
			return truncate(strings.TrimSpace(v), maxPropValueLen)
		}
	}
	if key != "" {
		v, _ := attr(n, key)
		if isURL {
			if v = strings.TrimSpace(v); v == "" {
				return ""
			}
			return truncate(resolveRef(base, v), maxPropValueLen)
		}
		return truncate(strings.ToValidUTF8(v, "\uFFFD"), maxPropValueLen)
	}
	t := textBuf{limit: maxPropValueLen}
	walkText(n, &t, false, 0)
	return strings.TrimSpace(t.b.String())
}
