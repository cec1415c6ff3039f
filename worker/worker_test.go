package worker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scrape-cluster/scrape/internal/testqueue"
	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// testQueue is a real JetStream server on a free port with one run set up on it.
type testQueue struct {
	srv     *server.Server
	url     string
	js      jetstream.JetStream
	run     queue.Run
	results jetstream.Consumer
}

func startQueue(t *testing.T, job queue.Job) *testQueue {
	t.Helper()
	srv := testqueue.Start(t)
	js := testqueue.Connect(t, srv)
	q := &testQueue{srv: srv, url: srv.ClientURL(), js: js, run: queue.Run{ID: "T" + strings.ToUpper(strings.ReplaceAll(t.Name(), "/", ""))}}
	var err error
	q.results, err = queue.CreateRun(t.Context(), js, q.run, job, queue.Streams{MaxMsg: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func (q *testQueue) publish(t *testing.T, tasks ...scrape.Task) {
	t.Helper()
	for _, task := range tasks {
		m, err := queue.EncodeTasks(q.run, []scrape.Task{task})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.js.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
}

// collect reads n results, failing the test if they do not come in time.
func (q *testQueue) collect(t *testing.T, n int) map[uint64]scrape.Result {
	t.Helper()
	out := map[uint64]scrape.Result{}
	deadline := time.Now().Add(20 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		b, err := q.results.Fetch(n-len(out), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			err := queue.DecodeResults(q.run, m.Subject(), resultData(t, m), func(meta queue.ResultMeta, r *scrape.Result) {
				if _, dup := out[meta.Task]; dup {
					t.Errorf("task %d answered twice", meta.Task)
				}
				out[meta.Task] = *r
			})
			if err != nil {
				t.Fatal(err)
			}
			m.Ack()
		}
	}
	if len(out) < n {
		t.Fatalf("%d of %d results arrived", len(out), n)
	}
	return out
}

func (q *testQueue) pendingTasks(t *testing.T) uint64 {
	t.Helper()
	s, err := q.js.Stream(t.Context(), q.run.TaskStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startWorker runs a worker until the test ends; the returned channel
// yields Run's error.
func startWorker(t *testing.T, q *testQueue, slots int, lifeline <-chan struct{}) (context.CancelFunc, <-chan error) {
	t.Helper()
	return launchWorker(t, q.bootstrap(slots), lifeline)
}

// bootstrap is what the run would hand a worker of slots slots, less the job.
func (q *testQueue) bootstrap(slots int) queue.Bootstrap {
	return queue.Bootstrap{Servers: []string{q.url}, Auth: queue.Auth{User: "w", Password: "secret"}, Run: q.run.ID, Node: "n1", Slots: slots}
}

func launchWorker(t *testing.T, boot queue.Bootstrap, lifeline <-chan struct{}) (context.CancelFunc, <-chan error) {
	t.Helper()
	w, err := New(Config{
		Bootstrap: boot,
		Lifeline:  lifeline,
		Grace:     2 * time.Second,
		Logger:    testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		done <- w.Run(ctx)
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Error("worker did not stop")
		}
	})
	return cancel, done
}

func TestWorkerAnswersEveryTaskAndAcksIt(t *testing.T) {
	site := testsite.New(50)
	srv := httptest.NewServer(site)
	t.Cleanup(func() { site.Close(); srv.Close() })
	q := startQueue(t, queue.Job{Fetch: scrape.Config{Timeout: 5 * time.Second}, AckWait: 5 * time.Second, MaxDeliver: 3})

	// Listed, as the coordinator marks input lines: the test sites are on
	// loopback, which the fetch reaches only for a host the input lists.
	var tasks []scrape.Task
	for i := range 50 {
		tasks = append(tasks, scrape.Task{ID: uint64(i + 1), URL: srv.URL + "/page/" + itoa(i), Line: i + 1, Attempt: 1, Listed: true})
	}
	q.publish(t, tasks...)
	startWorker(t, q, 4, nil)

	got := q.collect(t, len(tasks))
	for _, task := range tasks {
		r := got[task.ID]
		if r.URL != task.URL || r.Line != task.Line || r.Node != "n1" || r.Attempts != 1 || r.Status != 200 || r.Error != nil {
			t.Errorf("task %d: %+v", task.ID, r)
		}
	}
	// Every task was acknowledged once its result was stored.
	deadline := time.Now().Add(5 * time.Second)
	for q.pendingTasks(t) != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := q.pendingTasks(t); n != 0 {
		t.Errorf("%d tasks still in the queue", n)
	}
}

// A worker cut off from its queue gives up once its grace has passed, and
// then promptly: not after a hello that waits for the lost server, nor after
// trying to store a page it finished in the meantime. A cut-off node whose
// worker lingers holds its pages' sites and its own memory for nothing.
func TestWorkerGivesUpALostQueueAfterItsGrace(t *testing.T) {
	site := testsite.New(10)
	web := httptest.NewServer(site)
	t.Cleanup(func() { site.Close(); web.Close() })
	q := startQueue(t, queue.Job{Fetch: scrape.Config{Timeout: 10 * time.Second}, AckWait: 30 * time.Second, MaxDeliver: 3})
	// The page comes back while the queue is gone, before the grace ends.
	q.publish(t, scrape.Task{ID: 1, URL: web.URL + "/slow/3000/1", Line: 1, Attempt: 1, Listed: true})

	// Longer than HelloInterval, so a hello falls due while cut off.
	const grace = queue.HelloInterval + time.Second
	w, err := New(Config{
		Bootstrap: queue.Bootstrap{Servers: []string{q.url}, Auth: queue.Auth{User: "w", Password: "secret"}, Run: q.run.ID, Node: "n1", Slots: 2},
		Grace:     grace,
		Logger:    testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(t.Context()) }()
	waitUntil(t, 10*time.Second, "the page to be in flight", func() bool { return site.Hits("/slow/3000/1") == 1 })

	q.srv.Shutdown()
	cut := time.Now()
	select {
	case err := <-done:
		took := time.Since(cut)
		if !errors.Is(err, errLost) {
			t.Errorf("Run: %v, want the queue reported lost", err)
		}
		// The slack is for scheduling; a lingering hello or store would
		// add seconds (their own timeouts are 10 s).
		if took > grace+3*time.Second {
			t.Errorf("worker exited %s after its queue went away, grace %s", took.Round(time.Millisecond), grace)
		}
		t.Logf("worker exited %s after its queue went away (grace %s)", took.Round(time.Millisecond), grace)
	case <-time.After(grace + 30*time.Second):
		t.Fatalf("worker still running %s after its queue went away", grace+30*time.Second)
	}
}

// A worker holds a few tasks beyond its slots, so that a slot that frees up
// starts its next page without waiting for a pull; but it never fetches more
// pages at once than it has slots, and a held task is kept alive with
// heartbeats, so it is not handed to another worker while it waits.
func TestWorkerHoldsALookaheadBeyondItsSlots(t *testing.T) {
	const slots, pages = 8, 16
	site := testsite.New(pages)
	web := httptest.NewServer(site)
	t.Cleanup(func() { site.Close(); web.Close() })
	// Pages outlast the ack wait: a held task waits longer than that.
	q := startQueue(t, queue.Job{Fetch: scrape.Config{Timeout: 10 * time.Second}, AckWait: time.Second, MaxDeliver: 3})
	var tasks []scrape.Task
	path := func(i int) string { return "/slow/1500/" + itoa(i) }
	for i := range pages {
		tasks = append(tasks, scrape.Task{ID: uint64(i + 1), URL: web.URL + path(i), Line: i + 1, Attempt: 1, Listed: true})
	}
	q.publish(t, tasks...)
	startWorker(t, q, slots, nil)

	fetching := func() int {
		n := 0
		for i := range pages {
			n += site.Hits(path(i))
		}
		return n
	}
	waitUntil(t, 5*time.Second, "the first pages to be fetched", func() bool { return fetching() == slots })
	held := slots + lookahead(slots)
	waitUntil(t, time.Second, "the lookahead to be taken", func() bool { return q.ackPending(t) == held })
	// Mid-page: the slots are busy, the lookahead waits.
	time.Sleep(500 * time.Millisecond)
	if n := fetching(); n != slots {
		t.Errorf("%d pages fetched at once by %d slots", n, slots)
	}
	if n := q.ackPending(t); n != held {
		t.Errorf("worker holds %d tasks, want its %d slots and a lookahead of %d", n, slots, held-slots)
	}

	got := q.collect(t, pages)
	for _, task := range tasks {
		if r := got[task.ID]; r.Status != 200 || r.Attempts != 1 {
			t.Errorf("task %d: %+v", task.ID, r)
		}
	}
	for i := range pages {
		if h := site.Hits(path(i)); h != 1 {
			t.Errorf("%s fetched %d times: a held task was handed out again", path(i), h)
		}
	}
}

// A slot is free for its next page once the page before is downloaded:
// extracting a page does not hold up the next request.
func TestWorkerFetchesTheNextPageWhileExtracting(t *testing.T) {
	const slots = 8
	// Megabytes of paragraphs: long to extract, a small record.
	var big strings.Builder
	big.WriteString("<!DOCTYPE html><html><head><title>big</title></head><body>\n")
	for big.Len() < 6<<20 {
		big.WriteString("<p>Some <b>text</b> of a long page, and <i>more</i> of it.</p>\n")
	}
	big.WriteString("</body></html>\n")

	var mu sync.Mutex
	arrived := map[string]time.Time{}
	bigGo, slowGo := make(chan struct{}), make(chan struct{})
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived[r.URL.Path] = time.Now()
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch {
		case r.URL.Path == "/big":
			<-bigGo
			_, _ = io.WriteString(w, big.String())
		case strings.HasPrefix(r.URL.Path, "/slow/"):
			<-slowGo
			fallthrough
		default:
			_, _ = io.WriteString(w, "<title>small</title>")
		}
	}))
	var once sync.Once
	unblock := func() { once.Do(func() { close(bigGo); close(slowGo) }) }
	t.Cleanup(func() { unblock(); web.Close() })
	seen := func(path string) bool {
		mu.Lock()
		defer mu.Unlock()
		_, ok := arrived[path]
		return ok
	}

	q := startQueue(t, queue.Job{Fetch: scrape.Config{Timeout: 20 * time.Second}, AckWait: 5 * time.Second, MaxDeliver: 3})
	tasks := []scrape.Task{{ID: 1, URL: web.URL + "/big", Attempt: 1, Listed: true}}
	for i := 2; i <= slots; i++ {
		tasks = append(tasks, scrape.Task{ID: uint64(i), URL: web.URL + "/slow/" + itoa(i), Attempt: 1, Listed: true})
	}
	q.publish(t, tasks...)
	startWorker(t, q, slots, nil)
	waitUntil(t, 5*time.Second, "every slot to be fetching", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(arrived) == slots
	})
	// The next page waits in the worker's lookahead for a slot, which the
	// big page frees as soon as it is downloaded.
	q.publish(t, scrape.Task{ID: slots + 1, URL: web.URL + "/next", Attempt: 1, Listed: true})
	waitUntil(t, 5*time.Second, "the next page to be held", func() bool { return q.ackPending(t) == slots+1 })
	close(bigGo)
	waitUntil(t, 10*time.Second, "the next page to be requested", func() bool { return seen("/next") })
	once.Do(func() { close(slowGo) })

	got := q.collect(t, slots+1)
	r := got[1]
	if r.Status != 200 || r.Title != "big" || r.Bytes < 6<<20 {
		t.Fatalf("big page: status %d, title %q, %d bytes", r.Status, r.Title, r.Bytes)
	}
	// DurationMS is truncated, so end is at or before the true end.
	end := r.FetchedAt.Add(time.Duration(r.DurationMS) * time.Millisecond)
	mu.Lock()
	next := arrived["/next"]
	mu.Unlock()
	if !next.Before(end) {
		t.Errorf("the next page was requested %v after the big page was done (fetched and extracted in %d ms): its slot waited for the extraction",
			next.Sub(end), r.DurationMS)
	}
	for id := range uint64(slots + 1) {
		if got[id+1].Status != 200 {
			t.Errorf("task %d: %+v", id+1, got[id+1])
		}
	}
}

// A worker started by the run gets the run's job in its bootstrap and does
// not need the config bucket, which joiners read.
func TestWorkerTakesTheJobFromItsBootstrap(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<title>"+r.UserAgent()+"</title>")
	}))
	t.Cleanup(web.Close)
	q := startQueue(t, queue.Job{Fetch: scrape.Config{UserAgent: "from-the-bucket"}, AckWait: 5 * time.Second})
	if err := q.js.DeleteKeyValue(t.Context(), q.run.ConfigBucket()); err != nil {
		t.Fatal(err)
	}
	boot := q.bootstrap(1)
	boot.Job = &queue.Job{Fetch: scrape.Config{UserAgent: "from-the-bootstrap"}, AckWait: 5 * time.Second}
	stop, done := launchWorker(t, boot, nil)

	q.publish(t, scrape.Task{ID: 1, URL: web.URL + "/", Attempt: 1, Listed: true})
	if r := q.collect(t, 1)[1]; r.Title != "from-the-bootstrap" {
		t.Errorf("page fetched as %q, want the bootstrap's user agent (record %+v)", r.Title, r)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("worker: %v", err)
	}
}

func (q *testQueue) ackPending(t *testing.T) int {
	t.Helper()
	c, err := q.js.Consumer(t.Context(), q.run.TaskStream(), queue.WorkerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.NumAckPending
}

// A task whose deliveries keep dying with their worker is answered with a
// worker_lost record instead of being fetched again.
func TestWorkerGivesUpOnATaskThatKeepsDying(t *testing.T) {
	site := testsite.New(5)
	srv := httptest.NewServer(site)
	t.Cleanup(func() { site.Close(); srv.Close() })
	q := startQueue(t, queue.Job{AckWait: 500 * time.Millisecond, MaxDeliver: 1})
	q.publish(t, scrape.Task{ID: 1, URL: srv.URL + "/page/1", Attempt: 1, Listed: true})

	// Take the task as a worker that then dies: never ack it.
	cons, err := q.js.Consumer(t.Context(), q.run.TaskStream(), queue.WorkerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range b.Messages() {
	}

	startWorker(t, q, 1, nil)
	r := q.collect(t, 1)[1]
	if r.Error == nil || r.Error.Kind != scrape.KindWorkerLost {
		t.Fatalf("result %+v, want a worker_lost error", r)
	}
	if site.Hits("/page/1") != 0 {
		t.Errorf("the given-up task was fetched")
	}
}

func TestWorkerStops(t *testing.T) {
	q := startQueue(t, queue.Job{AckWait: time.Second})
	t.Run("lifeline closed", func(t *testing.T) {
		gone := make(chan struct{})
		_, done := startWorker(t, q, 1, gone)
		time.Sleep(200 * time.Millisecond)
		close(gone)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("worker ignored the end of its lifeline")
		}
	})
	t.Run("nothing it started outlives Run", func(t *testing.T) {
		// A lifeline that never ends, as a coordinator's that is still
		// there: Run ends by its context, and takes its goroutines along.
		cancel, done := startWorker(t, q, 2, make(chan struct{}))
		time.Sleep(200 * time.Millisecond)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if left := ownGoroutines(); left != "" {
			t.Errorf("goroutines of the worker still running after Run returned:\n%s", left)
		}
	})
	t.Run("coordinator says stop", func(t *testing.T) {
		_, done := startWorker(t, q, 1, nil)
		nc := q.js.Conn()
		deadline := time.After(5 * time.Second)
		for {
			nc.Publish(q.run.ControlSubject(), []byte(queue.ControlStop))
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
				return
			case <-deadline:
				t.Fatal("worker ignored stop")
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

func TestWorkerRefusesWrongCredentials(t *testing.T) {
	q := startQueue(t, queue.Job{})
	w, err := New(Config{Bootstrap: queue.Bootstrap{Servers: []string{q.url}, Auth: queue.Auth{User: "w", Password: "guess"}, Run: q.run.ID}, Grace: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = w.Run(t.Context())
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("Run with a wrong password: %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("refusal took %s: authorization errors must not be retried", time.Since(start))
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// waitUntil polls cond every 20 ms and fails the test if it has not held
// within limit.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ownGoroutines lists the goroutines running this package's code, other than
// tests'.
func ownGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var own []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "scrape/worker.(*") && !strings.Contains(g, "scrape/worker.Test") && !strings.Contains(g, "scrape/worker.launchWorker") {
			own = append(own, g)
		}
	}
	return strings.Join(own, "\n\n")
}

func TestRenderMemory(t *testing.T) {
	tests := []struct {
		worker, run int64
		slots       int
		want        int64
	}{
		{0, 0, 1, 1152 << 20},          // (512 MiB + 256 MiB) * 1.5
		{0, 0, 4, 2304 << 20},          // (512 MiB + 4 * 256 MiB) * 1.5
		{0, 2 << 30, 4, 2 << 30},       // the run's --render-memory
		{1 << 30, 2 << 30, 4, 1 << 30}, // the worker's, over the run's
	}
	for _, tt := range tests {
		if got := renderMemory(tt.worker, tt.run, tt.slots); got != tt.want {
			t.Errorf("renderMemory(%d, %d, %d slots) = %d MiB, want %d MiB", tt.worker, tt.run, tt.slots, got>>20, tt.want>>20)
		}
	}
}

func TestRenderSlotsFor(t *testing.T) {
	tests := []struct {
		avail uint64
		cpus  int
		want  int
	}{
		{512 << 20, 4, 1},  // a Pi: less than the browser's own, still one
		{2 << 30, 4, 2},    // (1 GiB - 512 MiB) / 256 MiB
		{16 << 30, 4, 8},   // memory to spare: two per CPU
		{16 << 30, 16, 30}, // (8 GiB - 512 MiB) / 256 MiB
		{0, 2, 1},
	}
	for _, tt := range tests {
		if got := renderSlotsFor(tt.avail, tt.cpus); got != tt.want {
			t.Errorf("renderSlotsFor(%d MiB, %d CPUs) = %d, want %d", tt.avail>>20, tt.cpus, got, tt.want)
		}
	}
	if n := DefaultRenderSlots(); n < 1 || n > 2*runtime.NumCPU() {
		t.Errorf("DefaultRenderSlots() = %d on %d CPUs", n, runtime.NumCPU())
	}
}

// resultData is the body of a result message as the coordinator reads it
// (queue.ResultData): workers send it compressed.
func resultData(tb testing.TB, m jetstream.Msg) []byte {
	tb.Helper()
	data, err := queue.ResultData(m.Headers(), m.Data(), 8<<20)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}
