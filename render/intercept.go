package render

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/scrape-cluster/scrape/scrape"
)

// interceptor answers every request a tab makes, before Chromium would send
// it (the Fetch domain pauses each one): resources a DOM does not need are
// refused, and every other request is made by the page's session
// (scrape.PageSession) and its answer handed to the browser. The browser
// itself reaches no network (launch points it at a proxy that refuses
// everything): so a page is no way around --allow-private, a name cannot
// resolve to one address for a check and another for the browser, and the
// run's headers, cookies, proxy and limits go with every request.
type interceptor struct {
	session   *scrape.PageSession
	resources bool   // --render-resources
	frame     string // the tab's main frame, whose document is the page
	// lease waits for a start time for a request to u's host
	// (politeness, WithLease); nil when the run spaces no requests.
	lease func(ctx context.Context, u *url.URL) error
	// own holds the page's place with its host: the page's requests to
	// that host go one at a time, as the one request the run counts.
	own  chan struct{}
	host string

	mu sync.Mutex
	// docErr is why the page's own document failed, for its record.
	docErr *scrape.Error
	// counts, for the log.
	made, refused, failed int
}

func newInterceptor(s *scrape.PageSession, page *url.URL, frame string, resources bool, lease func(context.Context, *url.URL) error) *interceptor {
	return &interceptor{
		session: s, resources: resources, frame: frame, lease: lease,
		own: make(chan struct{}, 1), host: strings.ToLower(page.Host),
	}
}

// resourceBlocked are the types a DOM does not need.
var resourceBlocked = map[network.ResourceType]bool{
	network.ResourceTypeImage: true,
	network.ResourceTypeFont:  true,
	network.ResourceTypeMedia: true,
}

// isFavicon reports the browser's own request for a site's icon, which no
// script asked for: an image the DOM does not need.
func isFavicon(ev fetch.EventRequestPaused) bool {
	if ev.ResourceType != network.ResourceTypeOther {
		return false
	}
	u, err := url.Parse(ev.Request.URL)
	return err == nil && u.Path == "/favicon.ico"
}

// run answers paused requests until ctx ends. It must be subscribed before
// the Fetch domain is enabled (start).
func (in *interceptor) run(ctx context.Context, events iter.Seq2[fetch.EventRequestPaused, error], wg *sync.WaitGroup) {
	for ev, err := range events {
		if err != nil {
			return
		}
		// Each request on its own: one slow server must not hold the
		// page's other requests.
		wg.Go(func() { in.answer(ctx, ev) })
	}
}

func (in *interceptor) answer(ctx context.Context, ev fetch.EventRequestPaused) {
	if !in.resources && (resourceBlocked[ev.ResourceType] || isFavicon(ev)) {
		in.count(&in.refused)
		in.fail(ctx, ev, network.ErrorReasonBlockedByClient)
		return
	}
	document := ev.ResourceType == network.ResourceTypeDocument && string(ev.FrameID) == in.frame
	resp, e := in.do(ctx, ev, document)
	if e != nil {
		if document {
			in.mu.Lock()
			in.docErr = e
			in.mu.Unlock()
		}
		in.count(&in.failed)
		in.fail(ctx, ev, failReason(e.Kind))
		return
	}
	in.count(&in.made)
	headers := make([]*fetch.HeaderEntry, 0, len(resp.Header))
	for name, vs := range resp.Header {
		for _, v := range vs {
			headers = append(headers, &fetch.HeaderEntry{Name: name, Value: v})
		}
	}
	_, _ = chromedp.Call(ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
		RequestID:       ev.RequestID,
		ResponseCode:    int64(resp.Status),
		ResponseHeaders: headers,
		Body:            resp.Body,
	})
}

// do makes the request through the page's session: after its start time
// and, to the page's own host, one at a time (the page's place with its
// host was given before it was rendered).
func (in *interceptor) do(ctx context.Context, ev fetch.EventRequestPaused, document bool) (*scrape.BrowserResponse, *scrape.Error) {
	req := scrape.BrowserRequest{Method: ev.Request.Method, URL: ev.Request.URL, Document: document, Header: http.Header{}}
	for name, v := range ev.Request.Headers {
		if s, ok := v.(string); ok {
			req.Header.Add(name, s)
		}
	}
	for _, e := range ev.Request.PostDataEntries {
		req.Body = append(req.Body, e.Bytes...)
	}
	// The browser adds its cookies after the pause: they are asked for.
	if got, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{req.URL}}); err == nil {
		for _, c := range got.Cookies {
			req.Cookies = append(req.Cookies, &http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
	if u, err := url.Parse(req.URL); err == nil {
		if !document && strings.EqualFold(u.Host, in.host) {
			select {
			case in.own <- struct{}{}:
			case <-ctx.Done():
				return nil, &scrape.Error{Kind: scrape.KindTimeout, Message: "page ended before its request was sent"}
			}
			defer func() { <-in.own }()
		}
		if in.lease != nil {
			if err := in.lease(ctx, u); err != nil {
				return nil, &scrape.Error{Kind: scrape.KindTimeout, Message: "no start time for " + u.Host + ": " + err.Error()}
			}
		}
	}
	return in.session.Do(ctx, req)
}

func (in *interceptor) fail(ctx context.Context, ev fetch.EventRequestPaused, reason network.ErrorReason) {
	_, _ = chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: reason})
}

func (in *interceptor) count(n *int) {
	in.mu.Lock()
	*n++
	in.mu.Unlock()
}

// failReason is how the browser is told a request failed, by the kind of
// failure the session met.
func failReason(kind string) network.ErrorReason {
	switch kind {
	case scrape.KindBlockedAddress:
		return network.ErrorReasonBlockedByClient
	case scrape.KindDNS:
		return network.ErrorReasonNameNotResolved
	case scrape.KindTimeout:
		return network.ErrorReasonTimedOut
	case scrape.KindConnect:
		return network.ErrorReasonConnectionFailed
	}
	return network.ErrorReasonFailed
}

func (in *interceptor) counts() (made, refused, failed int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.made, in.refused, in.failed
}

// documentError is why the page's document failed; nil if it did not.
func (in *interceptor) documentError() *scrape.Error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.docErr
}

type leaseKey struct{}

// WithLease has a rendered page wait for lease(u) before each request it
// makes, its own document's included: the worker's start time from the
// coordinator, so that a page and its scripts' requests are spaced by the
// run's --delay as pages are.
func WithLease(ctx context.Context, lease func(ctx context.Context, u *url.URL) error) context.Context {
	return context.WithValue(ctx, leaseKey{}, lease)
}

func leaseFrom(ctx context.Context) func(context.Context, *url.URL) error {
	f, _ := ctx.Value(leaseKey{}).(func(context.Context, *url.URL) error)
	return f
}
