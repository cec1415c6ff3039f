package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scrape-cluster/scrape/queue"
)

// fleet is the run's workers: launched in parallel, each reported as it comes
// up or fails, and watched until the run ends; and the workers that joined by
// themselves.
type fleet struct {
	c     *Coordinator
	nodes []*node
	hello map[string]chan queue.Hello // by node name
	sub   *nats.Subscription
	byes  *nats.Subscription
	joins *joiners
	hint  string // how to join the run by hand

	// queue and job are set, and queued closed, once the run's queue is
	// ready for workers (attach). Launches start the worker processes
	// before that and hand them the bootstrap after.
	queue  *runQueue
	job    *queue.Job
	queued chan struct{}

	events   chan fleetEvent
	launches sync.WaitGroup
	watchers sync.WaitGroup // one per started worker, until it ends
	stopOnce sync.Once

	mu    sync.Mutex
	ready int
}

// fleetEvent is a launch that ended (ready, or err) or a ready worker that
// went away (lost).
type fleetEvent struct {
	n     *node
	err   error
	ready bool
	lost  bool
}

// launch starts a worker on every host, in the background, and returns at
// once. The processes start while the queue is still being set up, which
// hides a process's start-up (or an ssh login) behind the queue's; each
// gets its bootstrap once attach says the queue is ready. Launches end when
// they succeed, fail or ctx is cancelled.
func (c *Coordinator) launch(ctx context.Context) *fleet {
	fl := &fleet{
		c:      c,
		hello:  make(map[string]chan queue.Hello, len(c.cfg.Hosts)),
		joins:  newJoiners(),
		queued: make(chan struct{}),
		events: make(chan fleetEvent, 2*len(c.cfg.Hosts)),
	}
	seen := map[string]int{}
	for _, h := range c.cfg.Hosts {
		name := h.Name
		if seen[name]++; seen[name] > 1 {
			name += "#" + strconv.Itoa(seen[name])
		}
		n := &node{Node: Node{Host: h, Name: name, Local: isLocal(h)}, worker: queue.NewWorkerID(), gone: make(chan struct{})}
		fl.nodes = append(fl.nodes, n)
		fl.hello[n.worker] = make(chan queue.Hello, 1)
	}
	for _, n := range fl.nodes {
		n.launchedAt = time.Now()
		fl.launches.Go(func() {
			err := fl.start(ctx, n)
			fl.events <- fleetEvent{n: n, err: err, ready: err == nil}
			if err != nil {
				return
			}
			fl.mu.Lock()
			fl.ready++
			fl.mu.Unlock()
			fl.watchers.Go(func() {
				// Ends when the worker does: reap ends every worker and
				// then waits for these.
				<-n.proc.Exited()
				fl.events <- fleetEvent{n: n, lost: true}
			})
		})
	}
	return fl
}

// attach listens for the workers' hellos on the ready queue, then lets the
// launches hand out their bootstraps.
func (fl *fleet) attach(nc *nats.Conn, q *runQueue, job queue.Job) error {
	c := fl.c
	var err error
	// Who sent a hello or a bye is the subject's last token, which the
	// queue lets only that worker use; what the message says of its sender
	// is not taken.
	fl.sub, err = nc.Subscribe(c.run.Hellos(), func(m *nats.Msg) {
		if m.Reply != "" {
			_ = m.Respond([]byte(c.run.ID)) // a probe: this run takes workers
		}
		var h queue.Hello
		if json.Unmarshal(m.Data, &h) != nil {
			return
		}
		h.Worker = c.run.WorkerOf(m.Subject)
		if ch, ok := fl.hello[h.Worker]; ok {
			select {
			case ch <- h:
			default:
			}
			return
		}
		fl.joins.hello(h, time.Now())
	})
	if err == nil {
		fl.byes, err = nc.Subscribe(c.run.Byes(), func(m *nats.Msg) {
			var b queue.Bye
			if json.Unmarshal(m.Data, &b) != nil {
				return
			}
			b.Worker = c.run.WorkerOf(m.Subject)
			if n := fl.launched(b.Worker); n != nil {
				n.bye()
				return
			}
			fl.joins.bye(b)
		})
	}
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		return fmt.Errorf("subscribe to workers: %w", err)
	}
	fl.hint = c.joinHint(q)
	fl.queue = q
	fl.job = &job
	close(fl.queued)
	return nil
}

// watch reports launches that fail, nodes lost mid-run and workers that join
// or leave. When no worker is left and none is still starting, it fails the
// run, or with WaitWorkers first waits that long for one to join.
func (fl *fleet) watch(ctx context.Context, f *frontier) error {
	starting, alive := len(fl.nodes), 0
	// rw says what a run that needs a browser does without one: fail, wait
	// for one, or write plain records (render.go).
	rw := newRenderWatch(fl.c, fl.nodes, fl.hint)
	var failed []string
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var waiting <-chan time.Time // set while no worker is there
	for {
		stderr := fl.c.stderr
		for _, e := range fl.joins.take() {
			if e.renders > 0 && e.left {
				rw.live--
			} else if e.renders > 0 {
				rw.live++
			}
			switch {
			case !e.left:
				f.addSlots(e.slots)
				fmt.Fprintf(stderr, "scrape: node %s joined (%d slots)\n", e.node, e.slots)
				fl.c.log.Info("worker joined", "node", e.node, "worker", e.worker, "slots", e.slots)
			case e.why != "":
				f.addSlots(-e.slots)
				fmt.Fprintf(stderr, "scrape: warning: lost node %s (%s): %s\n", e.node, e.worker, e.why)
			default:
				f.addSlots(-e.slots)
				fmt.Fprintf(stderr, "scrape: node %s left\n", e.node)
			}
		}
		if err := rw.check(f, len(fl.nodes), starting, alive+fl.joins.count()); err != nil {
			return err
		}
		switch {
		case alive+fl.joins.count() > 0 || starting > 0:
			waiting = nil
		case waiting != nil:
		case fl.c.cfg.WaitWorkers > 0:
			if len(fl.nodes) > 0 {
				fmt.Fprintf(stderr, "scrape: no worker left, %d URLs outstanding\n", f.outstanding())
			}
			fmt.Fprintf(stderr, "scrape: waiting up to %s for workers to join: %s\n", fl.c.cfg.WaitWorkers, fl.hint)
			waiting = time.After(fl.c.cfg.WaitWorkers)
		case len(failed) == len(fl.nodes):
			return fmt.Errorf("%w could start on any node:\n  %s", ErrNoWorkers, strings.Join(failed, "\n  "))
		default:
			return fmt.Errorf("%w left: every node was lost with %d URLs outstanding", ErrNoWorkers, f.outstanding())
		}

		select {
		case <-ctx.Done():
			return nil
		case <-f.done:
			return nil
		case <-waiting:
			return fmt.Errorf("%w joined within the wait of %s; %d URLs outstanding", ErrNoWorkers, fl.c.cfg.WaitWorkers, f.outstanding())
		case <-rw.waiting:
			return rw.expired(alive+fl.joins.count(), f.outstanding())
		case <-fl.joins.notify:
		case now := <-tick.C:
			fl.joins.expire(now)
		case ev := <-fl.events:
			switch {
			case ev.ready:
				starting--
				alive++
				rw.launched(ev.n, true)
			case ev.lost:
				alive--
				if ev.n.renderSlots > 0 {
					rw.live--
				}
				msg := fmt.Sprintf("lost node %s: %s", ev.n.Name, ev.n.proc.Reason())
				if others := alive + fl.joins.count(); others > 0 {
					msg += fmt.Sprintf("; its tasks go to the other %d node(s)", others)
				}
				fmt.Fprintf(stderr, "scrape: warning: %s\n", msg)
			default:
				starting--
				rw.launched(ev.n, false)
				if ctx.Err() != nil {
					return nil
				}
				failed = append(failed, ev.err.Error())
				fmt.Fprintf(stderr, "scrape: warning: %v\n", ev.err)
			}
		}
	}
}

// launched finds the node the run started the worker with this ID on.
func (fl *fleet) launched(id string) *node {
	for _, n := range fl.nodes {
		if n.worker == id {
			return n
		}
	}
	return nil
}

// nodeOf names the node of the worker with this ID: the machinefile's name
// for a worker the run started, what a joiner's hello said for a joiner
// (which can only speak for itself), "" for a worker never heard of.
func (fl *fleet) nodeOf(id string) string {
	if n := fl.launched(id); n != nil {
		return n.Name
	}
	return fl.joins.node(id)
}

// readyCount is how many workers took part: launched and ready, or joined.
func (fl *fleet) readyCount() int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.ready + fl.joins.joined()
}

// stop ends every launch and stops every worker the run started, in
// parallel. Only the first call does anything; the caller cancels the
// launches' context first.
func (fl *fleet) stop(nc *nats.Conn) {
	fl.stopOnce.Do(func() {
		fl.launches.Wait()
		fl.reportUnwatched()
		if fl.sub != nil {
			_ = fl.sub.Unsubscribe()
		}
		if nc != nil && nc.IsConnected() {
			_ = nc.Publish(fl.c.run.ControlSubject(), []byte(queue.ControlStop))
			_ = nc.FlushTimeout(time.Second)
		}
		var wg sync.WaitGroup
		for _, n := range fl.nodes {
			wg.Go(func() { n.stop(stopGrace) })
		}
		// Joined workers are not ours to kill, but their last results are
		// worth the wait: each says bye once it has stored or handed back
		// what it held.
		wg.Go(func() {
			deadline := time.Now().Add(stopGrace)
			for nc != nil && fl.joins.count() > 0 && time.Now().Before(deadline) && nc.IsConnected() {
				time.Sleep(50 * time.Millisecond)
			}
		})
		wg.Wait()
		if fl.byes != nil {
			_ = fl.byes.Unsubscribe()
		}
	})
}

// reportUnwatched says what became of the launches that ended after watch
// did: a run shorter than a silent host's connect timeout ends while that
// host is still starting, and its user should hear that the node did no
// work rather than nothing at all. A run that never began owes no node a
// word.
func (fl *fleet) reportUnwatched() {
	select {
	case <-fl.queued:
	default:
		return
	}
	for {
		select {
		case ev := <-fl.events:
			switch {
			case ev.ready || ev.lost:
			case errors.Is(ev.err, context.Canceled):
				// A start cut short by a tiny run's end is a race, not news;
				// one that has gone on for a second is a slow or silent host.
				if took := time.Since(ev.n.launchedAt); took >= time.Second {
					fmt.Fprintf(fl.c.stderr, "scrape: warning: node %s did no work: still starting %s after its launch when the run ended\n", ev.n.Name, took.Round(100*time.Millisecond))
				}
			default:
				fmt.Fprintf(fl.c.stderr, "scrape: warning: %v\n", ev.err)
			}
		default:
			return
		}
	}
}

// reap waits for every stopped worker's process to end, killing those still
// there once their stop's grace has passed.
func (fl *fleet) reap() {
	var wg sync.WaitGroup
	for _, n := range fl.nodes {
		wg.Go(n.reap)
	}
	wg.Wait()
	fl.watchers.Wait()
}
