package render

import (
	"context"
	"iter"
	"net/url"
	"strings"
	"sync"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/scrape-cluster/scrape/scrape"
)

// interceptor decides every request a tab makes before Chromium sends it
// (the Fetch domain pauses each one): resources a DOM does not need are
// refused, and so is a host the HTTP fetcher's guard would refuse. A page
// must not be a way around --allow-private: a script's fetch() of
// http://10.0.0.1/ is refused as the fetcher's own request would be.
type interceptor struct {
	guard     *scrape.Guard
	resources bool   // --render-resources
	listed    string // the host the input lists, which may be private; "" if none
	frame     string // the tab's main frame, whose document a refusal fails

	mu sync.Mutex
	// blocked is why the main document was refused, for its record.
	blocked string
	// counts, for the tests and the log.
	continued, refused int
	checked            map[string]error // host → the guard's word, once per page
}

// resourceBlocked are the types a DOM does not need.
var resourceBlocked = map[network.ResourceType]bool{
	network.ResourceTypeImage: true,
	network.ResourceTypeFont:  true,
	network.ResourceTypeMedia: true,
}

// run answers paused requests until ctx ends. It must be subscribed before
// the Fetch domain is enabled (start).
func (in *interceptor) run(ctx context.Context, events iter.Seq2[fetch.EventRequestPaused, error], wg *sync.WaitGroup) {
	for ev, err := range events {
		if err != nil {
			return
		}
		// A host's check may resolve its name: answer each request on its
		// own so one slow name does not hold the page's other requests.
		wg.Go(func() { in.answer(ctx, ev) })
	}
}

func (in *interceptor) answer(ctx context.Context, ev fetch.EventRequestPaused) {
	reason := in.decide(ctx, ev)
	in.mu.Lock()
	if reason == "" {
		in.continued++
	} else {
		in.refused++
	}
	in.mu.Unlock()
	if reason == "" {
		_, _ = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		return
	}
	_, _ = chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonBlockedByClient})
}

// decide returns why the request is refused, or "" to send it.
func (in *interceptor) decide(ctx context.Context, ev fetch.EventRequestPaused) string {
	if !in.resources && resourceBlocked[ev.ResourceType] {
		return "resource"
	}
	u, err := url.Parse(ev.Request.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ws" && u.Scheme != "wss") {
		return "" // data:, blob: and their like reach no network
	}
	host := u.Hostname()
	if in.listed != "" && strings.EqualFold(host, in.listed) {
		return ""
	}
	err = in.check(ctx, host)
	if err == nil || !scrape.IsBlocked(err) {
		// A name that does not resolve fails in the browser as it
		// would in the fetcher, with the browser's own words.
		return ""
	}
	if ev.ResourceType == network.ResourceTypeDocument && string(ev.FrameID) == in.frame {
		in.mu.Lock()
		in.blocked = err.Error()
		in.mu.Unlock()
	}
	return err.Error()
}

// check asks the guard about host once per page.
func (in *interceptor) check(ctx context.Context, host string) error {
	key := strings.ToLower(host)
	in.mu.Lock()
	err, ok := in.checked[key]
	in.mu.Unlock()
	if ok {
		return err
	}
	err = in.guard.CheckHost(ctx, host)
	in.mu.Lock()
	if in.checked == nil {
		in.checked = map[string]error{}
	}
	in.checked[key] = err
	in.mu.Unlock()
	return err
}

func (in *interceptor) blockedDocument() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.blocked
}
