package scrape

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// A page, a redirect or a robots.txt can point anywhere, and the cluster's
// nodes sit inside networks that the open web cannot reach: a crawl must not
// become the way in. So every connection is checked as it is made, on the
// address actually connected to, after name resolution: a name that
// resolves to a private address, a redirect to one and a name whose
// answer changes between lookups (DNS rebinding) are all caught at the same
// place. A host the input lists is the user's own request and is let
// through, as is whatever Config.AllowPrivate names.

// addrClass is why an address is not one of the open internet's.
type addrClass int

const (
	addrPublic addrClass = iota
	addrLoopback
	addrPrivate
	addrLinkLocal
	addrCGNAT
	addrUnspecified
	addrMulticast
)

func (c addrClass) String() string {
	return [...]string{"a public", "a loopback", "a private", "a link-local", "a carrier-grade NAT (100.64.0.0/10)", "an unspecified", "a multicast"}[c] + " address"
}

var (
	cgnat       = netip.MustParsePrefix("100.64.0.0/10")
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8") // RFC 1122: "this host on this network"; Linux connects 0.0.0.0 to itself
)

// classifyAddr reports which of the ranges the guard refuses holds a, if
// any. An IPv4-mapped IPv6 address is classed as the IPv4 address it maps.
func classifyAddr(a netip.Addr) addrClass {
	a = a.WithZone("").Unmap()
	switch {
	case !a.IsValid():
		return addrUnspecified
	case a.IsLoopback():
		return addrLoopback
	case a.IsPrivate():
		return addrPrivate
	case a.IsLinkLocalUnicast():
		return addrLinkLocal
	case cgnat.Contains(a):
		return addrCGNAT
	case a.IsUnspecified() || thisNetwork.Contains(a):
		return addrUnspecified
	case a.IsMulticast():
		return addrMulticast
	}
	return addrPublic
}

// blockedError is a connection the guard refused. The dial wraps it in a
// *net.OpError; classify finds it there and makes it KindBlockedAddress.
type blockedError struct {
	addr  netip.AddrPort
	host  string // as the URL names it
	class addrClass
}

func (e *blockedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "refused to connect to %s", e.addr)
	if e.host != "" && e.host != e.addr.Addr().String() {
		fmt.Fprintf(&b, " (%s)", e.host)
	}
	fmt.Fprintf(&b, ": %s; ", e.class)
	if e.class == addrLinkLocal {
		// Link-local is where cloud metadata services answer with the
		// node's credentials: a blanket --allow-private does not open it.
		fmt.Fprintf(&b, "list it in the input or allow it with --allow-private=%s", netip.PrefixFrom(e.addr.Addr().WithZone(""), e.addr.Addr().BitLen()))
	} else {
		b.WriteString("list it in the input or allow it with --allow-private")
	}
	return b.String()
}

// listedKey marks, in a context from Listed, a fetch of a URL the input
// lists; Fetch turns it into a listedHostKey naming that URL's host.
type listedKey struct{}

// listedHostKey carries, in a request's context, the host the user listed.
// The transport keeps the request's context values for the dial.
type listedHostKey struct{}

// Listed marks a fetch as one of a URL the input lists: Fetch with the
// returned context may connect its URL's own host at any address, private
// ones included, because the user asked for it. A redirect to another host
// is checked as any other destination.
func Listed(ctx context.Context) context.Context {
	return context.WithValue(ctx, listedKey{}, true)
}

func isListed(ctx context.Context) bool {
	listed, _ := ctx.Value(listedKey{}).(bool)
	return listed
}

// ListedHost marks requests made with the returned context as for a host
// the user listed: a Guard lets their connections to host (a host name or
// IP address, as a URL names it) go to any address. For clients other than
// Fetcher, such as the coordinator's robots.txt fetcher.
func ListedHost(ctx context.Context, host string) context.Context {
	return context.WithValue(ctx, listedHostKey{}, dialName(host))
}

// dialName is host as the transport passes it to the dialer: as it is if
// ASCII, else IDNA's ASCII form. Case is compared without.
func dialName(host string) string {
	for i := 0; i < len(host); i++ {
		if host[i] >= utf8.RuneSelf {
			if a, err := idna.Lookup.ToASCII(host); err == nil {
				return a
			}
			break
		}
	}
	return host
}

// Guard makes the connections of an http.Transport: it refuses those to
// loopback, private, link-local, carrier-grade NAT, unspecified and
// multicast addresses (IPv4-mapped IPv6 forms included) unless the request
// is for a host the user listed (ListedHost) or the Config allows the
// address. Set a transport's DialContext and Proxy to the Guard's.
//
// Config.AllowPrivate are ranges allowed all the same; netip.Prefix
// encodes as its CIDR text, so they travel to workers in the run's job.
// Config.AllowPrivateAll allows every refused range except link-local:
// 169.254.169.254 and its like are cloud metadata services that hand out
// the node's credentials, so only a prefix in AllowPrivate that holds them
// opens them.
type Guard struct {
	allow    []netip.Prefix
	allowAll bool
	dialer   net.Dialer

	// proxy is http.ProxyFromEnvironment, which reads the environment
	// once per process; tests set their own.
	proxy   func(*http.Request) (*url.URL, error)
	mu      sync.Mutex
	proxies map[string]bool // host:port of the proxies Proxy returned
}

// NewGuard returns a Guard that dials with a copy of d (nil: a default
// net.Dialer) and allows what cfg's AllowPrivate and AllowPrivateAll say.
func NewGuard(cfg Config, d *net.Dialer) *Guard {
	g := &Guard{allowAll: cfg.AllowPrivateAll, proxy: http.ProxyFromEnvironment, proxies: map[string]bool{}}
	if d != nil {
		g.dialer = *d
	}
	for _, p := range cfg.AllowPrivate {
		if p.IsValid() {
			g.allow = append(g.allow, p.Masked())
		}
	}
	return g
}

// Proxy is http.ProxyFromEnvironment, and notes the proxy's address: the
// proxy is the user's choice, so the guard lets the connection to it
// through, private address or not. The target is then the proxy's to reach,
// and is not checked. A request sent straight to the proxy's own address
// (one NO_PROXY exempts) is let through with it: it reaches nothing the
// proxy does not.
func (g *Guard) Proxy(req *http.Request) (*url.URL, error) {
	u, err := g.proxy(req)
	if u != nil && err == nil {
		g.mu.Lock()
		g.proxies[proxyAddr(u)] = true
		g.mu.Unlock()
	}
	return u, err
}

// proxyAddr is the address the transport dials for proxy u.
func proxyAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443", "socks5": "1080", "socks5h": "1080"}[u.Scheme]
	}
	return net.JoinHostPort(strings.ToLower(dialName(u.Hostname())), port)
}

func (g *Guard) isProxy(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.proxies[net.JoinHostPort(strings.ToLower(host), port)]
}

// DialContext dials addr, a host name or IP address with a port, and
// checks each address the dial tries, as it is connected to: before a
// byte is sent, so a refused server sees no connection at all.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if listed, _ := ctx.Value(listedHostKey{}).(string); (listed != "" && strings.EqualFold(listed, host)) || g.isProxy(addr) {
		return g.dialer.DialContext(ctx, network, addr)
	}
	d := g.dialer
	d.Control, d.ControlContext = nil, func(ctx context.Context, network, address string, c syscall.RawConn) error {
		if err := g.check(host, address); err != nil {
			return err
		}
		if g.dialer.ControlContext != nil {
			return g.dialer.ControlContext(ctx, network, address, c)
		}
		if g.dialer.Control != nil {
			return g.dialer.Control(network, address, c)
		}
		return nil
	}
	return d.DialContext(ctx, network, addr)
}

// check returns a *blockedError if address, an IP and port about to be
// connected to for host, is one the guard refuses.
func (g *Guard) check(host, address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Not an IP address: nothing this guard can vouch for.
		return fmt.Errorf("refused to connect to %q: not an IP address and port", address)
	}
	class := classifyAddr(ap.Addr())
	if class == addrPublic || g.allows(ap.Addr(), class) {
		return nil
	}
	return &blockedError{addr: ap, host: host, class: class}
}

func (g *Guard) allows(a netip.Addr, class addrClass) bool {
	if g.allowAll && class != addrLinkLocal {
		return true
	}
	a = a.WithZone("")
	for _, p := range g.allow {
		if p.Contains(a.Unmap()) || p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseAllowPrivate parses the value of --allow-private: comma-separated
// CIDR prefixes, or addresses standing for themselves alone. The error
// names the item that is neither.
func ParseAllowPrivate(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("--allow-private: %q is not a CIDR prefix or an IP address", item)
		}
		out = append(out, netip.PrefixFrom(a.WithZone(""), a.BitLen()))
	}
	return out, nil
}
