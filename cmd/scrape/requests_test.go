package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// Without --proxy, HTTP_PROXY is obeyed on every node: the "site" here
// exists only as the proxy's answer, and no name is looked up.
func TestRunHTTPProxyFromTheEnvironment(t *testing.T) {
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		proxied.Add(1)
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<title>proxied %s</title>", r.URL.Path)
	}))
	t.Cleanup(proxy.Close)
	out := writeFile(t, "out.json", "")
	os.Remove(out)
	urls := writeFile(t, "urls.txt", "http://site.invalid/a\nhttp://site.invalid/b\n")

	cmd := scrapeCmd(t, t.Context(), "run", urls, "-o", out, "--ignore-robots", "-q")
	cmd.Env = append(os.Environ(), "HTTP_PROXY="+proxy.URL, "http_proxy="+proxy.URL, "NO_PROXY=", "no_proxy=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scrape run: %v\n%s", err, b)
	}
	for _, rec := range readJSON(t, out) {
		want := "proxied " + strings.TrimPrefix(rec.URL, "http://site.invalid")
		if rec.Error != nil || rec.Title != want {
			t.Errorf("%s: title %q, error %v; want %q", rec.URL, rec.Title, rec.Error, want)
		}
	}
	if n := proxied.Load(); n != 2 {
		t.Errorf("the proxy got %d requests, want 2", n)
	}
}

// Headers and cookies reach the site on a whole run, and --match and
// --exclude decide which of the links a crawl follows.
func TestRunHeadersCookiesAndScope(t *testing.T) {
	links := []string{"/blog/1", "/blog/2.pdf", "/logout", "/shop/1"}
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<title>%s token=%s cookie=%s</title>", r.URL.Path, r.Header.Get("X-Token"), r.Header.Get("Cookie"))
		if r.URL.Path == "/start" {
			for _, l := range links {
				fmt.Fprintf(w, `<a href="%s">x</a>`, l)
			}
		}
	}))
	t.Cleanup(site.Close)
	host := strings.Split(strings.TrimPrefix(site.URL, "http://"), ":")[0]
	jar := writeFile(t, "cookies.txt", "# Netscape HTTP Cookie File\n"+host+"\tFALSE\t/blog\tFALSE\t0\tfromfile\tf1\n")
	out := writeFile(t, "out.json", "")
	os.Remove(out)
	urls := writeFile(t, "urls.txt", site.URL+"/start\n")

	cmd := scrapeCmd(t, t.Context(), "run", urls, "-o", out, "-q", "--ignore-robots", "--depth", "1",
		"-H", "X-Token: t0k", "--cookie", "sid=abc", "--cookies", jar,
		"--match", "/blog/", "--match", "/logout", "--exclude", `\.pdf$`, "--exclude", "/logout")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scrape run: %v\n%s", err, b)
	}
	titles := map[string]string{}
	for _, rec := range readJSON(t, out) {
		titles[strings.TrimPrefix(rec.URL, site.URL)] = rec.Title
	}
	want := map[string]string{
		"/start":  "/start token=t0k cookie=sid=abc",
		"/blog/1": "/blog/1 token=t0k cookie=sid=abc; fromfile=f1",
	}
	if len(titles) != len(want) {
		t.Errorf("pages fetched %v, want /start and /blog/1 alone", titles)
	}
	for path, w := range want {
		if titles[path] != w {
			t.Errorf("%s: title %q, want %q", path, titles[path], w)
		}
	}
}

func TestRunCookiesFileErrorNamesTheLine(t *testing.T) {
	jar := writeFile(t, "cookies.txt", "# comment\nexample.com\tTRUE\t/\tFALSE\tnever\tsid\ts3cret\n")
	urls := writeFile(t, "urls.txt", "http://127.0.0.1:1/\n")
	cmd := scrapeCmd(t, t.Context(), "run", urls, "--cookies", jar, "-q")
	b, err := cmd.CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(b), "cookies.txt:2:") || strings.Contains(string(b), "s3cret") {
		t.Errorf("exit %d, output %q: want 1 and the file's line 2, without the value", code, b)
	}
}
