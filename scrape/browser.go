package scrape

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// What a browser (package render) needs from this package: its requests made
// by the fetcher (pagesession.go), the same extraction, and the same record,
// for a page whose HTML is the DOM
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
