package render_test

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/render"
	"github.com/scrape-cluster/scrape/scrape"
)

// BenchmarkRender renders the test site's script-made page with 1, 2 and 4
// tabs at a time, and reports pages/s and the browser's memory: the PSS of
// its whole process group after one page (idle), at its peak while the
// pages load (sampled every 50 ms), and that peak less idle, per tab.
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
			idle := pss(r.PID())
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
						if m := pss(r.PID()); m > peak.Load() {
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

// pss is what the browser's process group takes (render.GroupMemory).
func pss(pgid int) int64 {
	n, _ := render.GroupMemory(pgid)
	return n
}
