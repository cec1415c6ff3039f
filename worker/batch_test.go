package worker

import (
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// A batch delivered again holds tasks the coordinator may have answers for
// already: the worker asks which are open and fetches only those, then
// acknowledges the whole batch.
func TestWorkerRedeliveredBatchFetchesOnlyOpenTasks(t *testing.T) {
	site := testsite.New(3)
	web := httptest.NewServer(site)
	t.Cleanup(func() { site.Close(); web.Close() })
	q := startQueue(t, queue.Job{Fetch: scrape.Config{Timeout: 5 * time.Second}, AckWait: 5 * time.Second, MaxDeliver: 3, TaskBatch: 3})

	var tasks []scrape.Task
	for i := range 3 {
		tasks = append(tasks, scrape.Task{ID: uint64(i + 1), URL: web.URL + "/page/" + itoa(i), Line: i + 1, Attempt: 1, Token: "tok" + itoa(i), Listed: true})
	}
	m, err := queue.EncodeTasks(q.run, tasks)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	// A first worker takes the batch and hands it back: its next delivery
	// is its second.
	cons, err := q.js.Consumer(t.Context(), q.run.TaskStream(), queue.WorkerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for msg := range b.Messages() {
		if err := msg.Nak(); err != nil {
			t.Fatal(err)
		}
	}

	// The coordinator has the second task's answer.
	var mu sync.Mutex
	var asked [][]byte
	sub, err := q.js.Conn().Subscribe(q.run.OpenSubject(), func(m *nats.Msg) {
		mu.Lock()
		asked = append(asked, m.Data)
		mu.Unlock()
		reply, err := queue.AnswerOpenQuery(m.Data, func(id uint64, attempt int, token string) bool {
			return id != 2 && attempt == 1 && token == "tok"+itoa(int(id-1))
		})
		if err != nil {
			t.Error(err)
		}
		_ = m.Respond(reply)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })

	startWorker(t, q, 3, nil)
	got := q.collect(t, 2)
	if _, ok := got[2]; ok {
		t.Error("the answered task was answered again")
	}
	for _, id := range []uint64{1, 3} {
		if r := got[id]; r.Status != 200 || r.Error != nil {
			t.Errorf("task %d: %+v", id, r)
		}
	}
	if n := site.Hits("/page/1"); n != 0 {
		t.Errorf("the answered task's page was fetched %d times", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for q.pendingTasks(t) != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := q.pendingTasks(t); n != 0 {
		t.Errorf("%d task messages still in the queue: the batch was not acknowledged", n)
	}
	if extra, err := q.results.Fetch(1, jetstream.FetchMaxWait(300*time.Millisecond)); err == nil {
		for m := range extra.Messages() {
			t.Errorf("a further result message: %q", m.Data())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 1 {
		t.Errorf("asked %d times which tasks are open, want once", len(asked))
	}
}

// A task offered again at the end of a run (queue.EncodeTasksAgain) is for
// another node than the one fetching it: a worker that holds the task leaves
// the copy, and the next worker asks whether it is still open, fetches it,
// and answers as the first would. A copy of a task already answered is
// acknowledged unfetched.
func TestWorkerLeavesACopyOfATaskItHolds(t *testing.T) {
	site := testsite.New(3)
	web := httptest.NewServer(site)
	t.Cleanup(func() { site.Close(); web.Close() })
	q := startQueue(t, queue.Job{Fetch: scrape.Config{Timeout: 10 * time.Second}, AckWait: 10 * time.Second, MaxDeliver: 3, TaskBatch: 1})
	const slowPath = "/slow/1500/1"
	held := scrape.Task{ID: 1, URL: web.URL + slowPath, Line: 1, Attempt: 1, Token: "tok1", Listed: true}
	answered := scrape.Task{ID: 2, URL: web.URL + "/page/2", Line: 2, Attempt: 1, Token: "tok2", Listed: true}
	var mu sync.Mutex
	asked := map[uint64]int{}
	sub, err := q.js.Conn().Subscribe(q.run.OpenSubject(), func(m *nats.Msg) {
		reply, err := queue.AnswerOpenQuery(m.Data, func(id uint64, attempt int, token string) bool {
			mu.Lock()
			asked[id]++
			mu.Unlock()
			return id == held.ID && attempt == 1 && token == held.Token
		})
		if err != nil {
			t.Error(err)
		}
		_ = m.Respond(reply)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	again := func(task scrape.Task) {
		t.Helper()
		m, err := queue.EncodeTasksAgain(q.run, []scrape.Task{task})
		if err != nil {
			t.Fatal(err)
		}
		if !queue.Again(m.Header) {
			t.Fatal("a copy's headers do not say it is one")
		}
		if _, err := q.js.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}

	// n1 has a place to spare while it fetches the slow page.
	q.publish(t, held)
	startWorker(t, q, 2, nil)
	waitUntil(t, 5*time.Second, "n1 fetching the slow page", func() bool { return site.Hits(slowPath) == 1 })
	again(held)
	time.Sleep(300 * time.Millisecond) // n1 has had the copy, and left it
	boot := q.bootstrap(2)
	boot.Node = "n2"
	launchWorker(t, boot, nil)

	byNode := map[string]int{}
	deadline := time.Now().Add(10 * time.Second)
	for n := 0; n < 2 && time.Now().Before(deadline); {
		b, err := q.results.Fetch(2-n, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			err := queue.DecodeResults(q.run, m.Subject(), resultData(t, m), func(meta queue.ResultMeta, r *scrape.Result) {
				if meta.Task != held.ID || meta.Attempt != 1 || meta.Token != held.Token || r.Status != 200 {
					t.Errorf("result %+v for task %d attempt %d, want task %d's delivery answered", r, meta.Task, meta.Attempt, held.ID)
				}
				byNode[r.Node]++
				n++
			})
			if err != nil {
				t.Fatal(err)
			}
			m.Ack()
		}
	}
	if byNode["n1"] != 1 || byNode["n2"] != 1 {
		t.Errorf("answers by node %v, want one from n1 (the first offer) and one from n2 (the copy)", byNode)
	}
	if n := site.Hits(slowPath); n != 2 {
		t.Errorf("the slow page was fetched %d times, want twice: once by each node", n)
	}

	// A copy of a task the coordinator has an answer for.
	again(answered)
	waitUntil(t, 5*time.Second, "the copy of an answered task acknowledged", func() bool { return q.pendingTasks(t) == 0 })
	if n := site.Hits("/page/2"); n != 0 {
		t.Errorf("the answered task's page was fetched %d times", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if asked[answered.ID] == 0 {
		t.Error("the worker did not ask whether the answered task was open")
	}
}
