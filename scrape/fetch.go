package scrape

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/net/html/charset"
)

// Fetcher fetches pages and extracts them into Results. It is safe for
// concurrent use; one Fetcher per process lets all fetches share a pool of
// connections.
type Fetcher struct {
	cfg       Config
	guard     *Guard
	transport *http.Transport
	client    *http.Client
	extract   extractor
	// proxies is the --proxy pool; nil without one, when the environment
	// is obeyed.
	proxies *proxyPool
	// renderMatch is --render-match, compiled; nil without one.
	renderMatch *regexp.Regexp
	// badConfig is why cfg does not validate. It fails every Fetch rather
	// than NewFetcher, so that a worker records it on each task instead of
	// quietly writing records without the fields the run asked for.
	badConfig error
}

// NewFetcher returns a Fetcher configured by cfg.
func NewFetcher(cfg Config) *Fetcher {
	cfg = cfg.withDefaults()
	// Connecting and handshaking are bounded separately from the whole
	// request so a dead host fails fast even when Timeout is generous.
	stepTimeout := min(cfg.Timeout, 10*time.Second)
	guard := NewGuard(cfg, &net.Dialer{Timeout: stepTimeout, KeepAlive: 30 * time.Second})
	t := &http.Transport{
		// Through a proxy the guard checks only the connection to the
		// proxy, which the user chose; the target is the proxy's to reach.
		Proxy:                 guard.Proxy,
		DialContext:           guard.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   stepTimeout,
		ResponseHeaderTimeout: cfg.Timeout,
		ExpectContinueTimeout: time.Second,
		// A crawl touches many hosts a few times each, so the total idle pool
		// is what bounds open file descriptors; per host we only need enough
		// for the fetches that can run at once.
		MaxIdleConns:        max(100, 4*cfg.Parallelism),
		MaxIdleConnsPerHost: cfg.Parallelism,
		IdleConnTimeout:     60 * time.Second,
		// Default is 10 MiB; no honest page needs more than this in headers.
		MaxResponseHeaderBytes: 1 << 20,
		// Accept-Encoding is deliberately left to the transport: it then asks
		// for gzip and decompresses transparently, so MaxBody limits the
		// decompressed size and a gzip bomb is cut off like any large body.
	}
	f := &Fetcher{cfg: cfg, guard: guard, transport: t}
	f.extract, f.badConfig = newExtractor(cfg.extractOptions())
	if re, err := cfg.renderMatch(); err != nil {
		f.badConfig = err
	} else {
		f.renderMatch = re
	}
	if len(cfg.Proxies) > 0 {
		pool, err := newProxyPool(cfg.Proxies)
		if err != nil {
			f.badConfig = err
		} else {
			f.proxies = pool
			t.Proxy = f.proxyFor
			for _, pp := range pool.proxies {
				// The user chose these: the guard lets them be dialled
				// wherever they are. The targets are the proxies' to
				// reach (see Guard.Proxy).
				guard.proxies[proxyAddr(pp.url)] = true
			}
		}
	}
	f.client = &http.Client{Transport: t, CheckRedirect: f.checkRedirect}
	return f
}

// Close closes idle connections. In-flight fetches are not interrupted; cancel
// their contexts for that. Close may be called more than once.
func (f *Fetcher) Close() {
	f.transport.CloseIdleConnections()
}

// redirectError is returned from CheckRedirect; the client wraps it in a
// *url.Error, and classify unwraps it to pick the kind.
type redirectError struct {
	kind, msg string
}

func (e *redirectError) Error() string { return e.msg }

func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if f.cfg.MaxRedirects < 0 {
		return http.ErrUseLastResponse
	}
	// via holds every request made so far, so len(via) is the number of the
	// redirect about to be followed.
	if len(via) > f.cfg.MaxRedirects {
		return &redirectError{KindTooManyRedirects, fmt.Sprintf("stopped after %d redirects", f.cfg.MaxRedirects)}
	}
	if s := req.URL.Scheme; s != "http" && s != "https" {
		return &redirectError{KindFetch, fmt.Sprintf("redirect to unsupported scheme %q", s)}
	}
	return nil
}

// bufPool recycles body buffers: at thousands of pages a second, allocating a
// fresh buffer grown by doubling to each page's size would dominate garbage.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuf keeps the occasional huge page from pinning its buffer in the
// pool for every later, ordinary page.
const maxPooledBuf = 4 << 20

// maxPreallocBody bounds how much a Content-Length alone can make us allocate.
const maxPreallocBody = 1 << 20

// Fetch fetches rawURL and extracts its page. It never returns an error: every
// failure is a Result whose Error says what went wrong. It leaves Node, Worker,
// Line and Attempts for the caller. DurationMS covers the whole call, fetch
// and extraction. Fields and Text, as Config asks, come with the other
// extracted fields: only from an HTML body that was read whole and that the
// parser built a tree of.
//
// It connects to a private address only as Config allows, or for rawURL's
// own host when ctx is from Listed; any other is a KindBlockedAddress.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) Result {
	return f.FetchReleasing(ctx, rawURL, nil)
}

// FetchReleasing is Fetch that calls release, once, as soon as the network
// is done with the page: its body is read and its connection given back, or
// the fetch failed. Extraction comes after. A caller that bounds the fetches
// in flight frees a place in release, so that its next request goes out
// while this page is parsed rather than after.
func (f *Fetcher) FetchReleasing(ctx context.Context, rawURL string, release func()) (res Result) {
	start := time.Now()
	res = Result{URL: rawURL, FetchedAt: start.UTC()}
	released := release == nil
	done := func() {
		if !released {
			released = true
			release()
		}
	}
	defer done()
	defer func() {
		// One page must not be able to take down a worker and every fetch
		// running beside it; a panic here is a bug, reported on its record.
		if p := recover(); p != nil {
			res.Error = Errorf(KindFetch, "internal error: %v", p)
		}
		res.DurationMS = time.Since(start).Milliseconds()
	}()

	u, err := ParseURL(rawURL)
	if err != nil {
		res.Error = Errorf(KindInvalidURL, "%s", err)
		return res
	}
	if f.badConfig != nil {
		res.Error = Errorf(KindFetch, "%s", f.badConfig)
		return res
	}

	// The caller's deadline may be the nearer one; messages should name the
	// time this fetch really had. Read before our own deadline is set, or
	// a loaded machine would have the message say 199ms of a 200ms one.
	limit := f.cfg.Timeout
	if d, ok := ctx.Deadline(); ok {
		limit = max(0, min(limit, time.Until(d).Round(time.Millisecond)))
	}
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		res.Error = Errorf(KindInvalidURL, "%s", err)
		return res
	}
	req.Header.Set("User-Agent", f.cfg.UserAgent)
	req.Header.Set("Accept", acceptHeader)
	// Headers given for the run come after ours, so they can replace them.
	for _, h := range f.cfg.Headers {
		req.Header.Set(h.Name, h.Value)
	}
	conditional := setValidators(ctx, req)
	listed := ""
	if isListed(ctx) {
		// The listed host is this URL's; a redirect elsewhere is not listed.
		listed = req.URL.Hostname()
		req = req.WithContext(ListedHost(ctx, listed))
	}
	client := f.client
	taskCookies, _ := ctx.Value(cookiesKey{}).(string)
	if f.cfg.Session {
		// A jar of this fetch's own carries the cookies a redirect's
		// response sets to the next request, and keeps them for the
		// record.
		jar := newFetchJar(f.cfg.Cookies, u, listed, taskCookies, start)
		c := *f.client
		c.Jar = jar
		client = &c
		defer func() { res.SetCookies = jar.set }()
	} else if len(f.cfg.Cookies) > 0 || taskCookies != "" {
		// Go's client sends this header on along a redirect only to the
		// same domain or its subdomains.
		if h := cookieHeader(f.cfg.Cookies, u, listed, taskCookies, start); h != "" {
			req.Header.Set("Cookie", h)
		}
	}
	var proxy *poolProxy
	if f.proxies != nil {
		proxy = f.proxies.pick(start)
		res.Proxy = proxy.name
		req = req.WithContext(withProxy(req.Context(), proxy))
	}

	// Only an archiving fetch pays for the trace: ip escapes to the heap.
	var ip *remoteIP
	if f.cfg.Archive && proxy == nil {
		ip = new(remoteIP)
		req = ip.trace(req)
	}
	resp, err := client.Do(req)
	if proxy != nil && outer.Err() == nil {
		// A proxy that lets the page time out counts as failing; a run
		// that stops does not.
		f.proxies.done(proxy, resp != nil, time.Now())
	}
	if resp != nil {
		// On a redirect error the client returns the last response too (body
		// already closed), which is worth recording.
		defer resp.Body.Close()
		res.Status = resp.StatusCode
		res.FinalURL = resp.Request.URL.String()
		res.ContentType = strings.ToValidUTF8(resp.Header.Get("Content-Type"), "\uFFFD")
		keepValidators(&res, resp.Header)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			res.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
	}
	if err != nil {
		res.Error = classify(ctx, limit, err)
		return res
	}

	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBuf {
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	buf.Reset()
	if n := resp.ContentLength; n > 0 && n <= f.cfg.MaxBody {
		// Sizing up front saves the copies of growing by doubling. The
		// length is the server's word, so trust it only so far.
		// +MinRead: ReadFrom wants that much free space before it sees EOF.
		buf.Grow(int(min(n, maxPreallocBody)) + bytes.MinRead)
	}
	// One byte past the cap tells "exactly MaxBody" apart from "more".
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, f.cfg.MaxBody+1))
	res.Bytes = n
	resp.Body.Close()
	done()
	if err != nil {
		res.Error = classifyBody(ctx, limit, err)
		return res
	}
	body := buf.Bytes()
	tooLarge := n > f.cfg.MaxBody
	if tooLarge {
		body = body[:f.cfg.MaxBody]
	}
	if f.cfg.Archive {
		// The body's buffer goes back to the pool: the archive has a copy.
		res.Exchange = &Exchange{Request: requestHead(resp.Request), Response: responseHead(resp),
			Body: string(body), Truncated: tooLarge, IP: ip.String()}
	}
	if conditional && resp.StatusCode == http.StatusNotModified {
		// The page is the one the validators came from: nothing to
		// extract, and no error. The coordinator fills in the rest.
		res.Unchanged = true
		return res
	}
	if !tooLarge {
		res.SHA256 = bodySum(body)
	}

	header := resp.Header.Get("Content-Type")
	mediaType, isHTML := htmlType(header, body)
	if header == "" {
		mediaType += " (sniffed)"
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	switch {
	case !ok:
		// The body of an error page is still read and, if it is HTML,
		// extracted: its title often says more than the status ("Account
		// suspended", "Rate limited") and it costs little.
		res.Error = Errorf(KindHTTPStatus, "%s", statusText(resp.StatusCode))
	case !isHTML:
		// The type decides first: a large PDF is rejected for being a PDF.
		res.Error = Errorf(KindNotHTML, "content type %s", mediaType)
	case tooLarge:
		res.Error = Errorf(KindTooLarge, "body exceeds %d bytes", f.cfg.MaxBody)
	}
	if !isHTML || tooLarge {
		return res
	}

	page, err := f.extract.extract(resp.Request.URL, utf8Reader(body, header))
	// A page the parser refuses is refused on every attempt: it keeps what
	// was read without the parser, and the parser's reason.
	var refused *Error
	if err != nil && !errors.As(err, &refused) {
		if res.Error == nil {
			res.Error = Errorf(KindBadBody, "%s", err)
		}
		return res
	}
	if res.Error == nil {
		res.Error = refused
	}
	if f.cfg.Render == RenderAuto && ok {
		res.NeedsRender = NeedsRender(body, f.renderMatch)
	}
	res.Title, res.Description = page.Title, page.Description
	res.Headings, res.Links = page.Headings, page.Links
	res.Fields, res.Text, res.Data = page.Fields, page.Text, page.Data
	return res
}

// htmlType reports the media type of a response and whether it is HTML. With
// no Content-Type header it sniffs the body, as a browser would.
func htmlType(contentType string, body []byte) (mediaType string, isHTML bool) {
	if contentType == "" {
		contentType = http.DetectContentType(body[:min(len(body), 512)])
		if contentType == "" {
			return "unknown", false
		}
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		// Malformed parameters are common; the type before them is usually fine.
		mediaType, _, _ = strings.Cut(contentType, ";")
		mediaType = strings.ToLower(strings.TrimSpace(mediaType))
	}
	mediaType = strings.ToValidUTF8(mediaType, "\uFFFD")
	return mediaType, mediaType == "text/html" || mediaType == "application/xhtml+xml"
}

// utf8Reader decodes body to UTF-8 using, in order, a byte order mark, the
// Content-Type charset and a <meta> charset in the first 1024 bytes.
//
// When neither BOM nor header is certain and the body is valid UTF-8, it is
// read as UTF-8 even against a <meta> label: legacy-encoded text with non-ASCII
// bytes is almost never valid UTF-8 by accident, while mislabelled UTF-8 pages
// are common. It also skips the decoder for the many ASCII-only pages.
func utf8Reader(body []byte, contentType string) io.Reader {
	enc, name, certain := charset.DetermineEncoding(body, contentType)
	if name == "utf-8" || (!certain && utf8.Valid(body)) {
		return bytes.NewReader(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))
	}
	return enc.NewDecoder().Reader(bytes.NewReader(body))
}

func statusText(code int) string {
	if text := http.StatusText(code); text != "" {
		return strconv.Itoa(code) + " " + text
	}
	return strconv.Itoa(code)
}

// ParseURL parses raw as a URL that can be fetched: absolute, http or https,
// with a host. Surrounding spaces, common when URLs come from files, are
// trimmed. The error names the URL and what is wrong with it.
func ParseURL(raw string) (*url.URL, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, errors.New("empty URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	switch {
	case u.Scheme == "":
		return nil, fmt.Errorf("%q: missing scheme, want http:// or https://", s)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q: scheme must be http or https", s)
	case u.Opaque != "" || u.Hostname() == "":
		return nil, fmt.Errorf("%q: missing host", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q: invalid port %q", s, p)
		}
	}
	// url.Parse takes a space in a path as part of it, so a line with words
	// after its URL would be fetched as one page of a strange name.
	if strings.ContainsAny(s, " \t") {
		return nil, fmt.Errorf("%q: a URL has no spaces (words after the URL?); write a space in a path as %%20", s)
	}
	return u, nil
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(secs, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
