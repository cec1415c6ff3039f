package scrape

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// A proxy that fails ProxyFailures requests in a row is benched for
// ProxyBench: requests go round the others meanwhile.
const (
	ProxyFailures = 3
	ProxyBench    = 30 * time.Second
)

// ParseProxy parses a --proxy URL: http, https or socks5 (socks5h is
// taken as socks5: the proxy resolves names either way).
func ParseProxy(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("proxy %q: %w", redactProxy(s), err)
	}
	switch u.Scheme {
	case "http", "https", "socks5":
	case "socks5h":
		u.Scheme = "socks5"
	default:
		return nil, fmt.Errorf("proxy %q: scheme must be http, https or socks5", redactProxy(s))
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("proxy %q: no host", redactProxy(s))
	}
	return u, nil
}

// redactProxy drops a proxy URL's password (and user) for messages.
func redactProxy(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	return s
}

// ProxyName is how a record names its proxy: scheme, host and port,
// without the credentials.
func ProxyName(u *url.URL) string {
	return u.Scheme + "://" + u.Host
}

// proxyPool hands out the run's proxies round-robin, passing over those
// on the bench.
type proxyPool struct {
	mu      sync.Mutex
	proxies []*poolProxy
	next    int
}

type poolProxy struct {
	url   *url.URL
	name  string
	fails int
	until time.Time // benched until then
}

func newProxyPool(list []string) (*proxyPool, error) {
	p := &proxyPool{}
	for _, s := range list {
		u, err := ParseProxy(s)
		if err != nil {
			return nil, err
		}
		p.proxies = append(p.proxies, &poolProxy{url: u, name: ProxyName(u)})
	}
	return p, nil
}

// pick returns the next proxy not on the bench. When every one is, the
// one back soonest is tried: a run keeps going, and that try is the probe
// that lets it back.
func (p *proxyPool) pick(now time.Time) *poolProxy {
	p.mu.Lock()
	defer p.mu.Unlock()
	var soonest *poolProxy
	for range p.proxies {
		pp := p.proxies[p.next]
		p.next = (p.next + 1) % len(p.proxies)
		if !now.Before(pp.until) {
			return pp
		}
		if soonest == nil || pp.until.Before(soonest.until) {
			soonest = pp
		}
	}
	return soonest
}

// done notes how a request through pp went: ok is an HTTP answer, of any
// status, which only a working proxy gives.
func (p *proxyPool) done(pp *poolProxy, ok bool, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ok {
		pp.fails, pp.until = 0, time.Time{}
		return
	}
	pp.fails++
	if pp.fails >= ProxyFailures {
		pp.fails, pp.until = 0, now.Add(ProxyBench)
	}
}

type proxyKey struct{}

// proxyFor is the transport's Proxy with a pool: the proxy the fetch
// picked, which its context carries, for the request and its redirects.
func (f *Fetcher) proxyFor(req *http.Request) (*url.URL, error) {
	if pp, _ := req.Context().Value(proxyKey{}).(*poolProxy); pp != nil {
		return pp.url, nil
	}
	return f.guard.Proxy(req)
}

func withProxy(ctx context.Context, pp *poolProxy) context.Context {
	return context.WithValue(ctx, proxyKey{}, pp)
}
