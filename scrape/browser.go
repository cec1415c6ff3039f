package scrape

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// What a browser (package render) needs from this package: the same guard,
// the same extraction, and the same record, for a page whose HTML is the DOM
// after its scripts ran rather than the body a request returned.

// Render modes (--render), in Config.Render.
const (
	RenderNever  = "never"
	RenderAlways = "always"
	RenderAuto   = "auto"
)

// ParseRenderMode checks the value of --render; "" is RenderNever.
func ParseRenderMode(s string) (string, error) {
	switch s {
	case "", RenderNever:
		return RenderNever, nil
	case RenderAlways, RenderAuto:
		return s, nil
	}
	return "", fmt.Errorf("--render: %q is not never, always or auto", s)
}

// IsListed reports whether ctx is from Listed: the fetch is of a URL the
// input lists, whose own host may be at a private address.
func IsListed(ctx context.Context) bool { return isListed(ctx) }

// CheckHost resolves host (a name or an IP address, as a URL names it) and
// returns an error if any of its addresses is one the guard refuses: a
// browser connects by itself, so the guard cannot sit in its dial, and a
// host with one refused address among public ones is refused whole, since
// the browser may pick either. The error's message says which address and
// how to allow it, as Fetch's KindBlockedAddress does.
//
// The browser resolves the name again itself: a name that changes its
// answer between the two (DNS rebinding) is not caught here.
func (g *Guard) CheckHost(ctx context.Context, host string) error {
	host = strings.Trim(host, "[]")
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		addrs, err = net.DefaultResolver.LookupNetIP(rctx, "ip", dialName(host))
		if err != nil {
			return fmt.Errorf("resolve %s: %w", host, err)
		}
	}
	for _, a := range addrs {
		if err := g.check(host, netip.AddrPortFrom(a, 0).String()); err != nil {
			return err
		}
	}
	return nil
}

// IsBlocked reports whether err is the guard's refusal of an address.
func IsBlocked(err error) bool {
	var be *blockedError
	return errors.As(err, &be)
}

// ExtractPage fills res from doc, an HTML document another client read
// (a browser's DOM after its scripts ran), as Fetch fills it from a body:
// the same fields, the same limits (a document over MaxBody is too_large,
// unextracted), the same selectors. base is the document's URL.
func (f *Fetcher) ExtractPage(res *Result, base *url.URL, doc []byte) {
	if f.badConfig != nil {
		res.Error = Errorf(KindFetch, "%s", f.badConfig)
		return
	}
	if int64(len(doc)) > f.cfg.MaxBody {
		if res.Error == nil {
			res.Error = Errorf(KindTooLarge, "rendered document exceeds %d bytes", f.cfg.MaxBody)
		}
		return
	}
	page, err := f.extract.extract(base, strings.NewReader(string(doc)))
	var refused *Error
	if err != nil && !errors.As(err, &refused) {
		if res.Error == nil {
			res.Error = Errorf(KindBadBody, "%s", err)
		}
		return
	}
	if res.Error == nil && refused != nil {
		res.Error = refused
	}
	res.Title, res.Description = page.Title, page.Description
	res.Headings, res.Links = page.Headings, page.Links
	res.Fields, res.Text, res.Data = page.Fields, page.Text, page.Data
}
