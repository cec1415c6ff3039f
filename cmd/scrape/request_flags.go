package main

import (
	"github.com/spf13/pflag"

	"github.com/scrape-cluster/scrape/coordinator"
	"github.com/scrape-cluster/scrape/scrape"
)

// requestFlags are scrape run's flags for what goes with each request
// (headers, cookies, proxies) and which links a crawl follows.
type requestFlags struct {
	headers     []string // parsed into cfg.Fetch.Headers
	cookies     []string // parsed into cfg.Fetch.Cookies
	cookiesFile string   // read into cfg.Fetch.Cookies by runScrape
}

func (o *runOptions) bindRequest(f *pflag.FlagSet) {
	c := &o.cfg
	f.StringArrayVarP(&o.req.headers, "header", "H", nil, "send `'Name: value'` with every request; repeatable")
	f.StringArrayVar(&o.req.cookies, "cookie", nil, "send cookie `name=value` to the urls file's hosts; repeatable")
	f.StringVar(&o.req.cookiesFile, "cookies", "", "send the cookies of `file` (Netscape cookies.txt, as curl and browsers export) to their domains")
	f.BoolVar(&c.Session, "session", false, "keep the cookies sites set in one jar for the whole cluster and send them with later requests (a crawl behind a login)")
	f.StringArrayVar(&c.Fetch.Proxies, "proxy", nil, "fetch through this proxy `url` (http://, https://, socks5://); repeatable: a pool used round-robin, one that keeps failing benched a while")
	f.StringArrayVar(&c.Match, "match", nil, "when crawling, follow only links matching this `regexp` (any of them); repeatable")
	f.StringArrayVar(&c.Exclude, "exclude", nil, "when crawling, never follow links matching this `regexp`; repeatable")
}

// checkRequest parses the flags bindRequest bound, without reading files.
func (o *runOptions) checkRequest() error {
	c := &o.cfg
	c.Fetch.Headers, c.Fetch.Cookies = nil, nil
	for _, s := range o.req.headers {
		h, err := scrape.ParseHeader(s)
		if err != nil {
			return err
		}
		c.Fetch.Headers = append(c.Fetch.Headers, h)
	}
	for _, s := range o.req.cookies {
		ck, err := scrape.ParseCookie(s)
		if err != nil {
			return err
		}
		c.Fetch.Cookies = append(c.Fetch.Cookies, ck)
	}
	for _, s := range c.Fetch.Proxies {
		if _, err := scrape.ParseProxy(s); err != nil {
			return err
		}
	}
	if _, err := coordinator.CompilePatterns("match", c.Match); err != nil {
		return err
	}
	_, err := coordinator.CompilePatterns("exclude", c.Exclude)
	return err
}

// readCookies adds the cookies of --cookies to the run's.
func (o *runOptions) readCookies(c *coordinator.Config) error {
	if o.req.cookiesFile == "" {
		return nil
	}
	cs, err := scrape.ReadCookiesFile(o.req.cookiesFile)
	if err != nil {
		return err
	}
	c.Fetch.Cookies = append(c.Fetch.Cookies, cs...)
	return nil
}

// requestWarnings: what travels in clear with --no-tls.
func (o *runOptions) requestWarnings() []string {
	c := &o.cfg
	if c.Plaintext && (len(c.Fetch.Headers) > 0 || len(o.req.cookies) > 0 || o.req.cookiesFile != "" || c.Session || len(c.Fetch.Proxies) > 0) {
		return []string{"--no-tls: the run's headers, cookies and proxy credentials cross the network to the workers in clear"}
	}
	return nil
}
