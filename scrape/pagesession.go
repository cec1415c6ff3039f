package scrape

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// A rendered page's requests are made here, not by the browser: the browser
// (package render) hands each one over before it would send it, and is
// given the answer. So a rendered page goes out with the run's headers,
// cookies and proxy, through the guard's dial (which checks the address it
// connects to, so a name that changes its answer cannot lead the browser
// to a private one), bounded by MaxBody and MaxRedirects, and its own
// document is what --since and the archive see, as the fetcher's would be.

// BrowserRequest is one request a rendered page makes.
type BrowserRequest struct {
	Method string
	URL    string
	// Header is the browser's own (its Accept, Referer, Origin...).
	Header http.Header
	Body   []byte
	// Cookies are the browser's own for the URL: what the page's scripts
	// set, and what its responses set. They go after the run's, the
	// task's and the session's, which win on a name.
	Cookies []*http.Cookie
	// Document is a navigation of the page's main frame: the page itself,
	// or a hop of its redirects.
	Document bool
}

// BrowserResponse is the answer the browser is given. Header has lost
// what described the transfer (Content-Encoding, Content-Length): Body is
// decoded already.
type BrowserResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// PageSession makes the requests of one rendered page. Its methods are safe
// for concurrent use: a page makes many requests at once.
type PageSession struct {
	f      *Fetcher
	page   *url.URL
	listed string // the page's host when the input lists it
	start  time.Time
	// validators are --since's (if hasValidators), sent with the page's
	// first request only.
	validators    validators
	hasValidators bool
	jar           *fetchJar // with Session; else cookies are the run's and the task's
	taskCookie    string
	proxy         *poolProxy

	mu   sync.Mutex
	docs int             // document requests made: the page's and its redirects'
	doc  *documentAnswer // the page's latest document response
	// resources are the other exchanges, with Config.Archive, and
	// resourceBytes their bodies' size, which MaxBody bounds.
	resources     []Exchange
	resourceBytes int64
	unarchived    int
	// proxyTried says the document went by the proxy and came back or
	// failed; proxyOK, that it came back.
	proxyTried, proxyOK bool
}

// documentAnswer is what the record keeps of the page's own document.
type documentAnswer struct {
	url         string
	status      int
	header      http.Header
	conditional bool
	sum         string
	exchange    *Exchange
}

// NewPageSession starts the requests of a page to be rendered. ctx is the
// page's (Listed, WithCookies, WithValidators apply as to Fetch).
func (f *Fetcher) NewPageSession(ctx context.Context, page *url.URL) *PageSession {
	s := &PageSession{f: f, page: page, start: time.Now()}
	s.validators, s.hasValidators = ctx.Value(validatorsKey{}).(validators)
	if isListed(ctx) {
		s.listed = page.Hostname()
	}
	s.taskCookie, _ = ctx.Value(cookiesKey{}).(string)
	if f.cfg.Session {
		s.jar = newFetchJar(f.cfg.Cookies, page, s.listed, s.taskCookie, s.start)
	}
	if f.proxies != nil {
		// One proxy for all of a page: a site sees one visitor.
		s.proxy = f.proxies.pick(s.start)
	}
	return s
}

// Do makes r, following no redirect (the browser follows them, through Do
// again), and returns the answer for the browser, or why the request failed
// or was refused (a private address, a document redirected more than
// MaxRedirects times, a body over MaxBody).
func (s *PageSession) Do(ctx context.Context, r BrowserRequest) (*BrowserResponse, *Error) {
	f := s.f
	if f.badConfig != nil {
		return nil, Errorf(KindFetch, "%s", f.badConfig)
	}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, Errorf(KindInvalidURL, "%q: not an http or https URL", r.URL)
	}
	conditional := false
	if r.Document {
		s.mu.Lock()
		s.docs++
		hops := s.docs - 1
		s.mu.Unlock()
		if f.cfg.MaxRedirects >= 0 && hops > f.cfg.MaxRedirects {
			return nil, Errorf(KindTooManyRedirects, "stopped after %d redirects", f.cfg.MaxRedirects)
		}
		if hops > 0 && f.cfg.MaxRedirects < 0 {
			return nil, Errorf(KindFetch, "redirected, and redirects are not followed")
		}
		conditional = hops == 0 && s.hasValidators
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if len(r.Body) > 0 {
		body = bytes.NewReader(r.Body)
	}
	limit := f.cfg.Timeout
	if d, ok := ctx.Deadline(); ok {
		limit = max(0, min(limit, time.Until(d).Round(time.Millisecond)))
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, Errorf(KindInvalidURL, "%s", err)
	}
	s.header(req, r.Header, r.Cookies)
	if conditional {
		s.validators.set(req)
	}
	if s.listed != "" && strings.EqualFold(u.Hostname(), s.listed) {
		req = req.WithContext(ListedHost(req.Context(), s.listed))
	}
	if s.proxy != nil {
		req = req.WithContext(withProxy(req.Context(), s.proxy))
	}
	var ip *remoteIP
	if f.cfg.Archive && s.proxy == nil {
		ip = new(remoteIP)
		req = ip.trace(req)
	}
	resp, err := f.transport.RoundTrip(req)
	if s.proxy != nil && r.Document && ctx.Err() == nil {
		// The document's answer says whether the proxy works; a page
		// cut short says nothing.
		s.mu.Lock()
		s.proxyTried, s.proxyOK = true, resp != nil
		s.mu.Unlock()
	}
	if err != nil {
		return nil, classify(ctx, limit, err)
	}
	defer resp.Body.Close()
	if s.jar != nil {
		// A page's requests run at once; the jar is one fetch's.
		s.mu.Lock()
		s.jar.SetCookies(u, resp.Cookies())
		s.mu.Unlock()
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, f.cfg.MaxBody+1))
	if err != nil {
		return nil, classifyBody(ctx, limit, err)
	}
	if n > f.cfg.MaxBody {
		return nil, Errorf(KindTooLarge, "body exceeds %d bytes", f.cfg.MaxBody)
	}
	out := &BrowserResponse{Status: resp.StatusCode, Header: resp.Header.Clone(), Body: buf.Bytes()}
	for _, h := range []string{"Content-Encoding", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive"} {
		out.Header.Del(h)
	}
	var ex *Exchange
	if f.cfg.Archive {
		ex = &Exchange{Request: requestHead(req), Response: responseHead(resp), Body: string(out.Body), IP: ip.String(), URL: u.String()}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !r.Document {
		s.archive(ex)
		return out, nil
	}
	if s.doc != nil {
		s.archive(s.doc.exchange) // a redirect's hop
	}
	s.doc = &documentAnswer{url: u.String(), status: resp.StatusCode, header: resp.Header, conditional: conditional, sum: bodySum(out.Body), exchange: ex}
	return out, nil
}

// archive keeps ex among the page's resources while their bodies fit in
// MaxBody: a page's scripts may ask for far more than its record can carry.
// s.mu is held.
func (s *PageSession) archive(ex *Exchange) {
	if ex == nil {
		return
	}
	if s.resourceBytes+int64(len(ex.Body)) > s.f.cfg.MaxBody {
		s.unarchived++
		return
	}
	s.resourceBytes += int64(len(ex.Body))
	s.resources = append(s.resources, *ex)
}

// Resources returns the page's other exchanges (Config.Archive), and how
// many more were left out of the archive for their size. Call it once the
// page's requests are over.
func (s *PageSession) Resources() ([]Exchange, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resources, s.unarchived
}

// header sets req's headers: the browser's, less what the transport does
// itself, then the run's (-H), which may replace them, and the cookies.
func (s *PageSession) header(req *http.Request, browser http.Header, browserCookies []*http.Cookie) {
	h := req.Header
	for name, vs := range browser {
		if strings.HasPrefix(name, ":") {
			continue // HTTP/2's pseudo-headers: the transport's to write
		}
		switch http.CanonicalHeaderKey(name) {
		// The transport asks for gzip and decodes it itself, so MaxBody
		// bounds the decoded size; it frames the request itself too.
		case "Accept-Encoding", "Connection", "Content-Length", "Host", "Transfer-Encoding", "Cookie":
			continue
		}
		for _, v := range vs {
			h.Add(name, v)
		}
	}
	h.Set("User-Agent", s.f.cfg.UserAgent)
	own := sameSite(req.URL, s.page)
	for _, x := range s.f.cfg.Headers {
		// Credentials in the run's headers go to the page's own site only,
		// as Go's client keeps them along a redirect: a page's script on
		// another host does not get them.
		if !own && sensitiveHeader(x.Name) {
			continue
		}
		h.Set(x.Name, x.Value)
	}
	var cookies []string
	if s.jar != nil {
		s.mu.Lock()
		for _, c := range s.jar.Cookies(req.URL) {
			cookies = append(cookies, c.Name+"="+c.Value)
		}
		s.mu.Unlock()
	} else {
		extra := ""
		if strings.EqualFold(req.URL.Host, s.page.Host) {
			extra = s.taskCookie
		}
		if c := cookieHeader(s.f.cfg.Cookies, req.URL, s.listed, extra, s.start); c != "" {
			cookies = append(cookies, c)
		}
	}
	if len(browserCookies) > 0 {
		named := map[string]bool{}
		for _, c := range cookies {
			cs, _ := http.ParseCookie(c)
			for _, c := range cs {
				named[c.Name] = true
			}
		}
		for _, c := range browserCookies {
			if !named[c.Name] {
				named[c.Name] = true
				cookies = append(cookies, c.Name+"="+c.Value)
			}
		}
	}
	if len(cookies) > 0 {
		h.Set("Cookie", strings.Join(cookies, "; "))
	}
}

// PageCookies are the cookies the run and the task give the page's own
// URL (--cookie, --session), for the browser to hold before the page
// loads: a script that reads document.cookie (a consent wall) sees them,
// as it would in the user's own browser.
func (s *PageSession) PageCookies() []*http.Cookie {
	if s.jar != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.jar.Cookies(s.page)
	}
	cs, _ := http.ParseCookie(cookieHeader(s.f.cfg.Cookies, s.page, s.listed, s.taskCookie, s.start))
	return cs
}

// sameSite reports whether u is on page's host or one of its subdomains.
func sameSite(u, page *url.URL) bool {
	h, p := strings.ToLower(u.Hostname()), strings.ToLower(page.Hostname())
	return h == p || strings.HasSuffix(h, "."+p)
}

func sensitiveHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Authorization", "Www-Authenticate", "Cookie", "Cookie2", "Proxy-Authorization":
		return true
	}
	return false
}

// Finish puts what the page's own document said on res: its final URL, its
// status and type, its validators and the SHA-256 of its body, all as
// served (not of the DOM), its exchange for the archive, the cookies it set
// (--session) and the proxy. It reports whether the document was unchanged
// (--since: a 304 to the validators sent): there is no DOM worth reading.
func (s *PageSession) Finish(res *Result) (unchanged bool) {
	s.mu.Lock()
	doc, proxyTried, proxyOK := s.doc, s.proxyTried, s.proxyOK
	if s.jar != nil {
		res.SetCookies = slices.Clone(s.jar.set)
	}
	s.mu.Unlock()
	if s.proxy != nil {
		res.Proxy = s.proxy.name
		if proxyTried {
			s.f.proxies.done(s.proxy, proxyOK, time.Now())
		}
	}
	if doc == nil {
		return false
	}
	res.Status, res.FinalURL = doc.status, doc.url
	res.ContentType = strings.ToValidUTF8(doc.header.Get("Content-Type"), "\uFFFD")
	keepValidators(res, doc.header)
	res.Exchange = doc.exchange
	if doc.conditional && doc.status == http.StatusNotModified {
		res.Unchanged = true
		return true
	}
	res.SHA256 = doc.sum
	return false
}
