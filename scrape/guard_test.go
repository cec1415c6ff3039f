package scrape

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestClassifyAddr(t *testing.T) {
	tests := map[string]addrClass{
		"127.0.0.1":                addrLoopback,
		"127.255.255.254":          addrLoopback,
		"::1":                      addrLoopback,
		"::ffff:127.0.0.1":         addrLoopback,
		"10.1.2.3":                 addrPrivate,
		"172.16.0.1":               addrPrivate,
		"172.31.255.255":           addrPrivate,
		"192.168.1.1":              addrPrivate,
		"fc00::1":                  addrPrivate,
		"fdab:cdef::1":             addrPrivate,
		"::ffff:10.0.0.1":          addrPrivate,
		"::ffff:192.168.0.1":       addrPrivate,
		"169.254.169.254":          addrLinkLocal,
		"fe80::1":                  addrLinkLocal,
		"fe80::1%eth0":             addrLinkLocal,
		"::ffff:169.254.169.254":   addrLinkLocal,
		"100.64.0.1":               addrCGNAT,
		"100.127.255.255":          addrCGNAT,
		"::ffff:100.64.0.1":        addrCGNAT,
		"0.0.0.0":                  addrUnspecified,
		"0.1.2.3":                  addrUnspecified,
		"::":                       addrUnspecified,
		"::ffff:0.0.0.0":           addrUnspecified,
		"224.0.0.1":                addrMulticast,
		"239.255.255.250":          addrMulticast,
		"ff02::1":                  addrMulticast,
		"::ffff:224.0.0.1":         addrMulticast,
		"8.8.8.8":                  addrPublic,
		"93.184.216.34":            addrPublic,
		"11.0.0.1":                 addrPublic,
		"172.32.0.1":               addrPublic,
		"192.169.0.1":              addrPublic,
		"100.128.0.1":              addrPublic,
		"2606:4700:4700::1111":     addrPublic,
		"::ffff:8.8.8.8":           addrPublic,
		"2a00:1450:4001:81b::200e": addrPublic,
	}
	for in, want := range tests {
		if got := classifyAddr(netip.MustParseAddr(in)); got != want {
			t.Errorf("classifyAddr(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestGuardAllows(t *testing.T) {
	prefixes := func(s string) []netip.Prefix {
		p, err := ParseAllowPrivate(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name           string
		cfg            Config
		allowed, refus []string
	}{
		{"nothing allowed", Config{},
			[]string{"8.8.8.8", "2606:4700:4700::1111"},
			[]string{"127.0.0.1", "10.0.0.1", "fd00::1", "100.64.0.1", "169.254.169.254", "::ffff:127.0.0.1", "0.0.0.0"}},
		{"all but link-local", Config{AllowPrivateAll: true},
			[]string{"127.0.0.1", "::1", "10.0.0.1", "fd00::1", "100.64.0.1", "0.0.0.0", "::ffff:192.168.1.1"},
			[]string{"169.254.169.254", "fe80::1", "fe80::1%eth0", "::ffff:169.254.169.254"}},
		{"the metadata address named", Config{AllowPrivate: prefixes("169.254.169.254")},
			[]string{"169.254.169.254", "::ffff:169.254.169.254"},
			[]string{"169.254.169.253", "127.0.0.1", "10.0.0.1"}},
		{"all and the metadata address", Config{AllowPrivateAll: true, AllowPrivate: prefixes("169.254.169.254/32")},
			[]string{"169.254.169.254", "127.0.0.1"},
			[]string{"169.254.0.1", "fe80::1"}},
		{"one range", Config{AllowPrivate: prefixes("10.0.0.0/8, fe80::/10")},
			[]string{"10.9.9.9", "::ffff:10.9.9.9", "fe80::1%eth0"},
			[]string{"192.168.0.1", "127.0.0.1", "169.254.169.254"}},
	}
	for _, tt := range tests {
		g := NewGuard(tt.cfg, nil)
		for _, a := range tt.allowed {
			if err := g.check("", netip.AddrPortFrom(netip.MustParseAddr(a), 80).String()); err != nil {
				t.Errorf("%s: %s refused: %v", tt.name, a, err)
			}
		}
		for _, a := range tt.refus {
			if err := g.check("", netip.AddrPortFrom(netip.MustParseAddr(a), 80).String()); err == nil {
				t.Errorf("%s: %s allowed", tt.name, a)
			}
		}
	}
}

func TestParseAllowPrivate(t *testing.T) {
	tests := []struct {
		in, want string // want: the prefixes, comma-separated, or the error
	}{
		{"", ""},
		{"10.0.0.0/8", "10.0.0.0/8"},
		{" 10.1.2.3/8 , 169.254.169.254,fd00::/8,::1 ", "10.0.0.0/8,169.254.169.254/32,fd00::/8,::1/128"},
		{"10.0.0.0/8,intranet", `--allow-private: "intranet" is not a CIDR prefix or an IP address`},
		{"10.0.0.0/33", `--allow-private: "10.0.0.0/33" is not a CIDR prefix or an IP address`},
	}
	for _, tt := range tests {
		p, err := ParseAllowPrivate(tt.in)
		var got []string
		for _, x := range p {
			got = append(got, x.String())
		}
		if err != nil {
			got = []string{err.Error()}
		}
		if strings.Join(got, ",") != tt.want {
			t.Errorf("ParseAllowPrivate(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// countingServer serves a small page, or a redirect to to+"/page" at
// /away, on a loopback address of its own; hits counts its requests.
func countingServer(t *testing.T, ip string, to **httptest.Server) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	hits := new(atomic.Int32)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/away" {
			http.Redirect(w, r, (*to).URL+"/page", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<title>" + r.Host + "</title>"))
	}))
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listen on %s (all of 127.0.0.0/8 is loopback on Linux): %v", ip, err)
	}
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, hits
}

func TestFetchGuard(t *testing.T) {
	var a, b *httptest.Server
	a, aHits := countingServer(t, "127.0.0.1", &b)
	b, bHits := countingServer(t, "127.0.0.2", &a)
	aAddr, bAddr := a.Listener.Addr().String(), b.Listener.Addr().String()
	_, aPort, _ := net.SplitHostPort(aAddr)

	// The allow-list reaches workers as JSON, inside the run's job.
	var viaJSON Config
	if j, err := json.Marshal(Config{AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(j, &viaJSON); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name         string
		cfg          Config
		listed       bool
		url          string
		wantKind     string   // "" for a page fetched
		wantMsg      []string // in the error's message
		aHits, bHits int32
	}{
		{"a listed page on loopback", Config{}, true, a.URL + "/page", "", nil, 1, 0},
		{"the same page not listed", Config{}, false, a.URL + "/page", KindBlockedAddress,
			[]string{"refused to connect to " + aAddr + ": a loopback address", "--allow-private"}, 0, 0},
		{"a listed page redirecting to another loopback address", Config{}, true, a.URL + "/away", KindBlockedAddress,
			[]string{"refused to connect to " + bAddr + ": a loopback address"}, 1, 0},
		{"a name resolving to loopback", Config{}, false, "http://localhost:" + aPort + "/page", KindBlockedAddress,
			[]string{"(localhost): a loopback address"}, 0, 0},
		{"an IPv4-mapped IPv6 literal", Config{}, false, "http://[::ffff:127.0.0.1]:" + aPort + "/page", KindBlockedAddress,
			[]string{"a loopback address"}, 0, 0},
		{"allowed by prefix, redirect included", viaJSON, false, a.URL + "/away", "", nil, 1, 1},
		{"allowed with all private ranges", Config{AllowPrivateAll: true}, false, a.URL + "/away", "", nil, 1, 1},
		// Refused before connect(): no packet leaves for these.
		{"link-local with all private ranges", Config{AllowPrivateAll: true}, false, "http://169.254.169.254/latest/meta-data/", KindBlockedAddress,
			[]string{"refused to connect to 169.254.169.254:80: a link-local address", "--allow-private=169.254.169.254/32"}, 0, 0},
		{"IPv6 link-local with all private ranges", Config{AllowPrivateAll: true}, false, "http://[fe80::1]:8080/", KindBlockedAddress,
			[]string{"refused to connect to [fe80::1]:8080: a link-local address", "--allow-private=fe80::1/128"}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			aHits.Store(0)
			bHits.Store(0)
			tt.cfg.Timeout = 5 * time.Second
			f := NewFetcher(tt.cfg)
			defer f.Close()
			ctx := t.Context()
			if tt.listed {
				ctx = Listed(ctx)
			}
			got := f.Fetch(ctx, tt.url)
			switch {
			case tt.wantKind == "" && got.Error != nil:
				t.Errorf("error %v, want the page", got.Error)
			case tt.wantKind != "" && (got.Error == nil || got.Error.Kind != tt.wantKind):
				t.Errorf("error %v, want kind %s", got.Error, tt.wantKind)
			}
			for _, m := range tt.wantMsg {
				if got.Error == nil || !strings.Contains(got.Error.Message, m) {
					t.Errorf("message %v does not contain %q", got.Error, m)
				}
			}
			if n := aHits.Load(); n != tt.aHits {
				t.Errorf("%s got %d requests, want %d", aAddr, n, tt.aHits)
			}
			if n := bHits.Load(); n != tt.bHits {
				t.Errorf("%s got %d requests, want %d", bAddr, n, tt.bHits)
			}
		})
	}
}

// A proxy is the user's choice: the connection to it is let through on a
// loopback address, and the target is the proxy's to reach.
func TestFetchGuardLetsTheProxyThrough(t *testing.T) {
	var proxied atomic.Value
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Store(r.URL.String())
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<title>via proxy</title>"))
	}))
	t.Cleanup(proxy.Close)
	pu, err := url.Parse(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	f := NewFetcher(Config{})
	t.Cleanup(f.Close)
	f.guard.proxy = http.ProxyURL(pu) // as HTTP_PROXY would, were it read more than once a process

	got := f.Fetch(t.Context(), "http://site.example/page")
	if got.Error != nil || got.Title != "via proxy" {
		t.Fatalf("error %v, title %q; want the page through the proxy", got.Error, got.Title)
	}
	if want := "http://site.example/page"; !reflect.DeepEqual(proxied.Load(), want) {
		t.Errorf("proxy asked for %v, want %s", proxied.Load(), want)
	}
}
