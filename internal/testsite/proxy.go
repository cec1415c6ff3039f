package testsite

import (
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Proxy is a small forward HTTP proxy for tests: it passes on requests
// for absolute URLs and CONNECT tunnels, and counts them.
type Proxy struct {
	requests  atomic.Int64
	transport *http.Transport
}

// NewProxy returns a proxy that reaches its targets directly (never
// through the environment's proxy).
func NewProxy() *Proxy {
	return &Proxy{transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
}

// Requests is how many requests and tunnels the proxy has taken.
func (p *Proxy) Requests() int { return int(p.requests.Load()) }

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	if r.Method == http.MethodConnect {
		p.tunnel(w, r)
		return
	}
	if !r.URL.IsAbs() {
		http.Error(w, "a proxy takes absolute URLs", http.StatusBadRequest)
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Header.Del("Proxy-Connection")
	out.Header.Del("Proxy-Authorization")
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func (p *Proxy) tunnel(w http.ResponseWriter, r *http.Request) {
	target, err := net.DialTimeout("tcp", r.Host, 5*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		target.Close()
		http.Error(w, "no tunnels here", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
	client, _, err := hj.Hijack()
	if err != nil {
		target.Close()
		return
	}
	go func() {
		_, _ = io.Copy(target, client)
		target.Close()
	}()
	_, _ = io.Copy(client, target)
	client.Close()
}
