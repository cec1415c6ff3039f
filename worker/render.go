package worker

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/render"
	"github.com/scrape-cluster/scrape/scrape"
)

// A worker of a run with --render that can render pulls the run's render
// tasks too, from their own consumer, with its own slots: the tabs of one
// browser. One that cannot (no Chromium, or render=no) never asks for them,
// and its hello says so, which the coordinator counts.

// renderer is the worker's browser and what pulls its tasks.
type renderer struct {
	r     *render.Renderer
	cons  jetstream.Consumer
	slots int
}

// Memory a render slot is given when --render-slots is not set. Measured
// on the test site (BenchmarkRender, README): the browser with one tab took
// about 390 MB (PSS of its process group), each further tab 110 to 130 MB
// at its peak. Real pages take more than a test page, so a slot is counted
// at twice that, and the browser at 512 MiB. Half the node's available
// memory goes to rendering, at most two slots per CPU.
const (
	renderSlotMemory = 256 << 20
	browserMemory    = 512 << 20
)

// renderMemoryFor is the memory a browser of slots tabs may take before it
// is retired for a fresh one (render.Config.MemoryLimit): the budget above,
// and half again, since a page may well take more than the test page's
// twice; a browser past it has grown by more than its pages' worth.
func renderMemoryFor(slots int) int64 {
	return (browserMemory + int64(slots)*renderSlotMemory) * 3 / 2
}

// renderMemory is the browser's memory limit: the worker's own
// --render-memory, else the run's, else renderMemoryFor(slots).
func renderMemory(worker, run int64, slots int) int64 {
	switch {
	case worker > 0:
		return worker
	case run > 0:
		return run
	}
	return renderMemoryFor(slots)
}

// DefaultRenderSlots sizes rendering by the node's available memory (half
// of it, renderSlotMemory a slot after browserMemory), from 1 to two per
// CPU. A node whose memory cannot be read gets one slot per CPU.
func DefaultRenderSlots() int {
	avail, ok := memAvailable()
	if !ok {
		return runtime.NumCPU()
	}
	return renderSlotsFor(avail, runtime.NumCPU())
}

func renderSlotsFor(avail uint64, cpus int) int {
	n := (int64(avail)/2 - browserMemory) / renderSlotMemory
	return int(max(1, min(n, int64(2*cpus))))
}

// memAvailable reads MemAvailable from /proc/meminfo (Linux).
func memAvailable() (uint64, bool) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// openRenderer starts the browser if the run renders and the node may: nil
// if not. A node the machinefile says render=yes of must have a browser; one
// it says nothing of renders if it finds one, and fetches plain pages
// either way. fetch is the node's fetch configuration (its proxy= in):
// the browser's pages make their requests with it.
func (w *Worker) openRenderer(ctx context.Context, js jetstream.JetStream, job queue.Job, fetch scrape.Config) (*renderer, error) {
	// Bootstrap.Render is the machinefile's render=, yes or no.
	if job.Fetch.Render == "" || job.Fetch.Render == scrape.RenderNever || w.cfg.Render == "no" {
		return nil, nil
	}
	must := w.cfg.Render == "yes" || w.cfg.Browser != ""
	path, err := render.Find(w.cfg.Browser)
	if err != nil {
		if must {
			return nil, fmt.Errorf("worker: render=yes: %w", err)
		}
		w.log.Info("not rendering pages", "why", err)
		return nil, nil
	}
	slots := w.cfg.RenderSlots
	if slots <= 0 {
		slots = job.RenderSlots
	}
	if slots <= 0 {
		slots = DefaultRenderSlots()
	}
	cons, err := js.Consumer(ctx, w.run.TaskStream(), queue.RenderConsumer)
	if err != nil {
		return nil, fmt.Errorf("worker: open render consumer: %w", err)
	}
	limit := renderMemory(w.cfg.RenderMemory, job.Fetch.RenderMemory, slots)
	r, err := render.Open(render.Config{Browser: path, Fetch: withParallelism(fetch, slots), MemoryLimit: limit, Logger: w.cfg.Logger.With("node", w.cfg.Node)})
	if err != nil {
		if must {
			return nil, fmt.Errorf("worker: %w", err)
		}
		w.log.Warn("not rendering pages: the browser does not start", "browser", path, "err", err)
		return nil, nil
	}
	w.renderSlots = slots
	w.log.Info("rendering pages", "browser", path, "pid", r.PID(), "render_slots", slots, "render_memory_mib", limit>>20)
	return &renderer{r: r, cons: cons, slots: slots}, nil
}

// puller is p's twin for render tasks: the render consumer, the render
// slots, the browser.
func (rd *renderer) puller(p *puller) *puller {
	q := *p
	q.cons, q.slots, q.render = rd.cons, rd.slots, true
	q.get = func(ctx context.Context, url string, release func()) scrape.Result {
		res := rd.r.Render(ctx, url)
		release()
		return res
	}
	return &q
}

// close stops the browser; nil does nothing.
func (rd *renderer) close() {
	if rd == nil {
		return
	}
	// Close kills the browser whatever it says: nothing to act on.
	_ = rd.r.Close()
}
