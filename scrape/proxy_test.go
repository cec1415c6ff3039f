package scrape

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
)

// startProxy serves a counting forward proxy on loopback.
func startProxy(t *testing.T) (*testsite.Proxy, string) {
	t.Helper()
	p := testsite.NewProxy()
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv.URL
}

func TestFetchProxyPoolRoundRobin(t *testing.T) {
	site := httptest.NewServer(testsite.New(10))
	t.Cleanup(site.Close)
	a, aURL := startProxy(t)
	b, bURL := startProxy(t)
	// The guard lets the proxies through without AllowPrivate; the site
	// behind them is theirs to reach.
	f := NewFetcher(Config{Proxies: []string{aURL, "http://user:pw@" + bURL[len("http://"):]}})
	t.Cleanup(f.Close)

	names := map[string]int{}
	for i := range 10 {
		res := f.Fetch(t.Context(), site.URL+"/page/"+strconv.Itoa(i))
		if res.Error != nil {
			t.Fatalf("page %d: %v", i, res.Error)
		}
		names[res.Proxy]++
	}
	if a.Requests() != 5 || b.Requests() != 5 {
		t.Errorf("proxies took %d and %d requests, want 5 each", a.Requests(), b.Requests())
	}
	if names[aURL] != 5 || names[bURL] != 5 || len(names) != 2 {
		t.Errorf("records name proxies %v, want %s and %s (without credentials) 5 times each", names, aURL, bURL)
	}
}

func TestFetchProxyDownIsBenched(t *testing.T) {
	site := httptest.NewServer(testsite.New(30))
	t.Cleanup(site.Close)
	good, goodURL := startProxy(t)
	dead := "http://" + testsite.ClosedPort(t)
	f := NewFetcher(Config{Proxies: []string{dead, goodURL}})
	t.Cleanup(f.Close)

	failed := 0
	for i := range 20 {
		res := f.Fetch(t.Context(), site.URL+"/page/1")
		if res.Error != nil {
			failed++
			if res.Proxy != dead {
				t.Errorf("fetch %d failed through %s: %v", i, res.Proxy, res.Error)
			}
		}
	}
	if failed != ProxyFailures {
		t.Errorf("%d fetches failed, want %d: the dead proxy benched after that many", failed, ProxyFailures)
	}
	if good.Requests() != 20-ProxyFailures {
		t.Errorf("the good proxy took %d requests, want %d", good.Requests(), 20-ProxyFailures)
	}
}

func TestProxyPoolBench(t *testing.T) {
	p, err := newProxyPool([]string{"http://a.test:1", "socks5://b.test:2"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	a := p.pick(now)
	for range ProxyFailures {
		p.done(a, false, now)
	}
	for i := range 4 {
		if got := p.pick(now); got == a {
			t.Fatalf("pick %d: the benched proxy", i)
		}
	}
	if got := p.pick(now.Add(ProxyBench)); got != a && p.pick(now.Add(ProxyBench)) != a {
		t.Errorf("after the bench: %s never picked", a.name)
	}
	// Every one benched: the one back soonest is tried.
	b := p.proxies[1]
	for range ProxyFailures {
		p.done(a, false, now)
		p.done(b, false, now.Add(time.Second))
	}
	if got := p.pick(now.Add(2 * time.Second)); got != a {
		t.Errorf("all benched: picked %s, want %s (back first)", got.name, a.name)
	}
}

func TestParseProxy(t *testing.T) {
	for _, ok := range []string{"http://p:3128", "https://p", "socks5://u:pw@p:1080", "socks5h://p"} {
		if _, err := ParseProxy(ok); err != nil {
			t.Errorf("ParseProxy(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"ftp://p", "p:3128", "http://", "socks4://p"} {
		if _, err := ParseProxy(bad); err == nil {
			t.Errorf("ParseProxy(%q): no error", bad)
		}
	}
	if _, err := ParseProxy("gopher://u:s3cret@p"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v: want one without the password", err)
	}
}

var _ http.Handler = (*testsite.Proxy)(nil)

// A socks5 proxy works in the pool beside an http one.
func TestFetchThroughSocks5(t *testing.T) {
	site := httptest.NewServer(testsite.New(4))
	t.Cleanup(site.Close)
	socks, err := testsite.NewSocks5()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(socks.Close)
	f := NewFetcher(Config{Proxies: []string{"socks5://" + socks.Addr()}})
	t.Cleanup(f.Close)
	for i := range 4 {
		res := f.Fetch(t.Context(), site.URL+"/page/"+strconv.Itoa(i))
		if res.Error != nil || res.Title != testsite.Title(i) || res.Proxy != "socks5://"+socks.Addr() {
			t.Fatalf("page %d: title %q, proxy %q, error %v", i, res.Title, res.Proxy, res.Error)
		}
	}
	f.Close() // its idle connections hold the proxy's
	if socks.Connects() == 0 {
		t.Error("the socks5 proxy made no connection")
	}
}
