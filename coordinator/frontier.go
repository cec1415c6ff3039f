package coordinator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/temoto/robotstxt"

	"github.com/scrape-cluster/scrape/output"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// maxLine bounds one line of the urls file. A longer line is no URL anyone
// can fetch; it becomes an invalid_url record instead of a reason to buffer
// without end.
const maxLine = 64 << 10

// crawlIDBase starts the IDs of discovered pages above any line number, so
// input lines keep their line numbers as task IDs.
const crawlIDBase = 1 << 40

// frontierConfig is what the frontier enforces. Politeness lives here, in the
// one place that sees the whole cluster, not in each worker.
type frontierConfig struct {
	Window  int // tasks released to the queue at once
	Slots   int // the cluster's slots, for telling when --per-host held a run back
	PerHost int // tasks released per host at once: requests in flight to it
	Retries int // further attempts after a retryable failure
	Backoff time.Duration
	// Robots, when set, is consulted before any URL of a host is released.
	Robots *robotsFetcher
	// Crawl, when set, turns links of fetched pages into new tasks.
	Crawl *crawlScope
	// MaxQueued bounds tasks read from the input and not yet released, so a
	// huge urls file is streamed, not loaded.
	MaxQueued int
}

// entry is one task on its way through the frontier.
type entry struct {
	task      scrape.Task
	host      *hostState
	notBefore time.Time
	path      string // for robots.txt
}

// hostState is one host's queue and its share of the cluster.
type hostState struct {
	key      string
	scheme   string
	queue    []*entry
	inflight int
	active   bool // in frontier.active
	// robots is nil until the host's robots.txt is known; robotsWait is set
	// while it is being fetched.
	robots     *robotstxt.RobotsData
	robotsWait bool
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

	mu       sync.Mutex
	space    *sync.Cond // signalled when queued drops
	hosts    map[string]*hostState
	active   []*hostState // hosts with queued tasks, in round-robin order
	next     int
	pending  map[uint64]*entry // released, awaiting a result
	queued   int
	nextID   uint64
	admitted int // tasks admitted, for --max-pages

	inputDone bool
	done      chan struct{} // closed when input is read and nothing is left
	// skip are the input lines a resumed run has records for already.
	skip map[uint64]bool

	// heldSince is when the per-host limit last started holding back tasks
	// while the cluster had idle slots; held sums those periods.
	heldSince time.Time
	held      time.Duration
	retried   int
}

func newFrontier(cfg frontierConfig, js jetstream.JetStream, run queue.Run, out *sink, log *slog.Logger) *frontier {
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = 4 * cfg.Window
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
		nextID:  crawlIDBase,
		done:    make(chan struct{}),
	}
	f.space = sync.NewCond(&f.mu)
	return f
}

// feed reads the urls file to its end. A line that is not a URL is answered
// at once with an invalid_url record: every line of the input gets exactly
// one record.
func (f *frontier) feed(ctx context.Context, input io.Reader) error {
	// Wake a feed blocked on a full frontier when the run is cancelled.
	stop := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		f.space.Broadcast()
		f.mu.Unlock()
	})
	defer stop()

	r := bufio.NewReaderSize(input, maxLine)
	for lineNo := 1; ; lineNo++ {
		line, tooLong, err := readLine(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("read urls: line %d: %w", lineNo, err)
		}
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		text := string(bytes.TrimSpace(line))
		if text == "" || text[0] == '#' {
			continue
		}
		if f.skip[uint64(lineNo)] {
			// Done before a resume; a crawl still needs it as a seed.
			if u, err := scrape.ParseURL(text); err == nil && !tooLong {
				f.mu.Lock()
				if f.cfg.Crawl != nil {
					f.cfg.Crawl.seed(u)
				}
				f.admitted++
				f.mu.Unlock()
			}
			continue
		}
		if tooLong {
			if err := f.sink.invalid(text[:min(len(text), 200)]+"…", lineNo, fmt.Sprintf("line longer than %d bytes", maxLine)); err != nil {
				return err
			}
			continue
		}
		u, err := scrape.ParseURL(text)
		if err != nil {
			if err := f.sink.invalid(text, lineNo, err.Error()); err != nil {
				return err
			}
			continue
		}
		f.mu.Lock()
		for f.queued >= f.cfg.MaxQueued && ctx.Err() == nil {
			f.space.Wait()
		}
		if ctx.Err() != nil {
			f.mu.Unlock()
			return nil
		}
		if f.cfg.Crawl != nil {
			f.cfg.Crawl.seed(u)
		}
		f.admitted++
		f.enqueueLocked(scrape.Task{ID: uint64(lineNo), URL: text, Line: lineNo, Attempt: 1}, u)
		f.mu.Unlock()
		f.poke()
	}
	f.mu.Lock()
	f.inputDone = true
	f.checkDoneLocked()
	f.mu.Unlock()
	return nil
}

// enqueueLocked puts a task at the back of its host's queue.
func (f *frontier) enqueueLocked(t scrape.Task, u *url.URL) {
	key := queue.HostKey(u)
	h := f.hosts[key]
	if h == nil {
		h = &hostState{key: key, scheme: u.Scheme}
		f.hosts[key] = h
	}
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
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		batch, denied, wait := f.pick(time.Now())
		for _, e := range denied {
			if err := f.sink.robotsDenied(e.task, e.host.key); err != nil {
				return err
			}
		}
		if len(denied) > 0 {
			f.mu.Lock()
			f.checkDoneLocked()
			f.mu.Unlock()
		}
		for _, e := range batch {
			if err := f.publish(ctx, e.task); err != nil {
				return err
			}
		}
		if len(batch) > 0 || len(denied) > 0 {
			continue
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
// turn, within the window and each host's limit. It also returns tasks
// robots.txt forbids, and how long until a delayed retry is due.
func (f *frontier) pick(now time.Time) (batch, denied []*entry, wait time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	heldBack := false
	for progress := true; progress && len(f.pending)+len(batch) < f.cfg.Window; {
		progress = false
		for i := 0; i < len(f.active) && len(f.pending)+len(batch) < f.cfg.Window; i++ {
			h := f.active[(f.next+i)%len(f.active)]
			if len(h.queue) == 0 || h.robotsWait {
				continue
			}
			if f.cfg.Robots != nil && h.robots == nil {
				f.fetchRobotsLocked(h)
				continue
			}
			if h.inflight >= f.cfg.PerHost {
				heldBack = true
				continue
			}
			e := h.queue[0]
			if d := e.notBefore.Sub(now); d > 0 {
				if wait == 0 || d < wait {
					wait = d
				}
				continue
			}
			h.queue = h.queue[1:]
			f.queued--
			progress = true
			if h.robots != nil && !h.robots.TestAgent(e.path, f.cfg.Robots.agent) {
				denied = append(denied, e)
				continue
			}
			h.inflight++
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
		if len(h.queue) > 0 {
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

func (f *frontier) fetchRobotsLocked(h *hostState) {
	h.robotsWait = true
	go func() {
		data := f.cfg.Robots.fetch(h.scheme, h.key)
		f.mu.Lock()
		h.robots, h.robotsWait = data, false
		f.mu.Unlock()
		f.poke()
	}()
}

func (f *frontier) publish(ctx context.Context, t scrape.Task) error {
	msg, err := queue.EncodeTask(f.run, t)
	if err != nil {
		return err
	}
	// The message ID makes a retry safe: JetStream drops a copy of a task
	// it did store before its answer was lost.
	var o outage
	for {
		_, err := f.js.PublishMsg(ctx, msg)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			o.ok(f.log, "queue tasks")
			return nil
		}
		if !o.failed(f.log, "queue tasks", err) {
			return fmt.Errorf("queue task for %s: %w", t.URL, err)
		}
		pause(ctx)
	}
}

// Verdicts of frontier.answer.
type verdict int

const (
	drop  verdict = iota // a duplicate, or the answer to an attempt already retried
	retry                // not written: the task is queued again
	write                // the final record for its task
)

// answer accounts for a result. The caller writes a result judged write,
// passes on its links when crawling, and calls settle after its batch.
func (f *frontier) answer(meta queue.ResultMeta, now time.Time) (verdict, scrape.Task) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.pending[meta.Task]
	if !ok || (meta.Attempt != 0 && meta.Attempt != e.task.Attempt) {
		return drop, scrape.Task{}
	}
	delete(f.pending, meta.Task)
	e.host.inflight--
	defer f.poke()
	if e.task.Attempt <= f.cfg.Retries && retryable(meta) {
		e.task.Attempt++
		e.notBefore = now.Add(f.backoff(e.task.Attempt, meta.RetryAfter))
		// To the front: the host asked us to slow down, not to reorder.
		e.host.queue = append([]*entry{e}, e.host.queue...)
		f.queued++
		f.retried++
		f.activateLocked(e.host)
		return retry, e.task
	}
	return write, e.task
}

// retryable says which failures are worth another attempt: the passing
// ones. A 404 or a DNS failure will not heal in a few seconds.
func retryable(m queue.ResultMeta) bool {
	switch m.Kind {
	case scrape.KindTimeout, scrape.KindConnect, scrape.KindBadBody:
		return true
	case scrape.KindHTTPStatus:
		return m.Status == 408 || m.Status == 429 || m.Status >= 500
	}
	return false
}

// maxBackoff caps one wait, Retry-After included: a site asking for a day
// gets its record with the error instead of a run that never ends.
const maxBackoff = 5 * time.Minute

// backoff is the wait before attempt n: exponential with jitter, and never
// shorter than the site's own Retry-After.
func (f *frontier) backoff(n int, retryAfter time.Duration) time.Duration {
	d := f.cfg.Backoff << (n - 2)
	d = d/2 + rand.N(d+1)
	return min(max(d, retryAfter), maxBackoff)
}

// discover queues the links of a crawled page that are in scope and new.
func (f *frontier) discover(parent scrape.Task, links []string) {
	c := f.cfg.Crawl
	if c == nil || parent.Depth >= c.depth {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	added := false
	for _, l := range links {
		if c.maxPages > 0 && f.admitted >= c.maxPages {
			break
		}
		u, key, ok := c.admit(l)
		if !ok {
			continue
		}
		f.admitted++
		f.nextID++
		t := scrape.Task{ID: f.nextID, URL: key, Attempt: 1, Depth: parent.Depth + 1, Parent: parent.URL}
		f.sink.found(t)
		f.enqueueLocked(t, u)
		added = true
	}
	if added {
		f.poke()
	}
}

// restore takes up a run where its journal left it: the input lines with
// records are skipped as the input is read again, and the pages crawling had
// found are known (so not found twice) and, if they have no record yet,
// queued again.
func (f *frontier) restore(rec recovered) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.skip = rec.Done
	for _, t := range rec.Found {
		f.nextID = max(f.nextID, t.ID)
		u, err := scrape.ParseURL(t.URL)
		if err != nil {
			return fmt.Errorf("resume: journal holds an unreadable URL %q: %w", t.URL, err)
		}
		if f.cfg.Crawl != nil {
			f.cfg.Crawl.see(u)
		}
		f.admitted++
		if rec.Done[t.ID] {
			continue
		}
		t.Attempt = 1
		f.enqueueLocked(t, u)
	}
	return nil
}

// settle ends the run when nothing is left to do.
func (f *frontier) settle() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checkDoneLocked()
}

func (f *frontier) checkDoneLocked() {
	if !f.inputDone || len(f.pending) > 0 || f.queued > 0 {
		return
	}
	select {
	case <-f.done:
	default:
		f.trackHeldLocked(time.Now(), false)
		close(f.done)
	}
}

// outstanding is how many admitted tasks have no record yet.
func (f *frontier) outstanding() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending) + f.queued
}

// politeness reports how long the per-host limit held the run back, and
// how many retries were made.
func (f *frontier) politeness() (held time.Duration, retried int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held, f.retried
}

// readLine returns the next line without its newline. A line longer than
// the reader's buffer is returned cut, with tooLong set, and the rest of it
// is skipped.
func readLine(r *bufio.Reader) (line []byte, tooLong bool, err error) {
	line, err = r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		line = append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.ReadSlice('\n')
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
		return line, true, err
	}
	if errors.Is(err, io.EOF) && len(line) > 0 {
		err = nil
	}
	return bytes.TrimSuffix(line, []byte("\n")), false, err
}

// sink is the single writer of the output. The frontier (invalid lines,
// robots.txt refusals) and the collector (results) both write through it.
//
// Every record it writes is for one task, and the journal hears of it: a
// flush commits the records written so far with the output's position.
type sink struct {
	mu      sync.Mutex
	w       writer
	stats   *Summary
	journal *journal
}

type writer interface {
	Write([]byte) error
	Flush() error
	Pos() output.Pos
}

func (s *sink) write(rec []byte, meta queue.ResultMeta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.Write(rec); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	s.journal.markDone(meta.Task)
	s.stats.add(meta)
	return nil
}

// found journals a page crawling discovered, with the next commit: the
// result that links to it is acknowledged only after that.
func (s *sink) found(t scrape.Task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.journal.markFound(t)
}

func (s *sink) record(id uint64, r scrape.Result) error {
	rec, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.write(rec, queue.ResultMeta{Task: id, Kind: r.Error.Kind})
}

func (s *sink) invalid(text string, line int, why string) error {
	return s.record(uint64(line), scrape.Result{
		URL:   text,
		Line:  line,
		Error: &scrape.Error{Kind: scrape.KindInvalidURL, Message: why},
	})
}

func (s *sink) robotsDenied(t scrape.Task, host string) error {
	return s.record(t.ID, scrape.Result{
		URL: t.URL, Line: t.Line, Depth: t.Depth, Parent: t.Parent,
		Error: scrape.Errorf(scrape.KindRobotsDisallowed, "robots.txt of %s disallows it", host),
	})
}

// snapshot copies the counts so far.
func (s *sink) snapshot() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.clone()
}

// flush makes the records written so far durable in the output, then
// commits them to the journal. Only then may their results be acknowledged.
func (s *sink) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.journal.changed(s.w.Pos()) {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return s.journal.commit(s.w.Pos())
}
