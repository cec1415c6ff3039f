package worker

import (
	"context"
	"errors"
	"net/url"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/render"
	"github.com/scrape-cluster/scrape/scrape"
)

// publishTimeout bounds the wait for JetStream to store one result. A result
// that cannot be stored in that time is handed back (nak) so that another
// delivery can try again.
const publishTimeout = 10 * time.Second

type puller struct {
	w    *Worker
	js   jetstream.JetStream
	cons jetstream.Consumer
	job  queue.Job
	// slots is how many pages it gets at a time; get gets one, and calls
	// release once the network is done with it (FetchReleasing): the
	// fetcher's, or the browser's for the render tasks (render.go).
	slots int
	get   func(ctx context.Context, url string, release func()) scrape.Result
	// render says get renders: the page's requests are the browser's.
	render bool
	// held is shared by the plain and the render puller: one worker holds
	// both kinds of task.
	held *heldTasks
}

// maxPulls bounds the pull requests a worker has out at once. One at a time
// made each slot that freed up while a pull was out wait for that pull's
// round trip before its own; a few at once keep slots busy without a pull
// per slot.
const maxPulls = 4

// lookahead is how many tasks a worker with slots fetch slots holds beyond
// them, waiting for a slot: one per 8 slots, none below 8. A slot that frees
// up then starts its next page at once instead of after a pull's round trip
// (some 1.5 ms, a few percent of a fast site's pages). A node of few slots
// gains little from it and would hold a task another node could start: at
// the end of a run, a waiting task stalls for up to one page of its node.
func lookahead(slots int) int { return slots / 8 }

// loop keeps every slot busy. It asks the queue only for as many tasks as it
// has free slots plus the lookahead, so a slow node never sits on work a fast
// one could do. A slot is free again once its page is downloaded:
// extracting it, storing the result and acknowledging the task need no fetch
// slot, only the task's place among those held.
//
// Tasks come in batches of up to the run's TaskBatch: a pull asks for as many
// messages as its free places make whole batches, rounded up, so a node holds
// at most a batch less one beyond its places per pull. The tasks beyond are
// held without a place, and give none back when done.
func (p *puller) loop(ctx context.Context) {
	slots := p.slots
	held := slots + lookahead(slots)
	batch := max(p.job.TaskBatch, 1)
	free := make(chan struct{}, held) // tasks we may take from the queue
	for range held {
		free <- struct{}{}
	}
	fetching := make(chan struct{}, slots) // pages being fetched
	pulls := make(chan struct{}, maxPulls)
	pub := newPublisher(p)
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		pub.run(ctx)
	}()
	var wg sync.WaitGroup
	defer func() {
		// The publisher outlives every task: their results are stored
		// even while the worker stops (storeContext).
		wg.Wait()
		pub.close()
		<-pubDone
	}()
	for {
		select {
		case pulls <- struct{}{}:
		case <-ctx.Done():
			return
		}
		select {
		case <-free:
		case <-ctx.Done():
			<-pulls
			return
		}
		n := 1
	more:
		for n < held {
			select {
			case <-free:
				n++
			default:
				break more
			}
		}
		wg.Go(func() {
			defer func() { <-pulls }()
			places := n
			_, err := p.pull(ctx, (n+batch-1)/batch, func(msg jetstream.Msg) {
				tasks, err := queue.DecodeTasks(msg.Data())
				if err != nil {
					// Nothing can ever make this message readable;
					// redelivering it would only loop. The coordinator's
					// frontier still waits for its tasks, so say loudly
					// what happened.
					p.w.log.Error("dropping unreadable tasks", "err", err)
					_ = msg.TermWithReason("unreadable tasks")
					return
				}
				owned := min(places, len(tasks))
				places -= owned
				pub.busy.Add(int64(len(tasks)))
				wg.Go(func() { p.handle(ctx, msg, tasks, owned, free, fetching, pub) })
			})
			if err != nil && ctx.Err() == nil {
				p.w.log.Warn("pull tasks", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(500 * time.Millisecond):
				}
			}
			for range places {
				free <- struct{}{}
			}
		})
	}
}

// pull asks for up to n task messages and dispatches each as it arrives.
// The server ends the pull (queue.Pull): a task it sent as the pull ended
// is still dispatched, not left to wait out the AckWait.
func (p *puller) pull(ctx context.Context, n int, dispatch func(jetstream.Msg)) (int, error) {
	got, err := queue.Pull(ctx, p.cons, n, pullWait, dispatch)
	if errors.Is(err, context.Canceled) {
		err = nil // stopping
	}
	return got, err
}

// handle turns one message's tasks into stored results, then acknowledges
// the message. The order matters: a worker that dies before the ack leaves
// the whole batch to be redelivered, and the coordinator drops the results
// it already has, by task and attempt. The first owned tasks of the batch
// hold a place among those held, given back to free once their page is
// extracted; the rest were taken beyond the places (see loop).
func (p *puller) handle(ctx context.Context, msg jetstream.Msg, tasks []scrape.Task, owned int, free, fetching chan struct{}, pub *publisher) {
	// The ack-wait clock runs from delivery, also while tasks wait for a
	// slot, until the last result of the batch is stored.
	stop := p.heartbeat(msg)
	defer stop()
	again := queue.Again(msg.Headers())
	if again && p.held.any(tasks) {
		// A copy of tasks this worker is fetching, offered again at the
		// end of the run because this node is slow (the coordinator's
		// tail.go): another node is to have it.
		_ = msg.NakWithDelay(declineDelay)
		for i := range tasks {
			if i < owned {
				free <- struct{}{}
			}
			pub.handedIn()
		}
		return
	}
	p.held.add(tasks)
	lost := 0
	d := deliveries(msg)
	if p.job.MaxDeliver > 0 && d > p.job.MaxDeliver && !again {
		// A copy is never lost: its first offer is still out.
		lost = d - 1
	}
	open := tasks
	if (d > 1 || again) && lost == 0 {
		open = p.openTasks(ctx, tasks)
	}
	var failed atomic.Bool
	var wg sync.WaitGroup
	for i, task := range tasks {
		wg.Go(func() {
			var once sync.Once
			release := func() {
				if i < owned {
					once.Do(func() { free <- struct{}{} })
				}
			}
			defer release()
			defer p.held.done(task)
			if !slices.ContainsFunc(open, func(t scrape.Task) bool { return t.ID == task.ID }) {
				pub.handedIn() // answered before: nothing to do
				return
			}
			res, ok := p.fetch(ctx, task, lost, fetching, release)
			if !ok {
				failed.Store(true)
				pub.handedIn()
				return
			}
			if err := pub.store(task, res); err != nil {
				p.w.log.Warn("publish result", "url", task.URL, "err", err)
				failed.Store(true)
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		// Another delivery does what this one could not; what this one
		// stored is dropped then as a duplicate.
		_ = msg.Nak()
		return
	}
	if err := msg.Ack(); err != nil {
		// The results are stored; a lost ack only costs a redelivery
		// whose duplicate results the coordinator drops.
		p.w.log.Debug("ack tasks", "err", err)
	}
}

// declineDelay is how long a copy a worker declines waits before it is
// offered again, so that another node's pull takes it rather than this
// one's next.
const declineDelay = 100 * time.Millisecond

// heldTasks are the task attempts a worker has taken and not yet answered.
type heldTasks struct {
	mu sync.Mutex
	m  map[heldTask]int
}

type heldTask struct {
	id      uint64
	attempt int
}

func (h *heldTasks) add(ts []scrape.Task) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[heldTask]int{}
	}
	for _, t := range ts {
		h.m[heldTask{t.ID, t.Attempt}]++
	}
}

func (h *heldTasks) done(t scrape.Task) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := heldTask{t.ID, t.Attempt}
	if h.m[k]--; h.m[k] <= 0 {
		delete(h.m, k)
	}
}

// any reports whether one of ts is held.
func (h *heldTasks) any(ts []scrape.Task) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range ts {
		if h.m[heldTask{t.ID, t.Attempt}] > 0 {
			return true
		}
	}
	return false
}

// openWait bounds the question which tasks of a redelivered batch are open.
const openWait = 5 * time.Second

// openTasks asks the coordinator which of the tasks of a redelivered batch
// still wait for an answer. Without an answer, all of them are fetched: the
// coordinator drops the answers it has already.
func (p *puller) openTasks(ctx context.Context, tasks []scrape.Task) []scrape.Task {
	octx, cancel := context.WithTimeout(ctx, openWait)
	defer cancel()
	reply, err := p.js.Conn().RequestWithContext(octx, p.w.run.OpenSubject(), queue.EncodeOpenQuery(tasks))
	if err != nil {
		p.w.log.Debug("ask which tasks are open", "err", err)
		return tasks
	}
	return queue.OpenTasks(tasks, reply.Data)
}

// fetch makes one task's result. It holds a place in fetching until the page
// is downloaded, and calls release once the page is extracted. A task of a
// batch delivered more than MaxDeliver times (lost > 0) is recorded as lost,
// unfetched. It reports false when the task must be handed back: the worker
// is stopping.
func (p *puller) fetch(ctx context.Context, task scrape.Task, lost int, fetching chan struct{}, release func()) (*scrape.Result, bool) {
	var res scrape.Result
	if lost > 0 {
		res = scrape.Result{
			URL:   task.URL,
			Error: scrape.Errorf(scrape.KindWorkerLost, "gave up after %d deliveries: each worker that took this URL died or lost its connection", lost),
		}
	} else {
		select {
		case fetching <- struct{}{}:
		case <-ctx.Done():
			return nil, false
		}
		fctx := ctx
		if gap := max(task.Delay, p.job.Delay); gap > 0 && p.render {
			// A rendered page's scripts and API calls are requests to
			// a host as its pages are: each waits for its start time,
			// and so does the page's own, as the browser sends it (its
			// tab may take a while to be ready).
			fctx = render.WithLease(fctx, func(ctx context.Context, u *url.URL) error {
				return p.leaseHost(ctx, u, gap)
			})
		} else if err := p.lease(ctx, task); err != nil {
			<-fetching
			return nil, false
		}
		if task.Listed {
			// The input lists the task's host: the user asked for it,
			// private address or not.
			fctx = scrape.Listed(fctx)
		}
		if task.Cookies != "" {
			fctx = scrape.WithCookies(fctx, task.Cookies)
		}
		if task.ETag != "" || task.LastModified != "" {
			// --since: the page's earlier validators.
			fctx = scrape.WithValidators(fctx, task.ETag, task.LastModified)
		}
		res = p.get(fctx, task.URL, func() {
			<-fetching
			// Freeing the slot readied the task waiting for it. Pages of
			// one site tend to arrive together, and their extractions
			// would hold a small node's cores while the next requests
			// wait behind them: stepping aside sends those first. On 2
			// cores, 2,000 pages at 100 ms took 10-20 ms less of 3.3 s
			// with it, about half of that without it.
			runtime.Gosched()
		})
		release()
		if ctx.Err() != nil {
			// Stopping mid-fetch: the result is an artefact of our own
			// cancellation, not of the site. Hand the task back.
			return nil, false
		}
	}
	p.w.log.Debug("fetched", "url", task.URL, "status", res.Status, "ms", res.DurationMS, "attempt", task.Attempt)
	res.Line = task.Line
	res.Node = p.w.cfg.Node
	res.Worker = p.w.label
	res.Attempts = task.Attempt
	res.Depth = task.Depth
	res.Parent = task.Parent
	return &res, true
}

// storeContext bounds storing one result. A finished result is worth
// storing even while the worker stops, since the coordinator drains stored
// results before it exits; but once the queue is given up for lost, nothing
// will take it, and waiting would only keep the worker alive past its grace.
func storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(context.Cause(ctx), errLost) {
			cancel()
		}
	})
	return sctx, func() { stop(); cancel() }
}

// heartbeat tells JetStream the task is still being worked on, so a slow but
// healthy fetch is not handed to a second worker.
func (p *puller) heartbeat(msg jetstream.Msg) (stop func()) {
	every := p.job.AckWait / 3
	if every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

func deliveries(msg jetstream.Msg) int {
	md, err := msg.Metadata()
	if err != nil {
		return 1
	}
	return int(md.NumDelivered)
}

// leaseWait bounds one wait for a start time. The coordinator answers when
// the slot comes, which is a gap or two away: it releases a spaced host's
// tasks about one gap apart. A wait is given at least four of the task's
// gaps, so that a long Crawl-delay is not taken for a lost answer.
const leaseWait = 2 * time.Minute

// lease waits for the coordinator's go-ahead to start a request to the
// task's host, when the run spaces requests with --delay or the task says its
// host is spaced (a Crawl-delay, or a host that answered 429 or 503). A task
// of a host without spacing skips the round trip.
func (p *puller) lease(ctx context.Context, task scrape.Task) error {
	gap := max(task.Delay, p.job.Delay)
	if gap <= 0 {
		return nil
	}
	u, err := url.Parse(task.URL)
	if err != nil {
		return nil // the fetch reports the bad URL
	}
	return p.leaseHost(ctx, u, gap)
}

// leaseHost waits for a start time for a request to u's host, whose
// spacing the worker knows to be at least gap.
func (p *puller) leaseHost(ctx context.Context, u *url.URL, gap time.Duration) error {
	for {
		lctx, cancel := context.WithTimeout(ctx, max(leaseWait, 4*gap))
		_, err := p.js.Conn().RequestWithContext(lctx, p.w.run.LeaseSubject(), []byte(queue.HostKey(u)))
		cancel()
		if err == nil || ctx.Err() != nil {
			return ctx.Err()
		}
		p.w.log.Warn("waiting for a start time", "url", u.Redacted(), "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
