package scrape

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/scrape-cluster/scrape/internal/testsite"
)

// TestFetchSince: a fetch given its page's earlier validators sends them,
// and a 304 is a record marked unchanged, without body or error; every
// page read whole gets the SHA-256 of its body and keeps its validators.
func TestFetchSince(t *testing.T) {
	site := testsite.New(10)
	srv := httptest.NewServer(site)
	t.Cleanup(srv.Close)
	t.Cleanup(site.Close)
	// The body's sum, as an independent client reads it.
	sumOf := func(path string) string {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		return hex.EncodeToString(sum[:])
	}
	const etag, modified = `"p1-v0"`, "Sun, 01 Nov 2026 12:00:00 GMT"
	tests := []struct {
		name           string
		path           string
		etag, modified string // the task's validators
		headers        []Header
		wantStatus     int
		wantUnchanged  bool
		wantKind       string
		// wantValidators: the record has the page's ETag, and its
		// Last-Modified unless the answer is a 304, which Go's server
		// sends without it when there is an ETag (RFC 9110 15.4.5).
		wantValidators bool
		wantSum        string // "page" or "empty": of what body the record has a sum
	}{
		{name: "no validators", path: "/fresh/1", wantStatus: 200, wantValidators: true, wantSum: "page"},
		{name: "its ETag", path: "/fresh/1", etag: etag, wantStatus: 304, wantUnchanged: true, wantValidators: true},
		{name: "its Last-Modified", path: "/fresh/1", modified: modified, wantStatus: 304, wantUnchanged: true, wantValidators: true},
		{name: "both", path: "/fresh/1", etag: etag, modified: modified, wantStatus: 304, wantUnchanged: true, wantValidators: true},
		{name: "another ETag", path: "/fresh/1", etag: `"p1-v9"`, wantStatus: 200, wantValidators: true, wantSum: "page"},
		{name: "a page without validators", path: "/bare/1", etag: etag, modified: modified, wantStatus: 200, wantSum: "page"},
		// A 304 the task did not ask for is no page: the run's own
		// headers are not the record's validators.
		{name: "a 304 not asked for", path: "/fresh/1", headers: []Header{{Name: "If-None-Match", Value: etag}},
			wantStatus: 304, wantKind: KindHTTPStatus, wantValidators: true, wantSum: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFetcher(Config{Timeout: shortTimeout * 10, Headers: tt.headers})
			t.Cleanup(f.Close)
			ctx := WithValidators(Listed(t.Context()), tt.etag, tt.modified)
			r := f.Fetch(ctx, srv.URL+tt.path)
			if r.Status != tt.wantStatus || r.Unchanged != tt.wantUnchanged {
				t.Errorf("status %d, unchanged %v; want %d, %v", r.Status, r.Unchanged, tt.wantStatus, tt.wantUnchanged)
			}
			if kind := errKind(r.Error); kind != tt.wantKind {
				t.Errorf("error %v, want kind %q", r.Error, tt.wantKind)
			}
			if tt.wantUnchanged && (r.Bytes != 0 || r.Title != "" || r.Links != nil) {
				t.Errorf("an unchanged page has %d bytes, title %q, links %q: want nothing", r.Bytes, r.Title, r.Links)
			}
			wantETag, wantModified := "", ""
			if tt.wantValidators {
				wantETag = etag
				if r.Status != 304 {
					wantModified = modified
				}
			}
			if r.ETag != wantETag || r.LastModified != wantModified {
				t.Errorf("validators %q, %q; want %q, %q", r.ETag, r.LastModified, wantETag, wantModified)
			}
			want := ""
			switch tt.wantSum {
			case "page":
				want = sumOf(tt.path)
			case "empty":
				sum := sha256.Sum256(nil)
				want = hex.EncodeToString(sum[:])
			}
			if r.SHA256 != want {
				t.Errorf("sha256 %q, want %q", r.SHA256, want)
			}
		})
	}
}

func errKind(e *Error) string {
	if e == nil {
		return ""
	}
	return e.Kind
}
