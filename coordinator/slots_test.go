package coordinator

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/machinefile"
)

func TestNodeFetches(t *testing.T) {
	tests := []struct {
		name           string
		slots, perSlot int
		want           int
	}{
		{"one slot, the default", 1, DefaultPerSlot, DefaultPerSlot},
		{"MPICH node:2", 2, DefaultPerSlot, 2 * DefaultPerSlot},
		{"--per-slot 1: a slot is a page again", 5, 1, 5},
		{"--per-slot 3", 4, 3, 12},
		{"capped", machinefile.MaxSlots, DefaultPerSlot, MaxNodeFetches},
		{"capped exactly at the bound", MaxNodeFetches / 4, 4, MaxNodeFetches},
		{"one past the bound", MaxNodeFetches/4 + 1, 4, MaxNodeFetches},
		{"the largest counts do not overflow", machinefile.MaxSlots, MaxPerSlot, MaxNodeFetches},
		{"no slots", 0, DefaultPerSlot, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nodeFetches(tt.slots, tt.perSlot); got != tt.want {
				t.Errorf("nodeFetches(%d, %d) = %d, want %d", tt.slots, tt.perSlot, got, tt.want)
			}
		})
	}
}

// The machinefile's counts, --per-slot and the no-machinefile default come
// out as each node's bootstrap count, the cluster's total and the window.
func TestConfigSizesFetches(t *testing.T) {
	seed := []machinefile.Host{{Name: "hypatia", Slots: 2, Line: 1}, {Name: "10.0.0.195", Slots: 3, Line: 2}}
	cpus := runtime.NumCPU()
	tests := []struct {
		name        string
		hosts       []machinefile.Host
		perSlot     int
		wantNodes   []int // each host's pages at a time, in order
		wantCluster int
		wantWindow  int
	}{
		{"the seed's machinefile, by default", seed, 0, []int{32, 48}, 80, 320},
		{"--per-slot 1", seed, 1, []int{2, 3}, 5, 64},
		{"--per-slot 4", seed, 4, []int{8, 12}, 20, 80},
		{"no -f: one slot per CPU", nil, 0, []int{cpus * DefaultPerSlot}, cpus * DefaultPerSlot, max(64, 4*cpus*DefaultPerSlot)},
		{"no -f with --per-slot 8", nil, 8, []int{cpus * 8}, cpus * 8, max(64, 4*cpus*8)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Hosts: tt.hosts, PerSlot: tt.perSlot, Input: strings.NewReader(""), LocalBin: "scrape"}
			if err := c.setDefaults(); err != nil {
				t.Fatal(err)
			}
			var nodes []int
			for _, h := range c.Hosts {
				nodes = append(nodes, c.fetches(h))
			}
			if fmt.Sprint(nodes) != fmt.Sprint(tt.wantNodes) {
				t.Errorf("pages at a time per node: %v, want %v", nodes, tt.wantNodes)
			}
			if got := c.clusterFetches(); got != tt.wantCluster {
				t.Errorf("cluster: %d pages at a time, want %d", got, tt.wantCluster)
			}
			if c.Window != tt.wantWindow {
				t.Errorf("window %d, want %d", c.Window, tt.wantWindow)
			}
		})
	}
}

func TestConfigRefusesPerSlotPastBound(t *testing.T) {
	c := Config{PerSlot: MaxPerSlot + 1, Input: strings.NewReader(""), LocalBin: "scrape"}
	if err := c.setDefaults(); err == nil || !strings.Contains(err.Error(), "per slot") {
		t.Fatalf("setDefaults with PerSlot %d: %v, want an error about pages per slot", c.PerSlot, err)
	}
}

// gauge counts the requests in flight across several servers.
type gauge struct {
	mu        sync.Mutex
	now, peak int
}

func (g *gauge) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.now++
		g.peak = max(g.peak, g.now)
		g.mu.Unlock()
		defer func() {
			g.mu.Lock()
			g.now--
			g.mu.Unlock()
		}()
		next.ServeHTTP(w, r)
	})
}

func (g *gauge) Peak() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.peak
}

// A run with the default sizing really has its slots times DefaultPerSlot
// pages in flight at slow sites spread over many hosts, and still no more
// than --per-host at any one of them.
func TestRunDefaultPagesInFlight(t *testing.T) {
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(150 * time.Millisecond)
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<title>slow</title>")
	})
	tests := []struct {
		name    string
		hosts   int
		slots   []int // nil: no machinefile, one slot per CPU
		perSlot int
		want    int // peak across the hosts
	}{
		// 6 hosts take 48 at once at the default --per-host.
		{"one slot", 6, []int{1}, 0, DefaultPerSlot},
		{"two nodes of one slot", 6, []int{1, 1}, 0, 2 * DefaultPerSlot},
		{"--per-slot 3 on a node of 2 slots", 6, []int{2}, 3, 6},
		{"no machinefile", 6, nil, 0, min(runtime.NumCPU()*DefaultPerSlot, 6*DefaultPerHost)},
		// The per-host limit caps a node that could fetch more.
		{"one host", 1, []int{2}, 0, DefaultPerHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &gauge{}
			h := newHarness(t, tt.slots...)
			if tt.slots == nil {
				h.cfg.Hosts = nil
			}
			h.cfg.PerSlot = tt.perSlot
			var sites []*site
			var lines []string
			// Enough pages for three rounds of the peak, spread over the
			// hosts line by line as a list of many sites would be.
			perHost := 3*tt.want/tt.hosts + 1
			var urls []string
			for range tt.hosts {
				web, srv := serve(t, g.wrap(slow))
				sites = append(sites, web)
				urls = append(urls, srv.URL)
			}
			for i := range perHost {
				for _, u := range urls {
					lines = append(lines, fmt.Sprintf("%s/%d", u, i))
				}
			}
			sum, err := h.run(lines)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if sum.OK != len(lines) {
				t.Errorf("%d pages ok, want %d", sum.OK, len(lines))
			}
			if p := g.Peak(); p != tt.want {
				t.Errorf("%d requests at once across the hosts, want %d", p, tt.want)
			}
			for i, web := range sites {
				if p := web.Peak(); p > DefaultPerHost {
					t.Errorf("host %d saw %d requests at once, more than --per-host %d", i, p, DefaultPerHost)
				}
			}
		})
	}
}
