package scrape

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"html"
	"log"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
)

// shortTimeout is what tests of hanging servers give the fetch, so that they
// fail in well under a second when the timeout works.
const shortTimeout = 200 * time.Millisecond

// newSite starts an httptest server with every kind of page the fetch tests
// need. Handlers that hang return when the request is abandoned or the test
// ends, so that closing the server never waits on them.
func newSite(t testing.TB) *httptest.Server {
	t.Helper()
	done := make(chan struct{})
	hang := func(r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}
	okPage := readFixture(t, "basic.html")
	mux := http.NewServeMux()
	serve := func(contentType string, body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if contentType == "" {
				// Stops net/http from sniffing one for us.
				w.Header()["Content-Type"] = nil
			} else {
				w.Header().Set("Content-Type", contentType)
			}
			w.Write(body)
		}
	}
	mux.Handle("GET /ok", serve("text/html; charset=utf-8", okPage))
	mux.HandleFunc("GET /headers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		for _, h := range []string{"User-Agent", "Accept", "Accept-Encoding"} {
			fmt.Fprintf(w, "<h1>%s</h1>\n", html.EscapeString(r.Header.Get(h)))
		}
	})
	mux.HandleFunc("GET /missing", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`<title>Nothing here</title><a href="/">home</a>`))
	})
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /redirect/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n <= 0 {
			serve("text/html", okPage)(w, r)
			return
		}
		http.Redirect(w, r, "/redirect/"+strconv.Itoa(n-1), http.StatusFound)
	})
	mux.HandleFunc("GET /loop/a", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop/b", http.StatusFound)
	})
	mux.HandleFunc("GET /loop/b", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop/a", http.StatusFound)
	})
	mux.HandleFunc("GET /to-ftp", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "ftp://ftp.example.com/", http.StatusFound)
	})
	mux.HandleFunc("GET /hang", func(w http.ResponseWriter, r *http.Request) {
		hang(r)
	})
	mux.HandleFunc("GET /hang-body", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html><head><title>Half a page"))
		w.(http.Flusher).Flush()
		hang(r)
	})
	mux.HandleFunc("GET /endless", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		chunk := bytes.Repeat([]byte("<p>more</p>\n"), 2048)
		for {
			select {
			case <-r.Context().Done():
				return
			case <-done:
				return
			default:
			}
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("GET /exact", func(w http.ResponseWriter, r *http.Request) {
		// Exactly 64 KiB, the cap the test gives: the largest body allowed.
		w.Header().Set("Content-Type", "text/html")
		page := []byte("<title>Exact</title>")
		w.Write(append(page, bytes.Repeat([]byte(" "), 64<<10-len(page))...))
	})
	mux.HandleFunc("GET /gzip-bomb", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(gzipBomb())
	})
	mux.HandleFunc("GET /broken-gzip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", "gzip")
		w.Write([]byte("this is not gzip at all"))
	})
	mux.HandleFunc("GET /cut", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n<title>cut"))
	})
	mux.HandleFunc("GET /no-response", func(w http.ResponseWriter, r *http.Request) {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	})
	// Nested deeper than the HTML parser's 512 open elements: it builds no
	// tree of these, and the token scan reads the first whole but declines
	// the second at its <table>.
	mux.Handle("GET /deep", serve("text/html", []byte(deepPage)))
	mux.Handle("GET /deep-table", serve("text/html", []byte(deepTablePage)))
	mux.HandleFunc("GET /deep-missing", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(deepPage))
	})
	mux.Handle("GET /doc.pdf", serve("application/pdf", []byte("%PDF-1.4\n%fake\n")))
	mux.Handle("GET /data.json", serve("application/json", []byte(`{"title":"not html"}`)))
	mux.Handle("GET /sniff-pdf", serve("", []byte("%PDF-1.4\n%fake\n")))
	mux.Handle("GET /sniff-html", serve("", []byte("<!DOCTYPE html><title>Sniffed</title>")))
	mux.Handle("GET /xhtml", serve("application/xhtml+xml", []byte(`<html xmlns="http://www.w3.org/1999/xhtml"><head><title>XHTML</title></head></html>`)))
	mux.Handle("GET /windows-1252", serve("text/html; charset=windows-1252", readFixture(t, "windows1252.html")))
	// Declared only by the header, in a charset that no guessing falls back to.
	mux.Handle("GET /koi8-r", serve("text/html; charset=koi8-r", []byte("<title>\xf0\xd2\xc9\xd7\xc5\xd4, \xcd\xc9\xd2</title>")))

	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) }) // runs first: cleanups are last in, first out
	return srv
}

// deepPage and deepTablePage nest 600 <div>s, past the 512 open elements
// the HTML parser allows, between what the token scan can read.
var (
	deepHead      = `<title>Deep</title><meta name=description content="Nested too far"><h1>Top</h1><a href="/a">a</a>`
	deepPage      = deepHead + strings.Repeat("<div>", 600) + `<h2>After</h2><a href="/b">b</a>`
	deepTablePage = deepHead + "<table>" + strings.Repeat("<div>", 600) + `<h2>Lost</h2><a href="/lost">lost</a>`
)

// gzipBomb is 50 MiB of zeros in about 50 KiB of gzip. It is built from one
// compressed MiB repeated: gzip allows concatenated members and readers
// decompress them all, and compressing all 50 MiB would cost seconds under the
// race detector, starving the tests that run beside it with short timeouts.
var gzipBomb = sync.OnceValue(func() []byte {
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	zw.Write(make([]byte, 1<<20))
	zw.Close()
	return bytes.Repeat(member.Bytes(), 50)
})

func TestFetch(t *testing.T) {
	srv := newSite(t)
	okPage := readFixture(t, "basic.html")

	tests := []struct {
		name    string
		url     string // relative to the site unless absolute
		cfg     Config
		want    Result // see checkResult for what is compared
		wantMsg string // substring of the error message
	}{
		{
			name: "ok page",
			url:  "/ok",
			want: Result{
				FinalURL:    "/ok",
				Status:      200,
				ContentType: "text/html; charset=utf-8",
				Title:       "Example Domain",
				Description: "An example page for tests.",
				Headings:    []string{"Welcome", "Section one", "Detail"},
				Links: []string{
					"https://www.iana.org/domains/example",
					"/about",
					"/next.html",
					"/up/",
					"http://other.example.net/x?y=1&z=2",
				},
				Bytes: int64(len(okPage)),
			},
		},
		{
			name: "URL trimmed",
			url:  "  /ok ",
			want: Result{FinalURL: "/ok", Status: 200, ContentType: "text/html; charset=utf-8", Title: "Example Domain", Description: "An example page for tests.", Bytes: int64(len(okPage))},
		},
		{
			name: "request headers",
			url:  "/headers",
			cfg:  Config{UserAgent: "test-agent/1.0"},
			want: Result{
				FinalURL: "/headers", Status: 200, ContentType: "text/html", Bytes: -1,
				// No Accept-Encoding of our own, so the transport's gzip is on.
				Headings: []string{"test-agent/1.0", acceptHeader, "gzip"},
			},
		},
		{
			name: "default user agent",
			url:  "/headers",
			want: Result{
				FinalURL: "/headers", Status: 200, ContentType: "text/html", Bytes: -1,
				Headings: []string{DefaultUserAgent(), acceptHeader, "gzip"},
			},
		},
		{
			name:    "not found, page still extracted",
			url:     "/missing",
			want:    Result{FinalURL: "/missing", Status: 404, ContentType: "text/html", Title: "Nothing here", Links: []string{"/"}, Bytes: 47, Error: &Error{Kind: KindHTTPStatus}},
			wantMsg: "404 Not Found",
		},
		{
			name:    "server error",
			url:     "/fail",
			want:    Result{FinalURL: "/fail", Status: 500, ContentType: "text/plain; charset=utf-8", Bytes: 5, Error: &Error{Kind: KindHTTPStatus}},
			wantMsg: "500 Internal Server Error",
		},
		{
			name: "redirect chain",
			url:  "/redirect/3",
			cfg:  Config{MaxRedirects: 3},
			want: Result{FinalURL: "/redirect/0", Status: 200, ContentType: "text/html", Title: "Example Domain", Description: "An example page for tests.", Bytes: int64(len(okPage))},
		},
		{
			name:    "redirect chain over the limit",
			url:     "/redirect/3",
			cfg:     Config{MaxRedirects: 2},
			want:    Result{FinalURL: "/redirect/1", Status: 302, ContentType: "text/html; charset=utf-8", Error: &Error{Kind: KindTooManyRedirects}},
			wantMsg: "stopped after 2 redirects",
		},
		{
			name:    "redirect loop",
			url:     "/loop/a",
			want:    Result{FinalURL: "/loop/a", Status: 302, ContentType: "text/html; charset=utf-8", Error: &Error{Kind: KindTooManyRedirects}},
			wantMsg: "stopped after 10 redirects",
		},
		{
			name:    "redirects not followed",
			url:     "/redirect/1",
			cfg:     Config{MaxRedirects: -1},
			want:    Result{FinalURL: "/redirect/1", Status: 302, ContentType: "text/html; charset=utf-8", Bytes: -1, Error: &Error{Kind: KindHTTPStatus}},
			wantMsg: "302 Found",
		},
		{
			name:    "redirect to ftp",
			url:     "/to-ftp",
			want:    Result{FinalURL: "/to-ftp", Status: 302, ContentType: "text/html; charset=utf-8", Error: &Error{Kind: KindFetch}},
			wantMsg: `unsupported scheme "ftp"`,
		},
		{
			name:    "no response headers",
			url:     "/hang",
			cfg:     Config{Timeout: shortTimeout},
			want:    Result{Error: &Error{Kind: KindTimeout}},
			wantMsg: "timed out after 200ms",
		},
		{
			name:    "body hangs",
			url:     "/hang-body",
			cfg:     Config{Timeout: shortTimeout},
			want:    Result{FinalURL: "/hang-body", Status: 200, ContentType: "text/html", Bytes: 30, Error: &Error{Kind: KindTimeout}},
			wantMsg: "reading body",
		},
		{
			name:    "endless body",
			url:     "/endless",
			cfg:     Config{MaxBody: 64 << 10},
			want:    Result{FinalURL: "/endless", Status: 200, ContentType: "text/html", Bytes: 64<<10 + 1, Error: &Error{Kind: KindTooLarge}},
			wantMsg: "body exceeds 65536 bytes",
		},
		{
			name: "body exactly at the cap",
			url:  "/exact",
			cfg:  Config{MaxBody: 64 << 10},
			want: Result{FinalURL: "/exact", Status: 200, ContentType: "text/html", Title: "Exact", Bytes: 64 << 10},
		},
		{
			name:    "gzip bomb",
			url:     "/gzip-bomb",
			want:    Result{FinalURL: "/gzip-bomb", Status: 200, ContentType: "text/html", Bytes: DefaultMaxBody + 1, Error: &Error{Kind: KindTooLarge}},
			wantMsg: "body exceeds 10485760 bytes",
		},
		{
			name:    "broken gzip",
			url:     "/broken-gzip",
			want:    Result{FinalURL: "/broken-gzip", Status: 200, ContentType: "text/html", Error: &Error{Kind: KindBadBody}},
			wantMsg: "gzip",
		},
		{
			name:    "connection cut mid-body",
			url:     "/cut",
			want:    Result{FinalURL: "/cut", Status: 200, ContentType: "text/html", Bytes: 10, Error: &Error{Kind: KindBadBody}},
			wantMsg: "body cut short",
		},
		{
			name: "connection closed before response",
			url:  "/no-response",
			want: Result{Error: &Error{Kind: KindConnect}},
			// "closed before response", or "reset" if the close races
			// the request.
			wantMsg: "connection",
		},
		{
			// A parse limit is the page's own doing, not a bad body: what
			// the scan read is kept, with an error of its own kind.
			name: "too deep for the tree",
			url:  "/deep",
			cfg:  Config{Text: true},
			want: Result{
				FinalURL: "/deep", Status: 200, ContentType: "text/html", Bytes: int64(len(deepPage)),
				Title: "Deep", Description: "Nested too far", Headings: []string{"Top", "After"}, Links: []string{"/a", "/b"},
				Error: &Error{Kind: KindParseLimit},
			},
			wantMsg: "open stack of elements exceeds 512 nodes",
		},
		{
			name: "too deep, declined by the scan",
			url:  "/deep-table",
			want: Result{
				FinalURL: "/deep-table", Status: 200, ContentType: "text/html", Bytes: int64(len(deepTablePage)),
				Title: "Deep", Description: "Nested too far", Headings: []string{"Top"}, Links: []string{"/a"},
				Error: &Error{Kind: KindParseLimit},
			},
			wantMsg: "512",
		},
		{
			name: "too deep and not found",
			url:  "/deep-missing",
			cfg:  Config{Text: true},
			want: Result{
				FinalURL: "/deep-missing", Status: 404, ContentType: "text/html", Bytes: int64(len(deepPage)),
				Title: "Deep", Description: "Nested too far", Headings: []string{"Top", "After"}, Links: []string{"/a", "/b"},
				Error: &Error{Kind: KindHTTPStatus},
			},
			wantMsg: "404 Not Found",
		},
		{
			name:    "pdf",
			url:     "/doc.pdf",
			want:    Result{FinalURL: "/doc.pdf", Status: 200, ContentType: "application/pdf", Bytes: 15, Error: &Error{Kind: KindNotHTML}},
			wantMsg: "application/pdf",
		},
		{
			name:    "json",
			url:     "/data.json",
			want:    Result{FinalURL: "/data.json", Status: 200, ContentType: "application/json", Bytes: 20, Error: &Error{Kind: KindNotHTML}},
			wantMsg: "application/json",
		},
		{
			name:    "pdf without content type",
			url:     "/sniff-pdf",
			want:    Result{FinalURL: "/sniff-pdf", Status: 200, Bytes: 15, Error: &Error{Kind: KindNotHTML}},
			wantMsg: "application/pdf",
		},
		{
			name: "html without content type",
			url:  "/sniff-html",
			want: Result{FinalURL: "/sniff-html", Status: 200, Title: "Sniffed", Bytes: 37},
		},
		{
			name: "xhtml",
			url:  "/xhtml",
			want: Result{FinalURL: "/xhtml", Status: 200, ContentType: "application/xhtml+xml", Title: "XHTML", Bytes: 83},
		},
		{
			name: "windows-1252 by header",
			url:  "/windows-1252",
			want: Result{
				FinalURL: "/windows-1252", Status: 200, ContentType: "text/html; charset=windows-1252",
				Title: "Café — crème brûlée", Description: "“Quoted” naïve résumé", Bytes: 225,
			},
		},
		{
			name: "koi8-r by header only",
			url:  "/koi8-r",
			want: Result{FinalURL: "/koi8-r", Status: 200, ContentType: "text/html; charset=koi8-r", Title: "Привет, мир", Bytes: 26},
		},
		{
			name:    "invalid URL",
			url:     "ftp://example.com/",
			want:    Result{Error: &Error{Kind: KindInvalidURL}},
			wantMsg: `"ftp://example.com/": scheme must be http or https`,
		},
		{
			name:    "unreachable port",
			url:     "http://" + testsite.ClosedPort(t) + "/",
			want:    Result{Error: &Error{Kind: KindConnect}},
			wantMsg: "connection refused",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rawURL := tt.url
			if strings.HasPrefix(strings.TrimSpace(rawURL), "/") {
				rawURL = strings.Replace(rawURL, "/", srv.URL+"/", 1)
			}
			f := NewFetcher(tt.cfg)
			t.Cleanup(f.Close)

			before := time.Now()
			// Every outcome, failures included, gives the caller's fetch
			// slot back, and only once.
			released := 0
			// Listed: the test's server is on loopback, and the test plays
			// the input that names it (guard_test.go covers the guard).
			got := f.FetchReleasing(Listed(t.Context()), rawURL, func() { released++ })
			if released != 1 {
				t.Errorf("release called %d times, want once", released)
			}

			want := tt.want
			want.URL = rawURL
			if strings.HasPrefix(want.FinalURL, "/") {
				want.FinalURL = srv.URL + want.FinalURL
			}
			want.Links = slices.Clone(want.Links)
			for i, l := range want.Links {
				if strings.HasPrefix(l, "/") {
					want.Links[i] = srv.URL + l
				}
			}
			checkResult(t, before, got, want, tt.wantMsg)
			if tt.cfg.Timeout > 0 && got.DurationMS > (tt.cfg.Timeout+time.Second).Milliseconds() {
				t.Errorf("took %dms with a %s timeout", got.DurationMS, tt.cfg.Timeout)
			}
		})
	}
}

// checkResult compares got with want on every field Fetch sets, except that
// the error is compared on kind and wantMsg as a substring of its message;
// Headings, Links and SHA256 only when want has some; and Bytes not when
// want has -1.
// FetchedAt and DurationMS must be plausible for a fetch started at before.
func checkResult(t *testing.T, before time.Time, got, want Result, wantMsg string) {
	t.Helper()
	if got.Error == nil && want.Error != nil {
		t.Fatalf("no error, want %s", want.Error.Kind)
	}
	if got.Error != nil {
		if want.Error == nil {
			t.Fatalf("error %v, want none", got.Error)
		}
		if got.Error.Kind != want.Error.Kind || !strings.Contains(got.Error.Message, wantMsg) {
			t.Errorf("error %v, want kind %s with message containing %q", got.Error, want.Error.Kind, wantMsg)
		}
	}
	if want.Links == nil {
		want.Links = got.Links
	}
	if want.Headings == nil {
		want.Headings = got.Headings
	}
	if want.Bytes == -1 {
		want.Bytes = got.Bytes
	}
	if want.SHA256 == "" {
		want.SHA256 = got.SHA256 // since_test.go checks the sum
	}
	if got.FetchedAt.Location() != time.UTC ||
		got.FetchedAt.Before(before.Add(-time.Millisecond)) || got.FetchedAt.After(time.Now()) {
		t.Errorf("FetchedAt %v, want the UTC start time (after %v)", got.FetchedAt, before)
	}
	if most := time.Since(before).Milliseconds(); got.DurationMS < 0 || got.DurationMS > most {
		t.Errorf("DurationMS %d, want 0..%d", got.DurationMS, most)
	}
	// Zero what was checked above so the rest compares as a whole.
	got.Error, want.Error = nil, nil
	got.FetchedAt, got.DurationMS = time.Time{}, 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func TestFetchTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	// The server logs the failed handshake; that belongs with this test.
	srv.Config.ErrorLog = log.New(testLogWriter{t}, "server: ", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f := NewFetcher(Config{})
	t.Cleanup(f.Close)

	got := f.Fetch(Listed(t.Context()), srv.URL)
	if got.Error == nil || got.Error.Kind != KindTLS {
		t.Fatalf("error %v, want kind %s for a self-signed certificate", got.Error, KindTLS)
	}
	if !strings.Contains(got.Error.Message, "certificate") {
		t.Errorf("message %q does not say what was wrong", got.Error.Message)
	}
}

// TestFetchDNS relies on .invalid never resolving (RFC 6761). A resolver that
// cannot be reached makes the lookup time out instead of fail, which is also
// an acceptable answer; the short timeout keeps the test quick either way.
func TestFetchDNS(t *testing.T) {
	f := NewFetcher(Config{Timeout: 2 * time.Second})
	t.Cleanup(f.Close)

	got := f.Fetch(t.Context(), "http://nx.invalid/")
	switch {
	case got.Error == nil:
		t.Fatal("no error for a host under .invalid")
	case got.Error.Kind == KindDNS:
		if want := `no such host "nx.invalid"`; got.Error.Message != want {
			t.Logf("message %q, want %q unless the resolver misbehaves", got.Error.Message, want)
		}
	case got.Error.Kind == KindTimeout:
		t.Logf("resolver timed out: %v", got.Error)
	default:
		t.Errorf("error %v, want kind %s (or %s)", got.Error, KindDNS, KindTimeout)
	}
}

func TestFetchCanceled(t *testing.T) {
	srv := newSite(t)
	f := NewFetcher(Config{})
	t.Cleanup(f.Close)
	ctx, cancel := context.WithCancel(Listed(t.Context()))
	time.AfterFunc(50*time.Millisecond, cancel)

	got := f.Fetch(ctx, srv.URL+"/hang")
	if got.Error == nil || got.Error.Kind != KindFetch || got.Error.Message != "canceled" {
		t.Errorf("error %v, want fetch: canceled", got.Error)
	}
}

func TestFetchConcurrent(t *testing.T) {
	srv := newSite(t)
	f := NewFetcher(Config{Parallelism: 4})
	t.Cleanup(f.Close)

	var wg sync.WaitGroup
	for i := range 32 {
		path := []string{"/ok", "/missing", "/windows-1252", "/doc.pdf"}[i%4]
		wg.Go(func() {
			got := f.Fetch(Listed(t.Context()), srv.URL+path)
			if got.Status == 0 || got.Bytes == 0 {
				t.Errorf("%s: %+v", path, got)
			}
		})
	}
	wg.Wait()
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		raw     string
		want    string // the parsed URL, or the error message
		wantErr bool
	}{
		{raw: "https://example.com/a?b#c", want: "https://example.com/a?b#c"},
		{raw: "  http://example.com  ", want: "http://example.com"},
		{raw: "HTTP://Example.com:8080/", want: "http://Example.com:8080/"},
		{raw: "http://[::1]:80/", want: "http://[::1]:80/"},
		{raw: "", want: "empty URL", wantErr: true},
		{raw: "ftp://x", want: `"ftp://x": scheme must be http or https`, wantErr: true},
		{raw: "example.com/page", want: `"example.com/page": missing scheme, want http:// or https://`, wantErr: true},
		{raw: "/relative", want: `"/relative": missing scheme, want http:// or https://`, wantErr: true},
		{raw: "http://", want: `"http://": missing host`, wantErr: true},
		{raw: "http:example.com", want: `"http:example.com": missing host`, wantErr: true},
		{raw: "http://:80/", want: `"http://:80/": missing host`, wantErr: true},
		{raw: "http://x:99999/", want: `"http://x:99999/": invalid port "99999"`, wantErr: true},
		{raw: "http://a b/", want: `"http://a b/": invalid character " " in host name`, wantErr: true},
		{raw: "http://example.com/ see this page", want: `"http://example.com/ see this page": a URL has no spaces (words after the URL?); write a space in a path as %20`, wantErr: true},
		{raw: "http://example.com/my file.html", want: `"http://example.com/my file.html": a URL has no spaces (words after the URL?); write a space in a path as %20`, wantErr: true},
		{raw: "http://example.com/my%20file.html", want: "http://example.com/my%20file.html"},
		{raw: "http://x/\x7f", want: `"http://x/\x7f": net/url: invalid control character in URL`, wantErr: true},
	}
	for _, tt := range tests {
		u, err := ParseURL(tt.raw)
		switch {
		case tt.wantErr && err == nil:
			t.Errorf("ParseURL(%q) = %s, want error %q", tt.raw, u, tt.want)
		case tt.wantErr && err.Error() != tt.want:
			t.Errorf("ParseURL(%q) error %q, want %q", tt.raw, err, tt.want)
		case !tt.wantErr && err != nil:
			t.Errorf("ParseURL(%q) error %v", tt.raw, err)
		case !tt.wantErr && u.String() != tt.want:
			t.Errorf("ParseURL(%q) = %s, want %s", tt.raw, u, tt.want)
		}
	}
}

func TestDefaultUserAgent(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "9.9.9"
	if got, want := DefaultUserAgent(), "scrape/9.9.9 (+https://github.com/scrape-cluster/scrape)"; got != want {
		t.Errorf("DefaultUserAgent() = %q, want %q", got, want)
	}
}

func BenchmarkFetch(b *testing.B) {
	page := readFixture(b, "bench.html")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	}))
	b.Cleanup(srv.Close)
	f := NewFetcher(Config{Parallelism: 64})
	b.Cleanup(f.Close)

	b.ReportAllocs()
	b.SetBytes(int64(len(page)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res := f.Fetch(Listed(context.Background()), srv.URL+"/article"); res.Error != nil || len(res.Links) != 20 {
				b.Errorf("error %v, %d links", res.Error, len(res.Links))
				return
			}
		}
	})
}

// TestFetchSelect runs --select and --text through Fetch: URL values resolve
// against the final URL after redirects, and only HTML pages are extracted.
func TestFetchSelect(t *testing.T) {
	page := readFixture(t, "select.html")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /shop/lamp.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.HandleFunc("GET /old-lamp", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/shop/lamp.html", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /missing", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`<h1 class="name">Gone</h1>`))
	})
	mux.HandleFunc("GET /lamp.pdf", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		w.Write([]byte(`<h1 class="name">not html</h1>`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	cfg := Config{Select: mustSelectors(t, "name=h1.name", "thumbs=img.thumb@src", "next=a[rel=next]@href", "none=.none"), Text: true}
	f := NewFetcher(cfg)
	t.Cleanup(f.Close)

	for _, path := range []string{"/shop/lamp.html", "/old-lamp"} {
		got := f.Fetch(Listed(t.Context()), srv.URL+path)
		if got.Error != nil {
			t.Fatalf("%s: %v", path, got.Error)
		}
		want := map[string][]string{
			"name":   {"Desk lamp"},
			"thumbs": {srv.URL + "/img/t1.jpg", "http://cdn.example.net/t2.jpg"}, // scheme-relative
			"next":   {srv.URL + "/shop/lamp.html?page=2"},
			"none":   {},
		}
		if !reflect.DeepEqual(got.Fields, want) {
			t.Errorf("%s: fields\n got %q\nwant %q", path, got.Fields, want)
		}
		if !strings.HasPrefix(got.Text, "Desk lamp € 19.90 light desk office Next Mail Reviews Buy Great lamp really") ||
			strings.Contains(got.Text, "Product") || strings.Contains(got.Text, "Shop") {
			t.Errorf("%s: text %q, want the body's visible text", path, got.Text)
		}
	}

	// An HTML error page is extracted like its title; a PDF is not.
	if got := f.Fetch(Listed(t.Context()), srv.URL+"/missing"); got.Error == nil || got.Error.Kind != KindHTTPStatus ||
		!reflect.DeepEqual(got.Fields["name"], []string{"Gone"}) || got.Text != "Gone" {
		t.Errorf("404 page: error %v, fields %q, text %q", got.Error, got.Fields, got.Text)
	}
	if got := f.Fetch(Listed(t.Context()), srv.URL+"/lamp.pdf"); got.Error == nil || got.Error.Kind != KindNotHTML || got.Fields != nil || got.Text != "" {
		t.Errorf("pdf: error %v, fields %q, text %q; want not_html without fields or text", got.Error, got.Fields, got.Text)
	}

	// Without the options, records have neither.
	plain := NewFetcher(Config{})
	t.Cleanup(plain.Close)
	if got := plain.Fetch(Listed(t.Context()), srv.URL+"/shop/lamp.html"); got.Fields != nil || got.Text != "" {
		t.Errorf("without options: fields %q, text %q", got.Fields, got.Text)
	}
}

// TestFetchBadSelect: a Config whose selectors do not compile (one that did
// not come from ParseSelector) fails every fetch, before any request, rather
// than writing records without the fields the run asked for.
func TestFetchBadSelect(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	t.Cleanup(srv.Close)
	f := NewFetcher(Config{Select: []Selector{{Name: "x", CSS: "[["}}})
	t.Cleanup(f.Close)

	got := f.Fetch(Listed(t.Context()), srv.URL)
	if got.Error == nil || got.Error.Kind != KindFetch || !strings.Contains(got.Error.Message, `selector "x=[[": invalid CSS selector`) {
		t.Errorf("error %v, want kind %s naming the selector", got.Error, KindFetch)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests made", n)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Fri, 02 Jan 2026 03:04:35 GMT": 30 * time.Second,
		"Fri, 02 Jan 2026 03:00:00 GMT": 0,
	}
	for in, want := range tests {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}
