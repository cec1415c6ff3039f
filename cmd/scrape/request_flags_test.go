package main

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/scrape-cluster/scrape/scrape"
)

func TestRunRequestFlags(t *testing.T) {
	o := mustParseRun(t, "run", "urls.txt", "-H", "X-Token: t", "--header", "accept-language: de",
		"--cookie", "sid=abc", "--cookie", "theme=dark", "--cookies", "jar.txt", "--session",
		"--proxy", "http://p1:3128", "--proxy", "socks5://u:pw@p2:1080",
		"--match", "/blog/", "--exclude", `\.pdf$`, "--exclude", "/logout")
	c := o.cfg
	if want := []scrape.Header{{Name: "X-Token", Value: "t"}, {Name: "Accept-Language", Value: "de"}}; !reflect.DeepEqual(c.Fetch.Headers, want) {
		t.Errorf("headers %+v, want %+v", c.Fetch.Headers, want)
	}
	if want := []scrape.Cookie{{Name: "sid", Value: "abc"}, {Name: "theme", Value: "dark"}}; !reflect.DeepEqual(c.Fetch.Cookies, want) {
		t.Errorf("cookies %+v, want %+v", c.Fetch.Cookies, want)
	}
	if filepath.Base(o.req.cookiesFile) != "jar.txt" || !filepath.IsAbs(o.req.cookiesFile) || !c.Session {
		t.Errorf("--cookies %q, --session %v", o.req.cookiesFile, c.Session)
	}
	if want := []string{"http://p1:3128", "socks5://u:pw@p2:1080"}; !reflect.DeepEqual(c.Fetch.Proxies, want) {
		t.Errorf("proxies %v, want %v", c.Fetch.Proxies, want)
	}
	if !reflect.DeepEqual(c.Match, []string{"/blog/"}) || !reflect.DeepEqual(c.Exclude, []string{`\.pdf$`, "/logout"}) {
		t.Errorf("match %q exclude %q", c.Match, c.Exclude)
	}
}

func TestRunRequestFlagErrors(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"-H", "no colon"}, "want 'Name: value'"},
		{[]string{"--header", "Host: x"}, "set by scrape itself"},
		{[]string{"--cookie", "novalue"}, "want name=value"},
		{[]string{"--cookie", "sid=a b"}, `cookie "sid=…"`},
		{[]string{"--proxy", "ftp://p"}, "scheme must be http, https or socks5"},
		{[]string{"--match", "("}, `--match "("`},
		{[]string{"--exclude", "a[", "--match", "ok"}, `--exclude "a["`},
	}
	for _, tt := range tests {
		args := append([]string{"run", "urls.txt"}, tt.args...)
		p, err := parse(t, args...)
		if !errors.As(err, new(*usageError)) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%q: error %v, want a usage error saying %q", args, err, tt.wantErr)
		}
		if p.run != nil {
			t.Errorf("%q: the run was called", args)
		}
	}
	// A cookie's value is nobody else's business, even in an error.
	_, err := parse(t, "run", "urls.txt", "--cookie", "sid=s3cr3t;x")
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %v: want one without the value", err)
	}
}

func TestRunWarnsOfCookiesInClear(t *testing.T) {
	o := mustParseRun(t, "run", "urls.txt", "--no-tls", "--cookie", "sid=1")
	if !strings.Contains(strings.Join(o.warnings, "\n"), "in clear") {
		t.Errorf("warnings %q: want one about cookies in clear", o.warnings)
	}
	if o := mustParseRun(t, "run", "urls.txt", "--cookie", "sid=1"); len(o.warnings) > 0 {
		t.Errorf("warnings %q over TLS", o.warnings)
	}
}

// A resume may start elsewhere: the cookies file is kept by its absolute
// path, with the other request flags as given.
func TestRunRequestFlagsKeptForResume(t *testing.T) {
	o := mustParseRun(t, "run", "urls.txt", "--cookies", "jar.txt", "-H", "X-Token: t", "--match", "/a/")
	if !filepath.IsAbs(o.req.cookiesFile) {
		t.Errorf("--cookies %q: want an absolute path", o.req.cookiesFile)
	}
	saved := string(o.cfg.Saved)
	for _, want := range []string{"--cookies=" + o.req.cookiesFile, "--header=X-Token: t", "--match=/a/"} {
		if !strings.Contains(saved, want) {
			t.Errorf("kept %s, want it to hold %q", saved, want)
		}
	}
}
