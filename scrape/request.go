package scrape

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Header is one -H/--header: sent with every request of the run.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ParseHeader parses "Name: value", as curl's -H takes it.
func ParseHeader(s string) (Header, error) {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return Header{}, fmt.Errorf("header %q: want 'Name: value'", s)
	}
	if !httpguts.ValidHeaderFieldName(name) {
		return Header{}, fmt.Errorf("header %q: %q is no header name", s, name)
	}
	value = strings.TrimSpace(value)
	if !httpguts.ValidHeaderFieldValue(value) {
		return Header{}, fmt.Errorf("header %q: the value has a control character", s)
	}
	// Host is the URL's, and the transport sets the framing headers
	// itself; one given here would be ignored or break the request.
	switch textproto.CanonicalMIMEHeaderKey(name) {
	case "Host", "Content-Length", "Transfer-Encoding", "Connection":
		return Header{}, fmt.Errorf("header %q: %s is set by scrape itself", s, name)
	}
	return Header{Name: textproto.CanonicalMIMEHeaderKey(name), Value: value}, nil
}

// Cookie is a cookie the user gives (--cookie, --cookies). A cookie
// without a Domain is sent to the hosts the urls file lists, never to a
// host only a crawl found: a session cookie is the user's to hand out.
type Cookie struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Domain string `json:"domain,omitempty"` // lower case, no leading dot
	// Subdomains sends the cookie to Domain's subdomains too (the second
	// column of cookies.txt).
	Subdomains bool      `json:"subdomains,omitempty"`
	Path       string    `json:"path,omitempty"`
	Secure     bool      `json:"secure,omitempty"`
	Expires    time.Time `json:"expires,omitzero"` // zero: a session cookie
}

// ParseCookie parses --cookie: "name=value", sent to the listed hosts.
func ParseCookie(s string) (Cookie, error) {
	name, value, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return Cookie{}, fmt.Errorf("cookie %q: want name=value", redactCookie(s))
	}
	c := Cookie{Name: name, Value: strings.TrimSpace(value)}
	if err := c.valid(); err != nil {
		return Cookie{}, fmt.Errorf("cookie %q: %w", redactCookie(s), err)
	}
	return c, nil
}

// redactCookie keeps a cookie's value out of error messages and logs.
func redactCookie(s string) string {
	if name, _, ok := strings.Cut(s, "="); ok {
		return name + "=…"
	}
	return s
}

func (c Cookie) valid() error {
	if (&http.Cookie{Name: c.Name, Value: c.Value}).Valid() != nil || strings.ContainsAny(c.Value, ";\"\\ \t") {
		return fmt.Errorf("name or value has a character a Cookie header cannot carry")
	}
	return nil
}

// matches reports whether c goes with a request for u at now. listed is
// the host the urls file lists for this fetch ("" if none).
func (c *Cookie) matches(u *url.URL, listed string, now time.Time) bool {
	if !c.Expires.IsZero() && !now.Before(c.Expires) {
		return false
	}
	if c.Secure && u.Scheme != "https" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case c.Domain == "":
		if listed == "" || !strings.EqualFold(listed, host) {
			return false
		}
	case host == c.Domain:
	case c.Subdomains && strings.HasSuffix(host, "."+c.Domain):
	default:
		return false
	}
	return pathMatch(u.EscapedPath(), c.Path)
}

// pathMatch is RFC 6265's path-match.
func pathMatch(reqPath, cookiePath string) bool {
	if cookiePath == "" || cookiePath == "/" {
		return true
	}
	if reqPath == "" {
		reqPath = "/"
	}
	if !strings.HasPrefix(reqPath, cookiePath) {
		return false
	}
	return len(reqPath) == len(cookiePath) || strings.HasSuffix(cookiePath, "/") || reqPath[len(cookiePath)] == '/'
}

// cookieHeader joins the cookies of cs that go with u, and extra (a Cookie
// header's value the task carries), into one Cookie header value.
func cookieHeader(cs []Cookie, u *url.URL, listed, extra string, now time.Time) string {
	var b strings.Builder
	b.WriteString(extra)
	for i := range cs {
		if !cs[i].matches(u, listed, now) {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(cs[i].Name)
		b.WriteByte('=')
		b.WriteString(cs[i].Value)
	}
	return b.String()
}
