package testsite

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// JSApp is a site whose content exists only once a browser runs its
// scripts. Each page /app/N has, over HTTP, an empty title, no link and no
// heading, and a <noscript> that asks for JavaScript; its script sets the
// title to "Widget N", fetch()es /api/N.json and adds a link per entry, and
// a little later fills the <h2> with the price. /plain/N is an ordinary page
// with its content in the HTML, which --render auto leaves to HTTP.
//
// The page also asks for an image, a font and, by script, a URL on
// Private: the counters say whether those requests arrived.
type JSApp struct {
	*httptest.Server
	// Pages counts requests for /app/ pages, API counts the JSON, Images
	// the image and font requests.
	Pages, API, Images atomic.Int64
	// Private is a second server on another loopback address (127.0.0.2),
	// which the page's script asks for: a browser that obeys the guard
	// never reaches it. PrivateHits counts what reached it.
	Private     *httptest.Server
	PrivateHits atomic.Int64
}

// JSTitle, JSPrice and JSLinks are what a rendered /app/N holds.
func JSTitle(n int) string { return fmt.Sprintf("Widget %d", n) }
func JSPrice(n int) string { return fmt.Sprintf("Price: $%d.99", n) }
func JSLinks(base string, n int) []string {
	return []string{fmt.Sprintf("%s/plain/%d", base, n), fmt.Sprintf("%s/plain/%d?more", base, n)}
}

// NewJSApp starts the site on 127.0.0.1 and its private neighbour.
func NewJSApp(tb testing.TB) *JSApp { tb.Helper(); return NewJSAppAt(tb, "127.0.0.1") }

// NewJSAppAt starts the site on host (an IP address of this machine, such
// as a test cluster's bridge address), and its neighbour on 127.0.0.2.
func NewJSAppAt(tb testing.TB, host string) *JSApp {
	tb.Helper()
	s := &JSApp{}
	s.Private = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.PrivateHits.Add(1)
		w.Header().Set("Access-Control-Allow-Origin", "*")
		fmt.Fprint(w, `{"secret":"internal"}`)
	}))
	if l, err := net.Listen("tcp", "127.0.0.2:0"); err == nil {
		s.Private.Listener = l
	}
	s.Private.Start()
	tb.Cleanup(s.Private.Close)

	mux := http.NewServeMux()
	mux.HandleFunc("/app/{n}", func(w http.ResponseWriter, r *http.Request) {
		s.Pages.Add(1)
		n := r.PathValue("n")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		api := "/api/" + n + ".json"
		if q := r.URL.RawQuery; q != "" {
			api += "?" + q // ?slow=MS slows the page's API call
		}
		fmt.Fprintf(w, jsAppPage, n, s.Private.URL, api)
	})
	mux.HandleFunc("/api/{file}", func(w http.ResponseWriter, r *http.Request) {
		s.API.Add(1)
		if ms, err := strconv.Atoi(r.URL.Query().Get("slow")); err == nil {
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-r.Context().Done():
			}
		}
		n := strings.TrimSuffix(r.PathValue("file"), ".json")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"title":"Widget %s","links":["/plain/%s","/plain/%s?more"],"price":"%s.99"}`, n, n, n, n)
	})
	mux.HandleFunc("/plain/{n}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><html><head><title>Plain %s</title></head><body><h1>Plain page %s</h1><p>%s</p><a href=\"/plain/0\">home</a></body></html>",
			r.PathValue("n"), r.PathValue("n"), strings.Repeat("Text that a plain fetch reads. ", 8))
	})
	mux.HandleFunc("/static/", func(w http.ResponseWriter, r *http.Request) {
		s.Images.Add(1)
		w.Header().Set("Content-Type", "image/gif")
		w.Write([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"))
	})
	s.Server = httptest.NewUnstartedServer(mux)
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		tb.Fatalf("serve the JS app on %s: %v", host, err)
	}
	s.Server.Listener = l
	s.Server.Start()
	tb.Cleanup(s.Server.Close)
	return s
}

// jsAppPage is /app/N: %[1]s is N, %[2]s the private server's URL, %[3]s
// its API's (/api/N.json, and the page's query: /app/N?slow=MS makes the
// API answer after MS milliseconds). The
// price comes 150 ms after the links, within the half second of network
// quiet that a render waits for.
const jsAppPage = `<!doctype html>
<html><head><meta charset="utf-8"><title></title>
<style>@font-face { font-family: W; src: url(/static/w.woff2); } body { font-family: W; }</style>
</head><body>
<noscript>This shop needs JavaScript: enable it to see the products.</noscript>
<div id="app"></div>
<img src="/static/logo.gif" alt="">
<script>
(async () => {
  document.title = "Widget %[1]s";
  fetch("%[2]s/secret").catch(() => {});
  const r = await fetch("%[3]s");
  const d = await r.json();
  const app = document.getElementById("app");
  const h1 = document.createElement("h1");
  h1.textContent = d.title;
  app.appendChild(h1);
  for (const href of d.links) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = href;
    app.appendChild(a);
  }
  setTimeout(() => {
    const h2 = document.createElement("h2");
    h2.id = "price";
    h2.textContent = "Price: $" + d.price;
    app.appendChild(h2);
  }, 150);
})();
</script>
</body></html>
`
