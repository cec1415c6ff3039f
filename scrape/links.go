package scrape

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// documentBase is the URL relative links resolve against: the first
// <base href>, itself resolved against the page URL, as browsers do. A base
// that does not parse or is not http(s) (browsers refuse javascript: and
// data:) is ignored rather than losing every relative link.
func documentBase(page *url.URL, href string, ok bool) *url.URL {
	if page == nil {
		page = &url.URL{}
	}
	if !ok {
		return page
	}
	u, err := page.Parse(cleanHref(href))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return page
	}
	return u
}

// resolveLinks turns raw hrefs into absolute, fragment-free http(s) URLs,
// deduplicated in first-seen order and capped at maxLinks.
func resolveLinks(base *url.URL, hrefs []string) []string {
	if len(hrefs) == 0 {
		return nil
	}
	links := make([]string, 0, min(len(hrefs), maxLinks))
	seen := make(map[string]struct{}, min(len(hrefs), maxLinks))
	r := newLinkResolver(base)
	for _, href := range hrefs {
		link, ok := r.resolve(href)
		if !ok {
			continue
		}
		if _, dup := seen[link]; dup {
			continue
		}
		seen[link] = struct{}{}
		links = append(links, link)
		if len(links) == maxLinks {
			break
		}
	}
	if len(links) == 0 {
		return nil
	}
	return links
}

// linkResolver resolves the hrefs of one page. Most links are plain paths
// ("/docs/intro", "next.html"); for those, when the base is plain too, it
// joins strings instead of parsing and printing a URL, with the same result
// (FuzzLinkResolver holds it to resolveLink).
type linkResolver struct {
	base   *url.URL
	prefix string // scheme://[userinfo@]host, "" when the fast path is off
	dir    string // the base's path up to its last '/'
}

func newLinkResolver(base *url.URL) linkResolver {
	r := linkResolver{base: base}
	if base == nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.Opaque != "" {
		return r
	}
	path := base.EscapedPath()
	if !strings.HasPrefix(path, "/") || !plainPath(path) {
		return r
	}
	r.prefix = (&url.URL{Scheme: base.Scheme, User: base.User, Host: base.Host}).String()
	r.dir = path[:strings.LastIndexByte(path, '/')+1]
	return r
}

func (r linkResolver) resolve(href string) (string, bool) {
	if r.prefix != "" {
		h := cleanHref(href)
		if h != "" && !strings.HasPrefix(h, "//") && plainPath(h) {
			link := r.prefix + h
			if h[0] != '/' {
				link = r.prefix + r.dir + h
			}
			if len(link) > maxLinkLen {
				return "", false
			}
			return link, true
		}
	}
	return resolveLink(r.base, href)
}

// plainPath reports whether p is a path that resolving and printing a URL
// leave as it is: letters, digits, "-_~/." only, no dot segments, no empty
// segments.
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '~':
		case c == '/':
			if i+1 < len(p) && p[i+1] == '/' {
				return false
			}
		case c == '.':
			if i == 0 || p[i-1] == '/' {
				return false // "." or ".." segments, and names like ".x", which need no care but are rare
			}
		default:
			return false
		}
	}
	return true
}

func resolveLink(base *url.URL, href string) (string, bool) {
	href = cleanHref(href)
	// An empty or fragment-only href points back into this same document, so
	// it is not an outgoing link.
	if href == "" || href[0] == '#' {
		return "", false
	}
	// Checking the scheme first spares parsing javascript: and data: URLs,
	// which can be very long.
	if s, ok := scheme(href); ok && !strings.EqualFold(s, "http") && !strings.EqualFold(s, "https") {
		return "", false
	}
	u, err := base.Parse(href)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false
	}
	u.Fragment, u.RawFragment = "", ""
	link := u.String()
	if len(link) > maxLinkLen || !utf8.ValidString(link) {
		return "", false
	}
	return link, true
}

// cleanHref strips what browsers strip before parsing a URL: surrounding
// whitespace and control characters, and tabs and newlines anywhere (markup
// often wraps long hrefs). Go's URL parser rejects these outright.
func cleanHref(href string) string {
	href = strings.TrimFunc(href, func(r rune) bool { return r <= ' ' })
	if strings.ContainsAny(href, "\t\n\r") {
		href = strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(href)
	}
	return href
}

// scheme returns the scheme of href if it has one by RFC 3986 syntax.
func scheme(href string) (string, bool) {
	for i := 0; i < len(href); i++ {
		c := href[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9', c == '+', c == '-', c == '.':
			if i == 0 {
				return "", false
			}
		case c == ':':
			return href[:i], i > 0
		default:
			return "", false
		}
	}
	return "", false
}
