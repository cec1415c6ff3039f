package coordinator

import (
	"cmp"
	"slices"
	"time"

	"github.com/scrape-cluster/scrape/scrape"
)

// The tail of a run. Once every task has been released and pulled, the pages
// in flight on a slow node (a Raspberry Pi next to desktops, a node on a slow
// link) are all the run waits for, while the fast nodes have nothing to do:
// measured on two namespace nodes, one forty times slower than the other,
// the run's last page ended one slow page (2 s) after the fast node's last
// (README, "Nodes of different speeds"). A worker pulls only for its free
// places, so there is nothing to gain by handing a slow node less: the
// pages it holds at the end are the ones it is fetching.
//
// So at the end, with nothing left to release and some of the cluster's
// places idle, when one node's pages take reofferFactor times as long as
// another's, a task in flight reofferFactor times as long as the fastest
// node's pages take is offered again: a copy of the same delivery (task,
// attempt and token), in a message of its own. Whichever node answers first
// writes the record, and frontier.answer drops the other answer as it drops
// any duplicate (same task and attempt, no longer pending). A cluster of
// nodes of one speed never fetches a page twice, however slow the page: only
// a slow node is worth working around.
//
// A copy is one more request to the page's host, so it is made only within
// the host's limit in flight, never to a host with a spacing (--delay,
// Crawl-delay, or slowed by its 429s and 503s) and never to one whose
// breaker is not closed. Once the task is answered, its copy no longer
// counts against the host's limit, though the losing request may still be
// under way: at most one per task and attempt, at the end of the run.
const (
	// reofferFactor: a task is offered again once it has been in flight
	// this many times as long as the fastest node's pages take, if some
	// node's pages take this many times as long as the fastest's.
	reofferFactor = 4
	// reofferFloor is the least time in flight before a task is offered
	// again, so that a run of fast pages does not fetch its last ones twice
	// for a few milliseconds' gain.
	reofferFloor = 200 * time.Millisecond
	// tookKept is how many recent pages a node's typical page time is the
	// median of; tookLeast how many it needs to count.
	tookKept  = 64
	tookLeast = 3
)

// pageTimes keeps how long a node's last pages took, as the node measured
// them (a result's duration_ms): the time a task waited in the queue before
// a node pulled it is no part of the node's speed, and the node's clock
// need not agree with ours.
type pageTimes struct {
	ring [tookKept]time.Duration
	n    int // pages seen
}

func (p *pageTimes) add(d time.Duration) {
	p.ring[p.n%tookKept] = d
	p.n++
}

// typical is the median of the pages kept, or 0 with too few of them.
func (p *pageTimes) typical() time.Duration {
	if p.n < tookLeast {
		return 0
	}
	kept := slices.Clone(p.ring[:min(p.n, tookKept)])
	slices.Sort(kept)
	return max(kept[len(kept)/2], time.Millisecond)
}

// speedsLocked is the typical page time of the fastest and of the slowest
// node, among those with enough pages; 0, 0 without two such nodes.
func (f *frontier) speedsLocked() (fastest, slowest time.Duration) {
	for _, p := range f.took {
		d := p.typical()
		if d == 0 {
			continue
		}
		if fastest == 0 || d < fastest {
			fastest = d
		}
		slowest = max(slowest, d)
	}
	return fastest, slowest
}

// reoffer picks the tasks to offer again now, and how long until another
// may be due (0: none is, until an answer changes things). It offers nothing
// while tasks are still to be released, every place of the cluster is
// busy, or no node is much slower than another.
func (f *frontier) reoffer(now time.Time) (copies []scrape.Task, wait time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.inputDone || f.queued > 0 || f.backlog > 0 || len(f.pending) >= f.cfg.Slots || len(f.pending) == 0 {
		f.spareSince = time.Time{}
		return nil, 0
	}
	if f.spareSince.IsZero() {
		f.spareSince = now
	}
	idle := f.cfg.Slots - len(f.pending) - f.copying
	fastest, slowest := f.speedsLocked()
	if fastest == 0 || slowest < reofferFactor*fastest {
		return nil, 0
	}
	after := max(reofferFloor, reofferFactor*fastest)
	var due []*entry
	for _, e := range f.pending {
		h := e.host
		if e.copied || h.rate.delay > 0 || h.brk.state != hostUp {
			continue
		}
		// Counted from when the cluster had places to spare, too: before,
		// a task may have waited in the queue for a node to pull it,
		// since the window is wider than the cluster's places.
		if age := now.Sub(later(e.sent, f.spareSince)); age < after {
			if d := after - age; wait == 0 || d < wait {
				wait = d
			}
			continue
		}
		due = append(due, e)
	}
	// The longest in flight first: they are the likeliest held by a slow node.
	slices.SortFunc(due, func(a, b *entry) int {
		return cmp.Or(a.sent.Compare(b.sent), cmp.Compare(a.task.ID, b.task.ID))
	})
	for _, e := range due {
		if idle <= 0 {
			break
		}
		if e.host.inflight >= e.host.rate.limit {
			continue
		}
		e.copied = true
		e.host.inflight++
		f.copying++
		f.reoffered++
		idle--
		copies = append(copies, e.task)
	}
	return copies, wait
}

// answeredLocked notes that e is answered by node, whose page took took:
// the node's speed, and e's copy no longer in flight.
func (f *frontier) answeredLocked(e *entry, node string, took time.Duration) {
	if node != "" {
		p := f.took[node]
		if p == nil {
			p = &pageTimes{}
			f.took[node] = p
		}
		p.add(took)
	}
	if e.copied {
		e.copied = false
		f.copying--
		e.host.inflight--
	}
}

// reoffers is how many deliveries were offered again.
func (f *frontier) reoffers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reoffered
}
