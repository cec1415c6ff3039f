package render

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
)

// startTimeout bounds a browser's start: a Chromium that has not opened its
// DevTools pipe by then will not.
const startTimeout = 30 * time.Second

// closeTimeout bounds the browser's own shutdown before it is killed.
const closeTimeout = 3 * time.Second

// browser is one Chromium process and the chromedp context that drives it.
// ctx ends when the browser is gone: closed, or dead (chromedp cancels it
// when the process exits or its pipe breaks).
type browser struct {
	ctx    context.Context
	cancel context.CancelFunc // the allocator's: kills the process
	pid    int
	gen    int // how many browsers the Renderer started before this one
	once   sync.Once

	// Under the Renderer's mu (retire.go):
	pages    int       // pages begun in it
	inflight int       // pages rendering in it now
	retire   string    // why it is to be retired; "" while it serves
	measured time.Time // when its memory was last read
}

// launch starts a browser. base is the Renderer's context, whose end kills
// every browser it started.
// proxy is the browser's proxy, which refuses everything (nowhere): every
// request of a page is answered from the interceptor, so whatever the
// browser would send itself (a WebSocket, which the Fetch domain does not
// pause, a service worker's fetch, its own background traffic) fails
// instead of reaching a network unchecked.
func launch(base context.Context, cfg Config, proxy string, gen int) (*browser, error) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(cfg.Browser),
		chromedp.ProxyServer("http://"+proxy),
		// Loopback included: Chromium sends it around a proxy otherwise.
		chromedp.Flag("proxy-bypass-list", "<-loopback>"),
		chromedp.DisableGPU,
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("no-pings", true),
		// Chromium's own traffic (updates, safe browsing, field trials)
		// is none of the run's business.
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.UserAgent(cfg.Fetch.UserAgent),
	)
	if runtime.GOOS == "linux" {
		opts = append(opts, chromedp.ModifyCmdFunc(ownGroup))
	}
	actx, acancel := chromedp.NewExecAllocator(base, opts...)
	bctx, _ := chromedp.NewContext(actx)
	// The first Run starts the browser and lives as long as its context,
	// so it takes no deadline: a timer kills a start that hangs.
	hung := time.AfterFunc(startTimeout, acancel)
	err := chromedp.Do(bctx)
	if !hung.Stop() {
		err = fmt.Errorf("no answer in %s", startTimeout)
	}
	if err != nil {
		acancel()
		return nil, fmt.Errorf("start browser %s: %w", cfg.Browser, err)
	}
	b := &browser{ctx: bctx, cancel: acancel, gen: gen}
	if p := chromedp.FromContext(bctx).Browser.Process(); p != nil {
		b.pid = p.Pid
	}
	return b, nil
}

// alive reports whether the browser still runs.
func (b *browser) alive() bool { return b.ctx.Err() == nil }

// close shuts the browser down, politely first, and kills its process group
// either way: nothing it started outlives it. Only the first call does it:
// the group's ID may be another's once the group is gone.
func (b *browser) close() error {
	var err error
	b.once.Do(func() { err = b.shut() })
	return err
}

func (b *browser) shut() error {
	var err error
	if b.alive() {
		ctx, cancel := context.WithTimeout(b.ctx, closeTimeout)
		err = chromedp.Cancel(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			err = nil // killed below
		}
	}
	b.cancel() // kills the process and waits for it, then its leftovers
	killGroup(b.pid)
	return err
}

// nowhere is a proxy that closes every connection it is given.
type nowhere struct {
	ln   net.Listener
	done chan struct{}
}

func listenNowhere() (*nowhere, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the browser's proxy: %w", err)
	}
	nw := &nowhere{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(nw.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			_ = c.Close()
		}
	}()
	return nw, nil
}

func (nw *nowhere) addr() string { return nw.ln.Addr().String() }

func (nw *nowhere) close() {
	_ = nw.ln.Close()
	<-nw.done
}
