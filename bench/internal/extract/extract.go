// Package extract pulls the fields scrape extracts (title, description,
// h1-h3 headings, absolute http(s) links without fragments, deduplicated, in
// document order) out of a goquery document. The baseline and the Colly
// runner share it, so they do the same work per page.
package extract

import (
	"net/url"
	"strings"

	"github.com/PuerkitoBio/goquery"
)

// Page is what one document yields.
type Page struct {
	Title       string
	Description string
	Headings    []string
	Links       []string
}

// From extracts from doc (a document or its <html> element), resolving
// links against base or the document's <base href>.
func From(base *url.URL, doc *goquery.Selection) Page {
	var p Page
	p.Title = clean(doc.Find("title").First().Text())
	var ogTitle, ogDesc string
	hasDesc := false
	doc.Find("meta[content]").Each(func(_ int, s *goquery.Selection) {
		content, _ := s.Attr("content")
		name, _ := s.Attr("name")
		prop, _ := s.Attr("property")
		switch {
		case strings.EqualFold(name, "description"):
			if !hasDesc {
				hasDesc = true
				p.Description = clean(content)
			}
		case ogTitle == "" && (strings.EqualFold(prop, "og:title") || strings.EqualFold(name, "og:title")):
			ogTitle = clean(content)
		case ogDesc == "" && (strings.EqualFold(prop, "og:description") || strings.EqualFold(name, "og:description")):
			ogDesc = clean(content)
		}
	})
	if p.Title == "" {
		p.Title = ogTitle
	}
	if p.Description == "" {
		p.Description = ogDesc
	}
	doc.Find("h1, h2, h3").Each(func(_ int, s *goquery.Selection) {
		if t := clean(s.Text()); t != "" {
			p.Headings = append(p.Headings, t)
		}
	})
	if href, ok := doc.Find("base[href]").First().Attr("href"); ok {
		if b, err := base.Parse(href); err == nil {
			base = b
		}
	}
	seen := make(map[string]struct{})
	doc.Find("a[href]").Each(func(_ int, s *goquery.Selection) {
		href, _ := s.Attr("href")
		u, err := base.Parse(strings.TrimSpace(href))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return
		}
		u.Fragment, u.RawFragment = "", ""
		abs := u.String()
		if _, dup := seen[abs]; dup {
			return
		}
		seen[abs] = struct{}{}
		p.Links = append(p.Links, abs)
	})
	return p
}

func clean(s string) string { return strings.Join(strings.Fields(s), " ") }
