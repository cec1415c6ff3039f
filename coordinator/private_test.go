package coordinator

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/scrape-cluster/scrape/scrape"
)

// A crawl that starts on one loopback address and is led, by a link and by a
// redirect, to a server on another that the input does not list: that
// server hears nothing, and the records say blocked_address, naming it;
// unless --allow-private lets the crawl there. The seed's own host, listed,
// is fetched as ever.
func TestRunCrawlStaysOffPrivateAddresses(t *testing.T) {
	for _, tt := range []struct {
		name    string
		allow   bool
		blocked bool
	}{
		{"by default", false, true},
		{"with --allow-private", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.2:0")
			if err != nil {
				t.Skipf("no second loopback address here: %v", err)
			}
			secret, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "<title>the secret</title>")
			}))
			inner := httptest.NewUnstartedServer(secret)
			inner.Listener.Close()
			inner.Listener = l
			inner.Start()
			t.Cleanup(inner.Close)

			seed, srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/":
					w.Header().Set("Content-Type", "text/html")
					fmt.Fprintf(w, `<title>seed</title><a href="%s/linked">x</a><a href="/away">y</a>`, inner.URL)
				case "/away":
					http.Redirect(w, r, inner.URL+"/redirected", http.StatusFound)
				default:
					http.NotFound(w, r)
				}
			}))
			h := newHarness(t, 2)
			h.cfg.Depth = 1
			h.cfg.Fetch.AllowPrivateAll = tt.allow
			if _, err := h.run([]string{srv.URL + "/"}); err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := byURL(t, h.records())
			if r := got[srv.URL+"/"]; r.Error != nil || r.Title != "seed" || seed.Hits("/") != 1 {
				t.Errorf("the listed seed: %+v, %d hits", r, seed.Hits("/"))
			}
			for _, u := range []string{inner.URL + "/linked", srv.URL + "/away"} {
				r, ok := got[u]
				switch {
				case !ok:
					t.Errorf("%s has no record", u)
				case tt.blocked && (r.Error == nil || r.Error.Kind != scrape.KindBlockedAddress):
					t.Errorf("%s: %+v, want blocked_address", u, r)
				case tt.blocked && !strings.Contains(r.Error.Message, l.Addr().String()):
					t.Errorf("%s: %q does not name the refused address %s", u, r.Error.Message, l.Addr())
				case !tt.blocked && (r.Error != nil || r.Title != "the secret"):
					t.Errorf("%s: %+v, want the page fetched", u, r)
				}
			}
			hits := secret.Hits("/linked") + secret.Hits("/redirected") + secret.Hits("/robots.txt")
			if tt.blocked && hits != 0 {
				t.Errorf("the unlisted server had %d requests", hits)
			}
			if !tt.blocked && secret.Hits("/linked")+secret.Hits("/redirected") != 2 {
				t.Errorf("allowed, the other server had %d page requests, want 2", hits)
			}
		})
	}
}
