package scrape

import (
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// With Archive, a fetch keeps its final request and response, the body as
// served (decoded, at most MaxBody); without it, nothing.
func TestFetchExchange(t *testing.T) {
	page := "<!doctype html><title>T</title><p>" + strings.Repeat("text ", 400)
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("X-Test", "yes")
		w.Write([]byte(page))
	})
	mux.HandleFunc("/gz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		zw.Write([]byte(page))
		zw.Close()
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/page", http.StatusFound) })
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "gone away", http.StatusNotFound) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tests := []struct {
		name, path string
		cfg        Config
		wantBody   string
		truncated  bool
		wantReq    string // the request line
		wantStatus string
	}{
		{"off", "/page", Config{}, "", false, "", ""},
		{"page", "/page", Config{Archive: true, Headers: []Header{{"X-Mine", "1"}}}, page, false, "GET /page HTTP/1.1", "HTTP/1.1 200 OK"},
		{"gzip decoded", "/gz", Config{Archive: true}, page, false, "GET /gz HTTP/1.1", "HTTP/1.1 200 OK"},
		{"redirect: the final exchange", "/moved", Config{Archive: true}, page, false, "GET /page HTTP/1.1", "HTTP/1.1 200 OK"},
		{"error status", "/missing", Config{Archive: true}, "gone away\n", false, "GET /missing HTTP/1.1", "HTTP/1.1 404 Not Found"},
		{"max-body", "/page", Config{Archive: true, MaxBody: 100}, page[:100], true, "GET /page HTTP/1.1", "HTTP/1.1 200 OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFetcher(tt.cfg)
			defer f.Close()
			res := f.Fetch(Listed(t.Context()), srv.URL+tt.path)
			ex := res.Exchange
			if tt.wantReq == "" {
				if ex != nil {
					t.Fatalf("an exchange without Archive: %+.80v", *ex)
				}
				return
			}
			if ex == nil {
				t.Fatalf("no exchange; result %+v", res)
			}
			if ex.Body != tt.wantBody || ex.Truncated != tt.truncated {
				t.Errorf("body of %d bytes, truncated %v; want %d, %v", len(ex.Body), ex.Truncated, len(tt.wantBody), tt.truncated)
			}
			if !strings.HasPrefix(ex.Request, tt.wantReq+"\r\nHost: "+strings.TrimPrefix(srv.URL, "http://")+"\r\n") || !strings.HasSuffix(ex.Request, "\r\n\r\n") ||
				!strings.Contains(ex.Request, "User-Agent: ") || !strings.Contains(ex.Request, "Accept-Encoding: gzip\r\n") {
				t.Errorf("request head %q", ex.Request)
			}
			if len(tt.cfg.Headers) > 0 && !strings.Contains(ex.Request, "X-Mine: 1\r\n") {
				t.Errorf("request head lacks the run's header: %q", ex.Request)
			}
			if !strings.HasPrefix(ex.Response, tt.wantStatus+"\r\n") || !strings.HasSuffix(ex.Response, "\r\n\r\n") {
				t.Errorf("response head %q", ex.Response)
			}
			if tt.path == "/gz" && strings.Contains(ex.Response, "Content-Encoding") {
				t.Errorf("the decoded body's head still says it is encoded: %q", ex.Response)
			}
			if tt.path == "/page" && !strings.Contains(ex.Response, "X-Test: yes\r\n") {
				t.Errorf("response head lacks the site's header: %q", ex.Response)
			}
			if ex.IP != "127.0.0.1" {
				t.Errorf("IP %q, want 127.0.0.1", ex.IP)
			}
		})
	}
}
