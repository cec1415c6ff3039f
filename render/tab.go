package render

import (
	"context"
	"fmt"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// A render slot keeps its tab: opening one (a target in a browser context
// of its own) took half a second to a second here, as long as loading the
// test page itself. A tab serves page after page; between them it is
// sent to about:blank and its cookies are cleared, so what one page set
// does not go with the next page's requests. A tab whose page failed, timed
// out or was cut short is closed, not reused: its state is unknown.

// tab is one browser tab.
type tab struct {
	b      *browser
	ctx    context.Context // chromedp's: its target
	cancel context.CancelFunc
	frame  string // its main frame's ID, which is its target's
}

// page is a context for one page's actions in t that also ends with
// pageCtx (its deadline, the caller's end): listeners made with it stop
// then, and the tab lives on.
func (t *tab) page(pageCtx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(t.ctx)
	stop := context.AfterFunc(pageCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

// tabOpenTimeout bounds the opening of a tab.
const tabOpenTimeout = 20 * time.Second

// takeTab returns an idle tab of b, or opens one. ctx bounds the opening.
func (r *Renderer) takeTab(ctx context.Context, b *browser) (*tab, error) {
	r.mu.Lock()
	for len(r.idle) > 0 {
		t := r.idle[len(r.idle)-1]
		r.idle = r.idle[:len(r.idle)-1]
		if t.b == b && t.ctx.Err() == nil {
			r.mu.Unlock()
			return t, nil
		}
		t.cancel() // of a browser gone
	}
	r.mu.Unlock()

	tctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	// The first Run opens the tab, for as long as tctx lives: its bound
	// is a timer, not a deadline on tctx.
	stop := context.AfterFunc(ctx, cancel)
	hung := time.AfterFunc(tabOpenTimeout, cancel)
	err := chromedp.Do(tctx)
	hung.Stop()
	stop()
	if err == nil {
		// Every tab intercepts its requests (intercept.go) from its
		// opening on; each page subscribes to them for its own time.
		_, err = chromedp.Call(tctx, fetch.Enable, fetch.EnableParams{})
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open tab: %w", err)
	}
	return &tab{b: b, ctx: tctx, cancel: cancel, frame: string(chromedp.FromContext(tctx).Target.TargetID)}, nil
}

// putTab keeps t for the next page if reuse, else closes it.
func (r *Renderer) putTab(t *tab, reuse bool) {
	if reuse && t.b.alive() {
		cctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
		_, err := chromedp.Call(cctx, network.ClearBrowserCookies, cdp.Empty{})
		cancel()
		reuse = err == nil
	}
	r.mu.Lock()
	if reuse && !r.closed && r.cur == t.b && t.b.retire == "" {
		r.idle = append(r.idle, t)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	t.cancel()
}

// closeIdle closes every idle tab.
func (r *Renderer) closeIdle() {
	r.mu.Lock()
	idle := r.idle
	r.idle = nil
	r.mu.Unlock()
	for _, t := range idle {
		t.cancel()
	}
}
