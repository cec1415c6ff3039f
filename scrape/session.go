package scrape

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"
)

type cookiesKey struct{}

// WithCookies gives a fetch the Cookie header its task carries (the
// coordinator's jar, --session), sent to the task's own host.
func WithCookies(ctx context.Context, header string) context.Context {
	if header == "" {
		return ctx
	}
	return context.WithValue(ctx, cookiesKey{}, header)
}

// fetchJar is one fetch's cookie jar, with --session: what it sends is
// the run's cookies, the task's, and those this fetch's responses set;
// what they set it keeps for the record.
type fetchJar struct {
	static []Cookie
	task   *url.URL
	listed string
	header string // the task's Cookie header
	now    time.Time
	jar    *cookiejar.Jar // made at the first Set-Cookie
	set    []SetCookie
}

func newFetchJar(static []Cookie, task *url.URL, listed, header string, now time.Time) *fetchJar {
	return &fetchJar{static: static, task: task, listed: listed, header: header, now: now}
}

// SetCookies keeps what a response set, for the request after it (a
// redirect) and for the record.
func (j *fetchJar) SetCookies(u *url.URL, cs []*http.Cookie) {
	if len(cs) == 0 {
		return
	}
	if j.jar == nil {
		j.jar, _ = cookiejar.New(&cookiejar.Options{PublicSuffixList: publicsuffix.List})
	}
	j.jar.SetCookies(u, cs)
	for _, c := range cs {
		j.set = append(j.set, SetCookie{URL: u.String(), Header: c.String()})
	}
}

// Cookies returns what goes with a request for u. The client turns them
// into one Cookie header.
func (j *fetchJar) Cookies(u *url.URL) []*http.Cookie {
	var out []*http.Cookie
	seen := map[string]bool{}
	if j.jar != nil {
		// Set in this fetch: newer than the task's copy of the same name.
		for _, c := range j.jar.Cookies(u) {
			seen[c.Name] = true
			out = append(out, c)
		}
	}
	if j.header != "" && strings.EqualFold(u.Host, j.task.Host) {
		cs, _ := http.ParseCookie(j.header)
		for _, c := range cs {
			if !seen[c.Name] {
				seen[c.Name] = true
				out = append(out, c)
			}
		}
	}
	for i := range j.static {
		c := &j.static[i]
		if !seen[c.Name] && c.matches(u, j.listed, j.now) {
			out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
	return out
}
