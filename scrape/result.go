// Package scrape fetches one page and turns it into a Result. It knows nothing
// about queues or clusters: the worker calls it, the coordinator only stores
// what it returns.
package scrape

import (
	"encoding/json"
	"fmt"
	"time"
)

// Error kinds. They are part of the output format: users filter on them, so a
// kind is never renamed once released.
const (
	KindInvalidURL       = "invalid_url"
	KindDNS              = "dns"
	KindConnect          = "connect"
	KindTimeout          = "timeout"
	KindTLS              = "tls"
	KindHTTPStatus       = "http_status"
	KindTooLarge         = "too_large"
	KindTooManyRedirects = "too_many_redirects"
	KindNotHTML          = "not_html"
	KindBadBody          = "bad_body"
	KindFetch            = "fetch"
	// KindParseLimit marks an HTML page the parser refused to build a tree
	// of, such as one nested deeper than its 512 open elements. That is the
	// document's doing, not the network's: every attempt fails the same
	// way, so it is not one to retry. The record keeps what could be read
	// without the tree (title, description, headings and links, as far as
	// the token scan got), but no Fields or Text.
	KindParseLimit = "parse_limit"
	// KindWorkerLost marks a task whose deliveries kept dying with their
	// worker: it is given up rather than allowed to take down every node.
	KindWorkerLost = "worker_lost"
	// KindRobotsDisallowed marks a URL the site's robots.txt forbids to our
	// user agent; it is never requested.
	KindRobotsDisallowed = "robots_disallowed"
	// KindBlockedAddress marks a URL whose fetch would have connected to a
	// loopback, private, link-local, carrier-grade NAT, unspecified or
	// multicast address, itself or through a redirect, without the input
	// listing its host or --allow-private allowing the address. The message
	// names the address. That connection is never made (a redirect's first
	// request was), and it is not retried: the address keeps its range.
	KindBlockedAddress = "blocked_address"
	// KindHostUnreachable marks a URL whose host the coordinator gave up
	// on: several connections to it in a row failed (connect, dns, tls or
	// timeout), and so did one more, a probe sent after a wait. The message
	// names the host and its last failure. The URL was not requested again,
	// or at all: a dead host's URLs are recorded at once instead of each
	// waiting out its own timeouts and retries.
	KindHostUnreachable = "host_unreachable"
)

// Error is why a record has no (complete) page.
type Error struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Kind + ": " + e.Message }

// Errorf builds an Error of the given kind.
func Errorf(kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Result is the record one input URL becomes: the unit of the output file.
type Result struct {
	URL         string   `json:"url"`
	Line        int      `json:"line,omitempty"`
	FinalURL    string   `json:"final_url,omitempty"`
	Status      int      `json:"status,omitempty"`
	ContentType string   `json:"content_type,omitempty"`
	Title       string   `json:"title,omitempty"`
	Description string   `json:"description,omitempty"`
	Headings    []string `json:"headings,omitempty"`
	Links       []string `json:"links,omitempty"`
	// Fields holds the values of the run's --select expressions, by name.
	Fields map[string][]string `json:"fields,omitempty"`
	// Text is the page's visible text, with --text.
	Text string `json:"text,omitempty"`
	// Data is the page's structured data with --structured: the JSON of a
	// Structured (structured.go), at most MaxData bytes.
	Data json.RawMessage `json:"data,omitempty"`
	// Lastmod is the <lastmod> of the sitemap entry the URL came from, as
	// the sitemap wrote it, with --sitemap.
	Lastmod string `json:"lastmod,omitempty"`
	// ETag and LastModified are the response's validators, as the site
	// sent them; SHA256 is the hex SHA-256 of the body, when it was read
	// whole. A later run given this record (--since) sends the validators
	// back and compares the sum (since.go in the coordinator).
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	SHA256       string `json:"sha256,omitempty"`
	// Unchanged says the page is the one the --since output has: the site
	// answered 304 Not Modified to its validators, or served a body of the
	// same SHA-256.
	Unchanged bool `json:"unchanged,omitempty"`
	// Depth and Parent place a crawled page: how many links away from the
	// input it is, and the page it was found on.
	Depth      int       `json:"depth,omitempty"`
	Parent     string    `json:"parent,omitempty"`
	Bytes      int64     `json:"bytes"`
	DurationMS int64     `json:"duration_ms"`
	FetchedAt  time.Time `json:"fetched_at,omitzero"`
	Node       string    `json:"node,omitempty"`
	Worker     string    `json:"worker,omitempty"`
	// Proxy names the --proxy the page was fetched through, without its
	// credentials.
	Proxy    string `json:"proxy,omitempty"`
	Attempts int    `json:"attempts"`
	// Rendered says the record is of the page's DOM after a browser ran
	// its scripts (--render), not of the body a request returned.
	Rendered bool `json:"rendered,omitempty"`
	// NeedsRender, with --render auto, is why the page fetched over HTTP
	// should be loaded in a browser (NeedsRender); "" if not. The
	// coordinator then queues it again as a render task, and the record
	// is the rendered one. It stays on a record only when no node could
	// render the page: the plain record is then the final one, and this
	// says it is not what a browser would have read.
	NeedsRender string `json:"needs_render,omitempty"`
	Error       *Error `json:"error,omitempty"`

	// RetryAfter is the site's Retry-After on a 429 or 503. It steers the
	// frontier's next attempt and is not part of the record.
	RetryAfter time.Duration `json:"-"`
	// SetCookies are the cookies the page's responses set, redirects'
	// included, with --session: the coordinator's jar keeps them for the
	// run's later tasks. They are not part of the record.
	SetCookies []SetCookie `json:"-"`
	// Exchange is the page's request and response, with Config.Archive:
	// the coordinator writes it to the run's WARC. It is not part of the
	// record.
	Exchange *Exchange `json:"-"`
	// Resources are a rendered page's other exchanges, with Config.Archive:
	// its redirects' hops and what its scripts and styles asked for, so
	// that the archive replays the page as the browser saw it. Each names
	// its URL. They are not part of the record.
	Resources []Exchange `json:"-"`
}

// SetCookie is one Set-Cookie header and the URL of the response that
// carried it, which its default domain and path come from.
type SetCookie struct {
	URL    string
	Header string
}

// Task is one URL to fetch, as the coordinator's frontier hands it out.
// ID is unique within a run and is what makes exactly-once output possible:
// the coordinator writes the first result for an ID and drops the rest.
type Task struct {
	ID      uint64 `json:"id"`
	URL     string `json:"url"`
	Line    int    `json:"line,omitempty"`
	Attempt int    `json:"attempt"`
	Depth   int    `json:"depth,omitempty"`
	Parent  string `json:"parent,omitempty"`
	// Lastmod is the sitemap's <lastmod> for the URL (--sitemap). The
	// coordinator puts it on the record; the worker does not use it.
	Lastmod string `json:"lastmod,omitempty"`
	// Token is new for each attempt; the result must carry it back, which
	// only the worker the attempt was delivered to can do.
	Token string `json:"token,omitempty"`
	// Listed says the input lists the task's host: the task is an input
	// line, or a crawled page on the host of one. Its fetch may then connect
	// that host at a private address (Listed).
	Listed bool `json:"listed,omitempty"`
	// Delay is the spacing of requests to the task's host when the task was
	// released (--delay, the host's Crawl-delay, or a pace lowered by 429s
	// and 503s). When it is set, the worker asks the coordinator for a start
	// lease before the request; a task of a host without one skips that
	// round trip.
	Delay time.Duration `json:"delay,omitempty"`
	// Prompt says the task's host waits for its answer: the host is at its
	// limit in flight with tasks queued. The worker then stores the result
	// at once instead of letting it wait for others to share its message.
	Prompt bool `json:"prompt,omitempty"`
	// Cookies is the Cookie header the coordinator's jar holds for URL
	// (--session). The queue is TLS unless --no-tls.
	Cookies string `json:"cookies,omitempty"`
	// ETag and LastModified are the validators of the URL's record in the
	// --since output: the worker sends them as If-None-Match and
	// If-Modified-Since (WithValidators), so that an unchanged page costs
	// a 304 and no body.
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// Render sends the task to the run's render subject, which only
	// workers with a browser pull; they load the page in it (--render).
	Render bool `json:"render,omitempty"`
}
