package testsite

import (
	"net/http"
	"sync"
	"time"
)

// Recorder wraps a site and records what politeness is about: per Host
// header, the most requests in flight at once and when each began; and
// across all hosts, the most in flight at once. It can also serve a
// robots.txt.
type Recorder struct {
	Handler http.Handler
	// Robots, when set, is served at /robots.txt (not recorded).
	Robots string

	mu          sync.Mutex
	inflight    map[string]int
	maxInflight map[string]int
	starts      map[string][]time.Time
	total       int
	maxTotal    int
	paths       map[string]int
}

func (r *Recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/robots.txt" && r.Robots != "" {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(r.Robots))
		return
	}
	r.mu.Lock()
	if r.inflight == nil {
		r.inflight, r.maxInflight = map[string]int{}, map[string]int{}
		r.starts, r.paths = map[string][]time.Time{}, map[string]int{}
	}
	host := req.Host
	r.inflight[host]++
	r.maxInflight[host] = max(r.maxInflight[host], r.inflight[host])
	r.starts[host] = append(r.starts[host], time.Now())
	r.total++
	r.maxTotal = max(r.maxTotal, r.total)
	r.paths[req.URL.Path]++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inflight[host]--
		r.total--
		r.mu.Unlock()
	}()
	r.Handler.ServeHTTP(w, req)
}

// MaxInFlight is the most requests that were in flight to host at once.
func (r *Recorder) MaxInFlight(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxInflight[host]
}

// MaxTotal is the most requests that were in flight at once, all hosts.
func (r *Recorder) MaxTotal() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxTotal
}

// Starts are the arrival times of requests to host, in order.
func (r *Recorder) Starts(host string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.starts[host]...)
}

// Requests is how many requests path had.
func (r *Recorder) Requests(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.paths[path]
}

// Hosts are the Host headers seen.
func (r *Recorder) Hosts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var hs []string
	for h := range r.starts {
		hs = append(hs, h)
	}
	return hs
}
