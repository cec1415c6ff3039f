package render

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/scrape-cluster/scrape/scrape"
)

// Config is how a Renderer renders.
type Config struct {
	// Browser is the Chromium to run (Find).
	Browser string
	// Fetch is the run's fetch configuration: its Timeout bounds a page,
	// its UserAgent is the browser's, its guard settings (AllowPrivate...)
	// apply to every request a page makes, its extraction options make the
	// record, and WaitFor and RenderResources are read from it.
	Fetch  scrape.Config
	Logger *slog.Logger
	// MemoryLimit retires the browser (retire.go) once its process group
	// takes more than this many bytes (PSS, Linux only); 0: no limit.
	MemoryLimit int64
	// MaxPages retires the browser after this many pages; 0 means
	// DefaultMaxPages, a negative number no bound.
	MaxPages int
}

// Renderer renders pages in one browser, a tab per page. Render is safe for
// concurrent use; the caller bounds how many run at once (--render-slots).
type Renderer struct {
	cfg Config
	// fetcher makes every request of every page (scrape.PageSession) and
	// extracts the DOM.
	fetcher *scrape.Fetcher
	// nowhere is where the browser's own network goes: a proxy that
	// closes every connection (launch).
	nowhere *nowhere
	log     *slog.Logger

	base   context.Context // ends on Close: kills every browser
	cancel context.CancelFunc

	mu       sync.Mutex
	cur      *browser      // for new pages; nil while one starts
	draining []*browser    // retired or dead, with pages still in them (retire.go)
	starting chan struct{} // closed once the browser starting in cur's place is in
	idle     []*tab        // tabs of cur waiting for a page (tab.go)
	started  int           // browsers started, the first included
	retired  int           // of them, browsers retired
	closed   bool
	closing  sync.WaitGroup // closes of drained browsers, a start under way
}

// Open starts the browser, so that a node that cannot render finds out
// before it says it can.
func Open(cfg Config) (*Renderer, error) {
	if cfg.Browser == "" {
		return nil, errors.New("render: no browser given")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Fetch.Timeout <= 0 {
		cfg.Fetch.Timeout = scrape.DefaultTimeout
	}
	if cfg.Fetch.UserAgent == "" {
		cfg.Fetch.UserAgent = scrape.DefaultUserAgent()
	}
	if cfg.MaxPages == 0 {
		cfg.MaxPages = DefaultMaxPages
	}
	nw, err := listenNowhere()
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	base, cancel := context.WithCancel(context.Background())
	r := &Renderer{
		cfg:     cfg,
		fetcher: scrape.NewFetcher(cfg.Fetch),
		nowhere: nw,
		log:     cfg.Logger.With("component", "render"),
		base:    base,
		cancel:  cancel,
	}
	b, err := launch(base, cfg, nw.addr(), 0)
	if err != nil {
		cancel()
		nw.close()
		return nil, fmt.Errorf("render: %w", err)
	}
	r.cur, r.started = b, 1
	r.log.Debug("browser started", "pid", b.pid, "browser", cfg.Browser)
	return r, nil
}

// Close stops the browser, and any retired one still draining, and waits
// for them. It may be called more than once.
func (r *Renderer) Close() error {
	r.mu.Lock()
	bs := r.draining
	if r.cur != nil {
		bs = append(bs, r.cur)
	}
	r.cur, r.draining, r.closed = nil, nil, true
	r.mu.Unlock()
	r.closeIdle()
	var errs []error
	for _, b := range bs {
		errs = append(errs, b.close())
	}
	r.cancel() // ends a browser starting, which closes itself
	r.closing.Wait()
	r.nowhere.close()
	r.fetcher.Close()
	return errors.Join(errs...)
}

// PID is the process ID of the running browser, 0 if none: the leader of
// its process group.
func (r *Renderer) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil {
		return 0
	}
	return r.cur.pid
}

// Restarts is how many times a browser was started in place of another,
// which died or was retired.
func (r *Renderer) Restarts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.started - 1
}

// Retired is how many browsers were retired for their memory or their page
// count (retire.go).
func (r *Renderer) Retired() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.retired
}

var errClosed = errors.New("render: renderer closed")

// Render loads rawURL in a new tab and returns its record, with Rendered
// set when the DOM was read. Like scrape.Fetcher.Fetch it returns no error:
// a failure is the record's Error. A page whose browser dies under it is
// loaded once more in the browser started in its place. ctx from
// scrape.Listed lets the page reach its own host at a private address.
func (r *Renderer) Render(ctx context.Context, rawURL string) scrape.Result {
	start := time.Now()
	var res scrape.Result
	for try := 0; ; try++ {
		b, err := r.acquire(ctx)
		if err != nil {
			return failed(rawURL, start, scrape.Errorf(scrape.KindFetch, "%s", err))
		}
		res = r.render(ctx, b, rawURL)
		died := !b.alive()
		r.release(b)
		if !died || ctx.Err() != nil || try == 1 || r.isClosed() {
			break
		}
		r.log.Warn("browser died under a page; loading it again", "url", rawURL)
	}
	res.FetchedAt = start.UTC()
	res.DurationMS = time.Since(start).Milliseconds()
	return res
}

func failed(rawURL string, start time.Time, e *scrape.Error) scrape.Result {
	return scrape.Result{URL: rawURL, FetchedAt: start.UTC(), DurationMS: time.Since(start).Milliseconds(), Error: e}
}

// grabReserve is the part of a page's time kept to read its DOM: a page
// that never goes idle (a poll, a stream) is read when its time is nearly
// up rather than lost.
func grabReserve(timeout time.Duration) time.Duration {
	return min(time.Second, timeout/5)
}

func (r *Renderer) render(ctx context.Context, b *browser, rawURL string) (res scrape.Result) {
	res = scrape.Result{URL: rawURL}
	u, err := scrape.ParseURL(rawURL)
	if err != nil {
		res.Error = scrape.Errorf(scrape.KindInvalidURL, "%s", err)
		return res
	}
	timeout := r.cfg.Fetch.Timeout
	if d, ok := ctx.Deadline(); ok {
		timeout = max(0, min(timeout, time.Until(d)))
	}
	deadline := time.Now().Add(timeout)

	// The page's own context ends at its deadline or the caller's end;
	// the tab outlives it, and serves the next page if this one went well.
	var timedOut atomic.Bool
	tabCtx, stopTab := context.WithCancel(b.ctx)
	defer stopTab()
	timer := time.AfterFunc(timeout, func() {
		timedOut.Store(true)
		stopTab()
	})
	defer timer.Stop()
	defer context.AfterFunc(ctx, stopTab)()
	fail := func(what string, err error) scrape.Result {
		switch {
		case timedOut.Load():
			res.Error = scrape.Errorf(scrape.KindTimeout, "%s: page not rendered within %s", what, timeout.Round(time.Millisecond))
		case !b.alive():
			res.Error = scrape.Errorf(scrape.KindFetch, "%s: the browser died: %v", what, err)
		default:
			res.Error = loadError(what, err)
		}
		return res
	}

	t, err := r.takeTab(tabCtx, b)
	if err != nil {
		return fail("open tab", err)
	}
	pctx, endPage := t.page(tabCtx)
	session := r.fetcher.NewPageSession(ctx, u)
	in := newInterceptor(session, u, t.frame, r.cfg.Fetch.RenderResources, leaseFrom(ctx))
	var answers sync.WaitGroup
	intercepting := make(chan struct{})
	events := chromedp.Events(pctx, fetch.RequestPaused)
	go func() {
		defer close(intercepting)
		in.run(pctx, events, &answers)
	}()
	clean := false // the tab may serve another page
	defer func() {
		// Stop the page's scripts and requests while the interceptor
		// still answers, then the interceptor, before the tab waits for
		// its next page.
		// The blank page needs no network and no wait for its load.
		if clean {
			if _, err := chromedp.Call(pctx, page.Navigate, page.NavigateParams{URL: "about:blank"}); err != nil {
				clean = false
			}
		}
		endPage()
		<-intercepting
		answers.Wait()
		if r.cfg.Fetch.Archive {
			var left int
			res.Resources, left = session.Resources()
			if left > 0 {
				r.log.Info("archive: a page's resources left out, over --max-body", "url", rawURL, "left", left, "kept", len(res.Resources))
			}
		}
		r.putTab(t, clean && !timedOut.Load() && ctx.Err() == nil)
	}()
	idle := newIdleWatch(cdp.FrameID(t.frame))
	if err := chromedp.Listen(pctx, idle.event); err != nil {
		return fail("watch the page", err)
	}

	if cs := session.PageCookies(); len(cs) > 0 {
		params := network.SetCookiesParams{}
		for _, c := range cs {
			params.Cookies = append(params.Cookies, &network.CookieParam{Name: c.Name, Value: c.Value, URL: u.String()})
		}
		if _, err := chromedp.Call(pctx, network.SetCookies, params); err != nil {
			return fail("set the page's cookies", err)
		}
	}

	began := time.Now()
	resp, err := chromedp.Run(pctx, chromedp.NavigateResponse(u.String()))
	loaded := time.Now()
	if session.Finish(&res) {
		// --since: the page is the one the validators came from (the
		// browser, given a 304 it has nothing cached for, aborts it).
		clean = true
		return res
	}
	if e := in.documentError(); e != nil {
		// The page's own request failed, as the fetcher words it.
		res.Error = e
		clean = true
		return res
	}
	if err != nil {
		if mt, _, _ := mime.ParseMediaType(res.ContentType); res.ContentType != "" && !htmlType(mt) {
			// The browser does not show a PDF or a zip: it downloads
			// it, and gives up the navigation.
			res.Error = scrape.Errorf(scrape.KindNotHTML, "content type %s", res.ContentType)
			clean = true
			return res
		}
		return fail("load", err)
	}
	clean = true
	if resp != nil && res.Status == 0 {
		// The session saw no document (it always does, unless the
		// browser answered from something of its own): the browser's word.
		res.Status, res.FinalURL, res.ContentType = int(resp.Status), resp.URL, resp.MimeType
	}
	if res.Status != 0 && (res.Status < 200 || res.Status > 299) {
		res.Error = scrape.Errorf(scrape.KindHTTPStatus, "%d %s", res.Status, http.StatusText(res.Status))
	}
	if mt, _, _ := mime.ParseMediaType(res.ContentType); res.ContentType != "" && !htmlType(mt) {
		if res.Error == nil {
			res.Error = scrape.Errorf(scrape.KindNotHTML, "content type %s", res.ContentType)
		}
		return res
	}

	// Wait for the page's scripts: for the selector the user named, or
	// for the network to go quiet.
	if sel := r.cfg.Fetch.WaitFor; sel != "" {
		if _, err := chromedp.Run(pctx, chromedp.WaitReady(chromedp.CSS(sel))); err != nil {
			clean = false
			return fail("wait for "+sel, err)
		}
	} else {
		wait := time.Until(deadline) - grabReserve(timeout)
		select {
		case <-idle.done():
		case <-time.After(max(wait, 0)):
		case <-pctx.Done():
		}
	}

	if r.log.Enabled(pctx, slog.LevelDebug) {
		made, refused, failed := in.counts()
		r.log.Debug("page loaded", "url", rawURL, "load", loaded.Sub(began), "wait", time.Since(loaded),
			"requests", made, "refused", refused, "failed", failed)
	}
	doc, err := chromedp.Run(pctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err != nil {
		clean = false
		return fail("read the DOM", err)
	}
	base := u
	if res.FinalURL != "" {
		if fu, err := url.Parse(res.FinalURL); err == nil {
			base = fu
		}
	}
	res.Bytes = int64(len(doc))
	r.fetcher.ExtractPage(&res, base, []byte(doc))
	res.Rendered = true
	return res
}

// htmlType reports whether mt, a media type without parameters, is one
// whose DOM is worth reading.
func htmlType(mt string) bool {
	return mt == "text/html" || mt == "application/xhtml+xml"
}

// loadError words a navigation that failed in the browser as the fetcher
// words its own failures, by kind.
func loadError(what string, err error) *scrape.Error {
	var le *chromedp.LoadError
	if errors.As(err, &le) {
		text := le.ErrorText
		switch {
		case strings.Contains(text, "NAME_NOT_RESOLVED"):
			return scrape.Errorf(scrape.KindDNS, "%s", text)
		case strings.Contains(text, "CONNECTION_REFUSED"), strings.Contains(text, "CONNECTION_RESET"),
			strings.Contains(text, "ADDRESS_UNREACHABLE"), strings.Contains(text, "CONNECTION_FAILED"):
			return scrape.Errorf(scrape.KindConnect, "%s", text)
		case strings.Contains(text, "TIMED_OUT"):
			return scrape.Errorf(scrape.KindTimeout, "%s", text)
		case strings.Contains(text, "CERT"), strings.Contains(text, "SSL"):
			return scrape.Errorf(scrape.KindTLS, "%s", text)
		case strings.Contains(text, "TOO_MANY_REDIRECTS"):
			return scrape.Errorf(scrape.KindTooManyRedirects, "%s", text)
		}
		return scrape.Errorf(scrape.KindFetch, "%s", text)
	}
	return scrape.Errorf(scrape.KindFetch, "%s: %v", what, err)
}

// idleWatch follows the main frame's lifecycle: done is closed once the
// network has been idle since the last document started loading. Events
// are taken by the document's loader: a tab's previous page (the blank one
// between pages) may still report its own idleness late.
type idleWatch struct {
	frame  cdp.FrameID
	mu     sync.Mutex
	loader cdp.LoaderID // of the document loading now; "" before its init
	ch     chan struct{}
	fired  bool
}

func newIdleWatch(frame cdp.FrameID) *idleWatch {
	return &idleWatch{frame: frame, ch: make(chan struct{})}
}

// event runs on the tab's reader: it must not block.
func (w *idleWatch) event(ev any) {
	e, ok := ev.(*page.EventLifecycleEvent)
	if !ok || e.FrameID != w.frame {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch e.Name {
	case "init": // a new document: its own idleness counts
		w.loader = e.LoaderID
		if w.fired {
			w.ch, w.fired = make(chan struct{}), false
		}
	case "networkIdle":
		if !w.fired && w.loader != "" && e.LoaderID == w.loader {
			close(w.ch)
			w.fired = true
		}
	}
}

func (w *idleWatch) done() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}
