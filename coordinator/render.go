package coordinator

import (
	"fmt"
	"io"
	"time"

	"github.com/scrape-cluster/scrape/machinefile"
	"github.com/scrape-cluster/scrape/scrape"
)

// What a run does when no node can render (--render always or auto).
//
// Whether a worker renders is known from its hello (its render slots), so
// it is known only once the worker is up. fleet.watch counts the live
// workers that render, launched and joined, and the launches still under
// way on nodes the machinefile lets render, and hands that to a
// renderWatch, which decides:
//
//   - always: every task is a render task. Without --wait-workers a run
//     whose launches are over and whose workers cannot render fails at
//     once (ErrNoRenderer). With it, the run waits that long for a worker
//     that renders to join, and then fails the same way.
//   - auto: a page goes to a browser only when its HTTP fetch says it needs
//     one, so a run without a browser loses only those pages' rendering,
//     not the run. The frontier is told no node can render
//     (frontier.renderable): the render tasks already released are taken
//     back and fetched over HTTP again, since the plain result they came
//     from was not kept, and a page that needs a browser keeps its plain
//     record, marked by its needs_render. A worker that renders joining
//     later turns rendering on again, for the pages answered after that.
//     auto never waits for a renderer, with --wait-workers or without: its
//     render tasks never wait for nobody.

// renderWatch is watch's account of the workers that render.
type renderWatch struct {
	mode string
	wait time.Duration // --wait-workers
	hint string        // how to join the run by hand
	out  io.Writer

	starting int // launches not over on nodes that may render
	live     int // workers up whose hello offered render slots

	can     bool             // auto: what the frontier was last told
	told    bool             // auto: the frontier was told at all
	waiting <-chan time.Time // always with --wait-workers: the wait for a renderer
}

func newRenderWatch(c *Coordinator, nodes []*node, hint string) *renderWatch {
	rw := &renderWatch{mode: c.cfg.Fetch.Render, wait: c.cfg.WaitWorkers, hint: hint, out: c.stderr, can: true}
	for _, n := range nodes {
		if mayRender(n) {
			rw.starting++
		}
	}
	return rw
}

// mayRender reports whether the node's worker may say it renders.
func mayRender(n *node) bool { return n.Host.Render != machinefile.RenderNo }

// noBrowser is why a worker does not render.
const noBrowser = "the node's PATH has no chromium, chromium-browser or google-chrome, or the machinefile says render=no"

// none says why no worker renders: workers are up without a browser, or
// (with none up yet) the nodes starting may not render.
func none(workers int) string {
	if workers == 0 {
		return "the machinefile says render=no for every node starting"
	}
	return fmt.Sprintf("none of the %d worker(s) running has a browser: %s", workers, noBrowser)
}

// check decides, after any change: nodes is how many the run launched,
// starting how many launches are not over, workers how many workers are
// up (launched or joined). It returns ErrNoRenderer when the run must
// fail.
func (rw *renderWatch) check(f *frontier, nodes, starting, workers int) error {
	can := rw.live > 0 || rw.starting > 0
	switch rw.mode {
	case scrape.RenderAuto:
		// With no worker up and none starting (before the first joiner,
		// or with every node lost) nothing is answered: nothing to decide.
		if workers == 0 && (nodes == 0 || starting == 0) {
			return nil
		}
		if rw.told && can == rw.can {
			return nil
		}
		was := rw.can
		rw.can, rw.told = can, true
		back := f.renderable(can)
		switch {
		case !can:
			fmt.Fprintf(rw.out, "scrape: warning: --render auto: no node can render (%s); pages that need a browser keep their plain-HTTP record\n", none(workers))
			if back > 0 {
				fmt.Fprintf(rw.out, "scrape: %d pages sent to a browser are fetched over HTTP again\n", back)
			}
		case !was:
			fmt.Fprintf(rw.out, "scrape: --render auto: a worker that renders is here; pages that need a browser are rendered again\n")
		}
	case scrape.RenderAlways:
		if can {
			rw.waiting = nil
			return nil
		}
		if rw.wait <= 0 {
			if workers > 0 && starting == 0 {
				return fmt.Errorf("--render always: %w: none of the %d worker(s) running has a browser (%s); install Chromium on a node, or give scrape worker --browser", ErrNoRenderer, workers, noBrowser)
			}
			return nil
		}
		if rw.waiting == nil {
			fmt.Fprintf(rw.out, "scrape: no node can render; waiting up to %s for a worker with a browser to join: %s\n", rw.wait, rw.hint)
			rw.waiting = time.After(rw.wait)
		}
	}
	return nil
}

// expired is the error of a wait for a renderer that ran out.
func (rw *renderWatch) expired(workers, outstanding int) error {
	return fmt.Errorf("--render always: %w: none of the %d worker(s) running has a browser (%s) and none with one joined within the wait of %s; %d URLs outstanding; install Chromium on a node, or give scrape worker --browser",
		ErrNoRenderer, workers, noBrowser, rw.wait, outstanding)
}

// launched counts a launch that is over: up with renders render slots, or
// failed.
func (rw *renderWatch) launched(n *node, up bool) {
	if mayRender(n) {
		rw.starting--
	}
	if up && n.renderSlots > 0 {
		rw.live++
	}
}

// renderable tells the frontier whether any worker up can render
// (--render auto). When none can, a page that needs a browser is written
// as its HTTP fetch found it (answer), and the render tasks released are
// taken back to be fetched over HTTP again: nobody would pull them. It
// returns how many were taken back.
func (f *frontier) renderable(can bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.noRender = !can
	if can {
		return 0
	}
	back := 0
	for id, e := range f.pending {
		if !e.task.Render {
			continue
		}
		// As a retry is queued, but counted as none: the page did not
		// fail. The render task stays in the stream; a renderer that
		// comes later and pulls it answers an attempt no longer asked
		// for, and its answer is dropped.
		delete(f.pending, id)
		e.host.inflight--
		f.answeredLocked(e, "", 0)
		e.task.Attempt++
		e.task.Render = false
		e.host.queue = append([]*entry{e}, e.host.queue...)
		f.queued++
		f.activateLocked(e.host)
		back++
	}
	if back > 0 {
		f.poke()
	}
	return back
}
