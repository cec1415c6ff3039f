package coordinator

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/scrape-cluster/scrape/scrape"
)

// sessionJar is the run's one cookie jar (--session). Workers send back
// the cookies each page set (scrape.Result.SetCookies); the jar keeps
// them by the rules a browser's does (domain, path, expiry, public
// suffixes), and frontier.publish gives each task the Cookie header the
// jar holds for its URL, so a login done on one node holds on every node.
//
// Workers are not trusted: a result may only set cookies from its own
// task's site (the task's host, or one of the same registrable domain, as
// a redirect through login.example.com to www.example.com has), so a
// worker cannot plant a cookie for a site it was not sent to.
type sessionJar struct {
	jar *cookiejar.Jar
}

func newSessionJar() *sessionJar {
	// cookiejar.New fails only on options it never refuses.
	j, _ := cookiejar.New(&cookiejar.Options{PublicSuffixList: publicsuffix.List})
	return &sessionJar{jar: j}
}

// store keeps the cookies task's page set. They arrive in the order their
// responses came, so a later one replaces an earlier of the same name.
func (s *sessionJar) store(task scrape.Task, sets []scrape.SetCookie) {
	tu, err := url.Parse(task.URL)
	if err != nil {
		return
	}
	site := registrable(tu.Hostname())
	for _, sc := range sets {
		u, err := url.Parse(sc.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || registrable(u.Hostname()) != site {
			continue
		}
		// The strings point into the result's message: the jar keeps
		// its own copy.
		c, err := http.ParseSetCookie(strings.Clone(sc.Header))
		if err != nil {
			continue
		}
		s.jar.SetCookies(u, []*http.Cookie{c})
	}
}

// header is the Cookie header for a request of rawURL ("" for none).
func (s *sessionJar) header(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, c := range s.jar.Cookies(u) {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(c.Name)
		b.WriteByte('=')
		b.WriteString(c.Value)
	}
	return b.String()
}

// registrable is host's registrable domain (example.co.uk for
// www.example.co.uk), or host itself when it has none: an IP address,
// localhost, a public suffix.
func registrable(host string) string {
	host = strings.ToLower(host)
	if d, err := publicsuffix.EffectiveTLDPlusOne(host); err == nil {
		return d
	}
	return host
}
