package scrape

import (
	"fmt"
	"net/netip"
	"regexp"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxBody      = 10 << 20
	DefaultMaxRedirects = 10
	defaultParallelism  = 8
)

// acceptHeader prefers HTML but accepts anything: some servers answer 406 to
// a strict Accept, and we would rather see what they have and classify it.
const acceptHeader = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"

// Config tunes a Fetcher. The zero value is ready to use. It travels as JSON
// inside the run's job to every worker.
type Config struct {
	Timeout      time.Duration // whole request incl. body; 0 = DefaultTimeout
	UserAgent    string        // "" = DefaultUserAgent()
	MaxBody      int64         // bytes of (decompressed) body; 0 = DefaultMaxBody
	MaxRedirects int           // 0 = DefaultMaxRedirects; negative = do not follow redirects
	Parallelism  int           // expected concurrent fetches, used to size the connection pool; 0 = 8
	Select       []Selector    // --select: values for Result.Fields, from ParseSelector
	Text         bool          // --text: fill Result.Text
	Structured   bool          // --structured: fill Result.Data (structured.go)

	// AllowPrivate and AllowPrivateAll open the guard (guard.go), for
	// --allow-private=CIDR,... and a bare --allow-private: ranges to connect
	// to anyway, and every refused range but link-local (metadata services).
	AllowPrivate    []netip.Prefix
	AllowPrivateAll bool

	// Headers go with every request (-H); Cookies with the requests they
	// match (--cookie, --cookies). They reach workers in the run's job,
	// never on a command line.
	Headers []Header `json:",omitempty"`
	Cookies []Cookie `json:",omitempty"`
	// Proxies are the run's pool (--proxy): each request goes through the
	// next, round-robin, passing over one benched for failing. Without
	// any, HTTP_PROXY, HTTPS_PROXY and NO_PROXY are obeyed.
	Proxies []string `json:",omitempty"`
	// Session makes each fetch keep the cookies its responses set
	// (Result.SetCookies), for the coordinator's jar, and send the ones
	// its task carries (Task.Cookies).
	Session bool `json:",omitempty"`

	// Render is --render: RenderNever (""), RenderAlways or RenderAuto.
	// With RenderAuto, Fetch judges each HTML page (NeedsRender) and says
	// in Result.NeedsRender why a browser should load it.
	Render string `json:",omitempty"`
	// RenderMatch is --render-match: a regular expression that sends a
	// page whose body it matches to the browser, with RenderAuto.
	RenderMatch string `json:",omitempty"`
	// WaitFor is --wait-for: the CSS selector a rendered page is read
	// after; without it, after the network is idle.
	WaitFor string `json:",omitempty"`
	// RenderResources is --render-resources: a rendered page loads its
	// images, fonts and media too, which are blocked otherwise.
	RenderResources bool `json:",omitempty"`
	// RenderMemory is --render-memory: the bytes a worker's browser may
	// take before it is retired for a fresh one; 0 sizes it by the
	// worker's render slots.
	RenderMemory int64 `json:",omitempty"`

	// Archive makes each fetch keep its request and response, body
	// included, for a WARC (Result.Exchange). Off, bodies never leave
	// the fetch.
	Archive bool `json:",omitempty"`
}

// Validate reports what would make every Fetch of a Fetcher made from c
// fail: an invalid selector, or two with the same name. Selectors from
// ParseSelector are valid one by one; call it before starting a run, and on a
// Config decoded from elsewhere.
func (c Config) Validate() error {
	if _, err := newProxyPool(c.Proxies); err != nil {
		return err
	}
	if _, err := c.renderMatch(); err != nil {
		return err
	}
	_, err := newExtractor(c.extractOptions())
	return err
}

// renderMatch compiles RenderMatch; nil without one.
func (c Config) renderMatch() (*regexp.Regexp, error) {
	if c.RenderMatch == "" {
		return nil, nil
	}
	re, err := regexp.Compile(c.RenderMatch)
	if err != nil {
		return nil, fmt.Errorf("--render-match: %w", err)
	}
	return re, nil
}

func (c Config) extractOptions() ExtractOptions {
	return ExtractOptions{Select: c.Select, Text: c.Text, Structured: c.Structured}
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent()
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxRedirects == 0 {
		c.MaxRedirects = DefaultMaxRedirects
	}
	if c.Parallelism <= 0 {
		c.Parallelism = defaultParallelism
	}
	return c
}
