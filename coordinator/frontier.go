package coordinator

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/temoto/robotstxt"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// crawlIDBase starts the IDs of discovered pages above any line number, so
// input lines keep their line numbers as task IDs.
const crawlIDBase = 1 << 40

// frontierConfig is what the frontier enforces. Politeness lives here, in the
// one place that sees the whole cluster, not in each worker.
type frontierConfig struct {
	Window  int // tasks released to the queue at once
	Slots   int // pages the cluster fetches at a time, for telling when --per-host held a run back
	PerHost int // tasks released per host at once: requests in flight to it
	Retries int // further attempts after a retryable failure
	Backoff time.Duration
	// HostFailures is how many failures to reach a host in a row open its
	// breaker (breaker.go); 0 turns the breaker off.
	HostFailures int
	// Robots, when set, is consulted before any URL of a host is released.
	Robots *robotsFetcher
	// Crawl, when set, turns links of fetched pages into new tasks.
	Crawl *crawlScope
	// Sitemaps, when set (--sitemap, which needs Crawl), reads each input
	// host's sitemaps into tasks (sitemap.go).
	Sitemaps *sitemapFetcher
	// MaxQueued bounds the tasks held in memory and not yet released: a
	// urls file is streamed, a crawl's links beyond it wait in host logs.
	MaxQueued int
	// SpillDir is where the hosts' logs are written ("": kept in memory);
	// CheckpointEvery how often the journal is checkpointed (default
	// DefaultCheckpointEvery).
	SpillDir        string
	CheckpointEvery time.Duration

	// Delay spaces the starts of requests to one host; a host's robots.txt
	// Crawl-delay replaces it when longer, up to MaxCrawlDelay (default
	// DefaultMaxCrawlDelay). 429s and 503s slow a host further (rate.go).
	Delay         time.Duration
	MaxCrawlDelay time.Duration

	// TaskBatch is the most tasks one task message carries (0 means 1).
	TaskBatch int

	// RenderAll (--render always) sends every task to the render subject;
	// with --render auto a page goes there once its HTTP fetch says it
	// needs a browser (answer).
	RenderAll bool

	// Structured says the run asked for structured data (--structured):
	// a result's data is kept only then.
	Structured bool
	// Jar, with --session, holds the cookies sites set; each task released
	// carries those for its URL.
	Jar *sessionJar
	// Since, with --since, is the earlier output's pages: each task
	// released carries its URL's validators (since.go).
	Since *sinceIndex
}

// entry is one task on its way through the frontier.
type entry struct {
	task      scrape.Task
	host      *hostState
	notBefore time.Time
	path      string    // for robots.txt
	released  time.Time // when its attempt was released, for its host's pace
	// refusal is the record of a task pick gives up on unfetched.
	refusal *scrape.Error
	retried bool      // a retry not yet released: counted once it is
	sent    time.Time // its last release
	copied  bool      // offered again at the end of the run, unanswered (tail.go)
}

// hostState is one host's queue and its share of the cluster.
type hostState struct {
	key      string
	scheme   string
	queue    []*entry
	log      hostLog // crawled pages waiting behind queue (backlog.go)
	inflight int
	active   bool // in frontier.active
	// robots is nil until the host's robots.txt is known; robotsWait is set
	// while it is being fetched.
	robots     *robotstxt.RobotsData
	robotsWait bool
	robotsWhy  string // why robots refuses every URL unasked, if it does
	// listed is set once a task of the host is Listed: its robots.txt may
	// then be fetched from a private address too.
	listed bool
	// rate is the host's pace: its limit in flight and its spacing, from
	// PerHost, Delay and its Crawl-delay, moved by its answers (rate.go).
	rate hostRate
	// brk stops sending to a host that cannot be reached (breaker.go).
	brk breaker
}

// frontier decides what the cluster fetches next. It streams the urls file,
// keeps each host's tasks in a queue of its own, and releases them to the
// work queue round-robin across hosts, within the global window and each
// host's limit, so that a slow or rate-limited host never holds up others.
type frontier struct {
	cfg  frontierConfig
	js   jetstream.JetStream
	run  queue.Run
	sink *sink
	log  *slog.Logger

	wake chan struct{}

	// robots are the robots.txt fetches under way, on robotsCtx.
	robots      sync.WaitGroup
	robotsCtx   context.Context
	stopFetches context.CancelFunc
	// robotsWaiting counts the hosts whose robots.txt is being fetched.
	robotsWaiting int
	// sitemapHosts are the hosts whose sitemaps were read or are being
	// read; sitemapsWaiting counts the latter, which the run waits for.
	sitemapHosts    map[string]bool
	sitemapsWaiting int

	mu       sync.Mutex
	space    *sync.Cond // signalled when queued drops
	hosts    map[string]*hostState
	active   []*hostState // hosts with queued tasks, in round-robin order
	next     int
	pending  map[uint64]*entry // released, awaiting a result
	queued   int               // tasks in the hosts' queues
	nextID   uint64
	admitted int // tasks admitted, for --max-pages
	crawled  int // of them, crawled pages

	// The hosts' logs (backlog.go): store, the hosts with links the next
	// flush writes, the links waiting, the first failure to read or write
	// them, and the pages a resume found records of after its checkpoint.
	store      *spillStore
	dirty      []*hostState
	backlog    int
	err        error
	replayDone map[uint64]bool

	inputDone bool
	done      chan struct{} // closed when input is read and nothing is left
	// skip are the input lines a resumed run has records for already.
	skip idRanges

	// heldSince is when the per-host limit last started holding back tasks
	// while the cluster had idle slots; held sums those periods.
	heldSince time.Time
	held      time.Duration
	retried   int

	// The end of the run (tail.go): the nodes' recent page times, the
	// copies of deliveries in flight, how many were made, and since when
	// the cluster has had places to spare with nothing left to release.
	took       map[string]*pageTimes
	copying    int
	reoffered  int
	spareSince time.Time

	// lines is the input's size against how far feed has read it, and
	// retryWaiting the retries queued for their time: for the progress
	// display (progress.go).
	lines        inputLines
	retryWaiting int

	// noRender, with --render auto, says no worker up can render: a page
	// that needs a browser keeps its plain record (render.go).
	noRender bool
}

func newFrontier(cfg frontierConfig, js jetstream.JetStream, run queue.Run, out *sink, log *slog.Logger) *frontier {
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = 4 * cfg.Window
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = DefaultCheckpointEvery
	}
	f := &frontier{
		cfg:     cfg,
		js:      js,
		run:     run,
		sink:    out,
		log:     log,
		wake:    make(chan struct{}, 1),
		hosts:   map[string]*hostState{},
		pending: map[uint64]*entry{},
		took:    map[string]*pageTimes{},
		nextID:  crawlIDBase,
		done:    make(chan struct{}),
		store:   &spillStore{dir: cfg.SpillDir},
	}
	f.space = sync.NewCond(&f.mu)
	f.lines.total.Store(-1)
	f.robotsCtx, f.stopFetches = context.WithCancel(context.Background())
	return f
}

// stopRobots cancels the robots.txt fetches under way and waits for them.
func (f *frontier) stopRobots() {
	f.stopFetches()
	f.robots.Wait()
}

// enqueueLocked puts a task at the back of its host's queue.
func (f *frontier) enqueueLocked(t scrape.Task, u *url.URL) {
	h := f.hostLocked(queue.HostKey(u), u.Scheme)
	h.listed = h.listed || t.Listed
	h.queue = append(h.queue, &entry{task: t, host: h, path: u.RequestURI()})
	f.queued++
	f.activateLocked(h)
}

func (f *frontier) activateLocked(h *hostState) {
	if !h.active {
		h.active = true
		f.active = append(f.active, h)
	}
}

func (f *frontier) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// dispatch releases tasks as room appears, until the run is done.
func (f *frontier) dispatch(ctx context.Context) error {
	stop := context.AfterFunc(ctx, f.stopFetches)
	defer func() {
		stop()
		f.stopRobots()
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		batch, denied, wait := f.pick(time.Now())
		copies, again := f.reoffer(time.Now())
		if err := f.failure(); err != nil {
			return err
		}
		for _, e := range denied {
			if err := f.sink.refuse(e.task, e.refusal); err != nil {
				return err
			}
		}
		if len(denied) > 0 {
			f.mu.Lock()
			f.checkDoneLocked()
			f.mu.Unlock()
		}
		for rest := batch; len(rest) > 0; {
			n := min(len(rest), max(f.cfg.TaskBatch, 1))
			if err := f.publish(ctx, rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		for rest := copies; len(rest) > 0; {
			n := min(len(rest), max(f.cfg.TaskBatch, 1))
			if err := f.send(ctx, rest[:n], true); err != nil {
				return err
			}
			rest = rest[n:]
		}
		if len(batch) > 0 || len(denied) > 0 || len(copies) > 0 {
			continue
		}
		if again > 0 && (wait <= 0 || again < wait) {
			wait = again
		}
		if wait <= 0 {
			wait = time.Hour
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-f.done:
			return nil
		case <-f.wake:
		case <-timer.C:
		}
	}
}

// pick chooses what to release now: one task per host per round, hosts in
// turn, within the window and each host's limit and spacing (its pace,
// rate.go). It also returns tasks to record unfetched (robots.txt forbids
// them, or their host is down), and how long until a delayed retry, a spaced
// host's next task or a probe is due.
func (f *frontier) pick(now time.Time) (batch, denied []*entry, wait time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	heldBack := false
	for progress := true; progress && len(f.pending) < f.cfg.Window; {
		progress = false
		for i := 0; i < len(f.active) && len(f.pending) < f.cfg.Window; i++ {
			h := f.active[(f.next+i)%len(f.active)]
			if len(h.queue) == 0 && h.log.n > 0 && f.err == nil {
				if err := f.refillLocked(h); err != nil {
					f.failLocked(err)
				}
			}
			if len(h.queue) == 0 || h.robotsWait {
				continue
			}
			if f.cfg.Robots != nil && h.robots == nil {
				f.fetchRobotsLocked(h)
				continue
			}
			if gone, hold, d := f.gateLocked(h, now); hold {
				denied = append(denied, gone...)
				progress = progress || len(gone) > 0
				if d > 0 && (wait == 0 || d < wait) {
					wait = d
				}
				continue
			}
			if h.inflight >= h.rate.limit {
				// Held back by --per-host; a limit lowered by the host's
				// 429s and 503s is the host's doing, not the flag's.
				heldBack = heldBack || h.rate.limit >= f.cfg.PerHost
				continue
			}
			e := h.queue[0]
			if d := later(e.notBefore, h.rate.next).Sub(now); d > 0 {
				if wait == 0 || d < wait {
					wait = d
				}
				continue
			}
			h.queue = h.queue[1:]
			f.queued--
			if e.retried {
				f.retryWaiting--
			}
			progress = true
			if h.robots != nil && !h.robots.TestAgent(e.path, f.cfg.Robots.agent) {
				e.refusal = robotsRefusal(h)
				f.sink.hold(e.task)
				denied = append(denied, e)
				continue
			}
			h.inflight++
			f.releasedLocked(e, now)
			e.task.Token = newToken()
			e.task.Render = (e.task.Render && !f.noRender) || f.cfg.RenderAll
			e.task.Delay, e.released = h.rate.release(now), now
			// The host's next task waits for this one's answer: the
			// worker must not hold it back to share a message.
			e.task.Prompt = h.inflight >= h.rate.limit && len(h.queue) > 0
			f.pending[e.task.ID] = e
			batch = append(batch, e)
		}
		f.next++
	}
	f.compactLocked()
	f.space.Broadcast()
	f.trackHeldLocked(now, heldBack)
	return batch, denied, wait
}

// compactLocked drops hosts with nothing queued from the round-robin list.
func (f *frontier) compactLocked() {
	kept := f.active[:0]
	for _, h := range f.active {
		if len(h.queue) > 0 || h.log.n > 0 {
			kept = append(kept, h)
		} else {
			h.active = false
		}
	}
	clear(f.active[len(kept):])
	f.active = kept
	if len(f.active) > 0 {
		f.next %= len(f.active)
	} else {
		f.next = 0
	}
}

// trackHeldLocked measures the time the per-host limit kept tasks back while
// some of the cluster's slots had nothing to do.
func (f *frontier) trackHeldLocked(now time.Time, heldBack bool) {
	holding := heldBack && len(f.pending) < f.cfg.Slots
	switch {
	case holding && f.heldSince.IsZero():
		f.heldSince = now
	case !holding && !f.heldSince.IsZero():
		f.held += now.Sub(f.heldSince)
		f.heldSince = time.Time{}
	}
}

// publish releases a batch of tasks.
func (f *frontier) publish(ctx context.Context, batch []*entry) error {
	tasks := make([]scrape.Task, len(batch))
	for i, e := range batch {
		tasks[i] = e.task
	}
	return f.send(ctx, tasks, false)
}

// send publishes tasks in one message: released now, or offered again at
// the end of the run (again, tail.go).
func (f *frontier) send(ctx context.Context, tasks []scrape.Task, again bool) error {
	if slices.ContainsFunc(tasks, func(t scrape.Task) bool { return t.Render != tasks[0].Render }) {
		// Render tasks go to a subject of their own, which only workers
		// that render pull: a message is all render tasks or none.
		var same, other []scrape.Task
		for _, t := range tasks {
			if t.Render == tasks[0].Render {
				same = append(same, t)
			} else {
				other = append(other, t)
			}
		}
		if err := f.send(ctx, same, again); err != nil {
			return err
		}
		return f.send(ctx, other, again)
	}
	for i := range tasks {
		if f.cfg.Jar != nil {
			// At release, not when queued: a retry or a page found
			// long ago goes with the cookies the run holds now.
			tasks[i].Cookies = f.cfg.Jar.header(tasks[i].URL)
		}
		if f.cfg.Since != nil {
			f.cfg.Since.validators(&tasks[i])
		}
	}
	encode := queue.EncodeTasks
	if again {
		encode = queue.EncodeTasksAgain
	}
	msg, err := encode(f.run, tasks)
	if err != nil {
		return err
	}
	// The message ID makes a retry safe: JetStream drops a copy of a batch
	// it did store before its answer was lost.
	var o outage
	for {
		_, err := f.js.PublishMsg(ctx, msg)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			o.ok(f.log, "queue tasks")
			if again {
				f.log.Info("offered again at the end of the run", "tasks", len(tasks), "first", tasks[0].URL)
			}
			return nil
		}
		if !o.failed(f.log, "queue tasks", err) {
			return fmt.Errorf("queue tasks from %s: %w", tasks[0].URL, err)
		}
		pause(ctx)
	}
}

// settle ends the run when nothing is left to do.
func (f *frontier) settle() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checkDoneLocked()
}

func (f *frontier) checkDoneLocked() {
	if !f.inputDone || len(f.pending) > 0 || f.queued > 0 || f.backlog > 0 || f.sitemapsWaiting > 0 {
		return
	}
	select {
	case <-f.done:
	default:
		f.trackHeldLocked(time.Now(), false)
		close(f.done)
	}
}

// outstanding is how many admitted tasks have no record yet, and how many
// links wait in the hosts' logs (a few of them found twice, not fetched).
func (f *frontier) outstanding() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending) + f.queued + f.backlog
}

// politeness reports how long the per-host limit held the run back, and
// how many retries were made.
func (f *frontier) politeness() (held time.Duration, retried int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held, f.retried
}
