package render_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/scrape"
)

// BenchmarkRender renders the test site's script-made page with 1, 2 and 4
// tabs at a time, and reports pages/s and the browser's memory: the
// resident set of its whole process group, sampled while the pages load,
// at its peak, and that peak less the idle browser's, per tab.
//
//	go test ./render -run '^$' -bench Render -benchtime 40x
func BenchmarkRender(b *testing.B) {
	site := testsite.NewJSApp(b)
	for _, slots := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("slots=%d", slots), func(b *testing.B) {
			r := open(b, scrape.Config{Timeout: 30 * time.Second})
			ctx := scrape.Listed(b.Context())
			// Warm the browser: its first page pays for the renderer
			// process and the compiled caches.
			if res := r.Render(ctx, site.URL+"/app/0"); res.Error != nil {
				b.Fatal(res.Error)
			}
			idle := groupRSS(r.PID())
			var peak atomic.Int64
			stop := make(chan struct{})
			var sampler sync.WaitGroup
			sampler.Go(func() {
				t := time.NewTicker(50 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						if m := groupRSS(r.PID()); m > peak.Load() {
							peak.Store(m)
						}
					}
				}
			})
			var next atomic.Int64
			var failed atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range slots {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if res := r.Render(ctx, site.URL+"/app/"+strconv.FormatInt(i, 10)); res.Error != nil || res.Title == "" {
							failed.Add(1)
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			close(stop)
			sampler.Wait()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d pages failed", n, b.N)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pages/s")
			b.ReportMetric(float64(idle)/(1<<20), "idle-MB")
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-MB")
			b.ReportMetric(float64(peak.Load()-idle)/float64(slots)/(1<<20), "MB/slot")
		})
	}
}

// groupRSS is the resident memory of process group pgid, in bytes. Shared
// pages count once per process, so it overstates what the group takes.
func groupRSS(pgid int) int64 {
	var total int64
	for _, pid := range group(pgid) {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				total += kb << 10
			}
		}
	}
	return total
}
