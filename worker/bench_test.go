package worker

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scrape-cluster/scrape/internal/testqueue"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// benchQueue is a real JetStream server on a free port with one run set up,
// seen from both sides as in a real run: the coordinator's connection is in
// process, a worker's goes over TCP.
type benchQueue struct {
	srv     *server.Server
	run     queue.Run
	coord   jetstream.JetStream // the coordinator's side
	results jetstream.Consumer
}

func startBenchQueue(b *testing.B, job queue.Job) *benchQueue {
	b.Helper()
	srv := testqueue.Start(b)
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.UserInfo(testqueue.User, testqueue.Password))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	q := &benchQueue{srv: srv, run: queue.Run{ID: "BENCH"}, coord: js}
	if q.results, err = queue.CreateRun(context.Background(), js, q.run, job, queue.Streams{MaxMsg: 1 << 20}); err != nil {
		b.Fatal(err)
	}
	return q
}

// workerSide connects over TCP as a worker process does.
func (q *benchQueue) workerSide(b *testing.B) (jetstream.JetStream, jetstream.Consumer) {
	b.Helper()
	nc, err := nats.Connect(q.srv.ClientURL(), nats.UserInfo(testqueue.User, testqueue.Password))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	cons, err := js.Consumer(context.Background(), q.run.TaskStream(), queue.WorkerConsumer)
	if err != nil {
		b.Fatal(err)
	}
	return js, cons
}

// benchResult is a record of the size a typical article page makes (about
// 2 KB of JSON: a title, a description, eight headings, twenty links).
func benchResult(url string) scrape.Result {
	r := scrape.Result{
		URL: url, FinalURL: url, Status: 200, ContentType: "text/html; charset=utf-8",
		Title:       "Field notes on distributed crawling | The Example Journal",
		Description: "How a small cluster fetches millions of pages without drowning: queues, limits and timeouts.",
		Bytes:       12 << 10, DurationMS: 3, FetchedAt: time.Now().UTC(), Node: "localhost", Worker: "bench:1",
	}
	for i := range 8 {
		r.Headings = append(r.Headings, "Section "+strconv.Itoa(i)+": where the time went")
	}
	for i := range 20 {
		r.Links = append(r.Links, "http://127.0.0.1:8080/archive/2024/02/page/"+strconv.Itoa(i*97))
	}
	return r
}

// BenchmarkTaskRoundTrip is the queue's cost per task, one task at a time:
// the coordinator publishes a task and waits for JetStream to store it; a
// worker fetches it, publishes its result (EncodeResult) and waits for that
// to be stored, then acks the task; the coordinator fetches the result and
// acks it. No HTTP: this is the overhead every page pays on top of the fetch.
func BenchmarkTaskRoundTrip(b *testing.B) {
	q := startBenchQueue(b, queue.Job{AckWait: 15 * time.Second})
	wjs, tasks := q.workerSide(b)
	ctx := context.Background()
	res := benchResult("http://127.0.0.1:8080/page/1")

	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id := uint64(i + 1)
		// Coordinator: release the task.
		tm, err := queue.EncodeTasks(q.run, []scrape.Task{{ID: id, URL: res.URL, Line: i + 1, Attempt: 1, Listed: true}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := q.coord.PublishMsg(ctx, tm); err != nil {
			b.Fatal(err)
		}
		// Worker: take it, answer it, ack it.
		batch, err := tasks.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			tasks, err := queue.DecodeTasks(msg.Data())
			if err != nil {
				b.Fatal(err)
			}
			var out queue.ResultBatch
			out.Add(queue.EncodeResult(tasks[0], &res, 1<<20))
			if _, err := wjs.PublishMsg(ctx, out.Msg(q.run, queue.NewWorkerID())); err != nil {
				b.Fatal(err)
			}
			if err := msg.Ack(); err != nil {
				b.Fatal(err)
			}
		}
		if got != 1 {
			b.Fatalf("task %d: worker got %d messages (%v)", id, got, batch.Error())
		}
		// Coordinator: read the result, ack it.
		rb, err := q.results.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		got = 0
		for msg := range rb.Messages() {
			got++
			var task uint64
			err := queue.DecodeResults(q.run, msg.Subject(), resultData(b, msg), func(meta queue.ResultMeta, _ *scrape.Result) { task = meta.Task })
			if err != nil || task != id {
				b.Fatalf("result of task %d, %v; want task %d", task, err, id)
			}
			if err := msg.Ack(); err != nil {
				b.Fatal(err)
			}
		}
		if got != 1 {
			b.Fatalf("task %d: coordinator got %d results (%v)", id, got, rb.Error())
		}
	}
}

// BenchmarkWorkerPipeline runs the real Worker with 64 slots against an
// httptest page of about 12 KB, fed and drained the way the coordinator does
// it (a window of 256 released tasks, results read 256 at a time and acked
// after each batch). It measures the whole per-page cost in one process —
// queue, fetch, extraction, encoding — so that a CPU profile of it shows the
// balance between them:
//
//	go test ./worker -run '^$' -bench WorkerPipeline -benchtime 5000x -cpuprofile cpu.out
func BenchmarkWorkerPipeline(b *testing.B) {
	const slots, window, batch = 64, 256, 256
	page := benchPage()
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	}))
	b.Cleanup(site.Close)
	q := startBenchQueue(b, queue.Job{Fetch: scrape.Config{Timeout: 10 * time.Second}, AckWait: 15 * time.Second, MaxDeliver: 5})

	w, err := New(Config{
		Bootstrap: queue.Bootstrap{Servers: []string{q.srv.ClientURL()}, Auth: queue.Auth{User: "w", Password: "secret"}, Run: q.run.ID, Node: "n1", Slots: slots},
		Grace:     5 * time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := w.Run(ctx); err != nil {
			b.Error(err)
		}
	})
	b.Cleanup(func() { cancel(); wg.Wait() })

	tokens := make(chan struct{}, window)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	b.ResetTimer()
	feedErr := make(chan error, 1)
	go func() {
		for i := range b.N {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				feedErr <- ctx.Err()
				return
			}
			m, err := queue.EncodeTasks(q.run, []scrape.Task{{ID: uint64(i + 1), URL: site.URL + "/article", Line: i + 1, Attempt: 1, Listed: true}})
			if err == nil {
				_, err = q.coord.PublishMsg(ctx, m)
			}
			if err != nil {
				feedErr <- err
				return
			}
		}
		feedErr <- nil
	}()
	seen := make([]bool, b.N+1)
	deadline := time.Now().Add(time.Duration(b.N)*time.Second + time.Minute)
	for done := 0; done < b.N; {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d results in time", done, b.N)
		}
		rb, err := q.results.Fetch(batch, jetstream.FetchMaxWait(250*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		var acks []jetstream.Msg
		for msg := range rb.Messages() {
			acks = append(acks, msg)
			err := queue.DecodeResults(q.run, msg.Subject(), resultData(b, msg), func(meta queue.ResultMeta, r *scrape.Result) {
				if meta.Kind != "" {
					b.Errorf("task %d: %s: %s", meta.Task, meta.Kind, meta.Message)
				}
				if meta.Task == 0 || meta.Task > uint64(b.N) || seen[meta.Task] {
					return // a duplicate: first one wins, as in the coordinator
				}
				seen[meta.Task] = true
				done++
				<-tokens
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		for _, m := range acks {
			_ = m.Ack()
		}
	}
	b.StopTimer()
	if err := <-feedErr; err != nil {
		b.Fatal(err)
	}
}

// benchPage is an article page of about 12 KB with a title, a description,
// headings and twenty links, like the pages the bench/ harness serves.
func benchPage() []byte {
	var s strings.Builder
	s.WriteString(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Field notes, part 7 | The Bench Journal</title>
<meta name="description" content="What we measured, what surprised us and what we would do differently.">
<link rel="stylesheet" href="/assets/site.css"><script>window.dataLayer=window.dataLayer||[];</script></head><body>
<header><nav>`)
	for i := range 5 {
		fmt.Fprintf(&s, `<a href="/page/%d">Section %d</a> `, i, i)
	}
	s.WriteString("</nav></header><main><article><h1>Field notes, part 7</h1>\n")
	words := strings.Fields("queue worker node fetch page link timeout retry slot window latency throughput memory the a of to and in that is for it with as")
	for p := range 18 {
		if p%6 == 0 {
			fmt.Fprintf(&s, "<h2>Part %d</h2>\n", p/6)
		}
		s.WriteString("<p>")
		for w := range 100 {
			s.WriteString(words[(p*31+w*7)%len(words)])
			s.WriteByte(' ')
		}
		if p < 10 {
			fmt.Fprintf(&s, `<a href="/page/%d">more</a>`, 100+p)
		}
		s.WriteString("</p>\n")
	}
	s.WriteString("</article></main><footer>")
	for i := range 5 {
		fmt.Fprintf(&s, `<a href="http://example.org/archive/%d">Archive %d</a> `, i, i)
	}
	s.WriteString("</footer></body></html>\n")
	return []byte(s.String())
}
