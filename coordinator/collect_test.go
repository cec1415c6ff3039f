package coordinator

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scrape-cluster/scrape/internal/testqueue"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// TestCollectorBatches sends result messages as workers would, through a
// real JetStream, to a frontier with tasks delivered to worker A: every task
// gets one record, whatever a message holds besides its answer.
func TestCollectorBatches(t *testing.T) {
	const workerA, workerB = "wa", "wb"
	srv := testqueue.Start(t)
	js := testqueue.Connect(t, srv)
	// answer is a frame for the i-th task released; forge replaces its
	// token, as a worker that was not given the task must.
	type answer struct {
		task  int
		forge bool
	}
	tests := []struct {
		name     string
		sender   string
		messages [][]answer
		garbage  bool
		written  []int // tasks with a record
		rejected int
	}{
		{"a batch of answers", workerA, [][]answer{{{task: 0}, {task: 1}, {task: 2}}}, false, []int{0, 1, 2}, 0},
		{"a duplicate in a batch", workerA, [][]answer{{{task: 0}, {task: 0}, {task: 1}}}, false, []int{0, 1}, 0},
		{"a duplicate in the next batch", workerA, [][]answer{{{task: 0}}, {{task: 0}, {task: 2}}}, false, []int{0, 2}, 0},
		{"another worker's forged answer among its real one", workerB, [][]answer{{{task: 1, forge: true}}}, false, nil, 1},
		{"a forged answer beside real ones", workerA, [][]answer{{{task: 0}, {task: 1, forge: true}, {task: 2}}}, false, []int{0, 2}, 1},
		{"not a batch of results", workerA, nil, true, nil, 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := queue.Run{ID: "C" + string(rune('A'+i))}
			cons := createTestRun(t, js, run)
			f, snk := newTestFrontier(t, frontierConfig{Window: 8, PerHost: 8, Slots: 8})
			load(t, f, hostURLs{"a", 3})
			released, _, _ := f.pick(time.Now())
			if len(released) != 3 {
				t.Fatalf("released %d tasks, want 3", len(released))
			}
			for _, msg := range tt.messages {
				var b queue.ResultBatch
				for _, a := range msg {
					task := released[a.task].task
					if a.forge {
						task.Token = "0123456789abcdef01234567"
					}
					b.Add(queue.EncodeResult(task, &scrape.Result{URL: "http://elsewhere/", Title: "t", Status: 200}, 0))
				}
				if _, err := js.PublishMsg(t.Context(), b.Msg(run, tt.sender)); err != nil {
					t.Fatal(err)
				}
			}
			if tt.garbage {
				if _, err := js.Publish(t.Context(), run.ResultSubject(tt.sender), []byte(`{"url":"http://x/"}`)); err != nil {
					t.Fatal(err)
				}
			}
			c := collectBatches(t, run, cons, f, snk, 5)
			recs := snk.w.(*memWriter).recs
			if len(recs) != len(tt.written) {
				t.Fatalf("%d records, want %d: %s", len(recs), len(tt.written), recs)
			}
			for j, k := range tt.written {
				var r scrape.Result
				if err := json.Unmarshal(recs[j], &r); err != nil {
					t.Fatal(err)
				}
				// The record is the task's, not what the worker claimed.
				want := released[k].task
				if r.URL != want.URL || r.Line != want.Line || r.Node != "node-"+tt.sender || r.Title != "t" {
					t.Errorf("record %d: %+v, want task %+v from node-%s", j, r, want, tt.sender)
				}
			}
			if got := c.rejected.count(); got != tt.rejected {
				t.Errorf("rejected %d, want %d", got, tt.rejected)
			}
			if got := f.outstanding(); got != 3-len(tt.written) {
				t.Errorf("%d tasks outstanding, want %d", got, 3-len(tt.written))
			}
		})
	}
}

// TestFrontierOpen: a worker holding a batch again learns which of its
// tasks still wait for an answer, and only for tasks it holds the tokens of.
func TestFrontierOpen(t *testing.T) {
	f, _ := newTestFrontier(t, frontierConfig{Window: 8, PerHost: 8, Slots: 8})
	load(t, f, hostURLs{"a", 3})
	released, _, _ := f.pick(time.Now())
	if v, _ := f.answer(ok(released[1]), time.Now()); v != write {
		t.Fatalf("answer: verdict %d", v)
	}
	tasks := []scrape.Task{released[0].task, released[1].task, released[2].task}
	stale := released[2].task
	stale.Attempt++
	forged := released[0].task
	forged.Token = "0123456789abcdef01234567"
	tasks = append(tasks, stale, forged, scrape.Task{ID: 999, Attempt: 1})
	reply, err := queue.AnswerOpenQuery(queue.EncodeOpenQuery(tasks), f.open)
	if err != nil {
		t.Fatal(err)
	}
	if string(reply) != "101000" {
		t.Errorf("open %q, want 101000 (the answered, another attempt's, a forged token's and an unknown task closed)", reply)
	}
	open := queue.OpenTasks(tasks, reply)
	if len(open) != 2 || open[0].ID != released[0].task.ID || open[1].ID != released[2].task.ID {
		t.Errorf("open tasks %+v", open)
	}
	if _, err := queue.AnswerOpenQuery([]byte("{"), f.open); err == nil {
		t.Error("an unreadable query was answered")
	}
}

// TestCollectorData: a record keeps the data a worker sent only when the run
// asked for it (--structured), within scrape.MaxData and as JSON; otherwise
// the record is written without it, and the sender is counted.
func TestCollectorData(t *testing.T) {
	srv := testqueue.Start(t)
	js := testqueue.Connect(t, srv)
	valid := `{"jsonld":[{"@type":"Thing"}]}`
	big := `{"jsonld":["` + strings.Repeat("x", scrape.MaxData) + `"]}`
	tests := []struct {
		name       string
		structured bool
		data       string
		kept       bool
	}{
		{"asked for", true, valid, true},
		{"not asked for", false, valid, false},
		{"no JSON", true, `{"jsonld":`, false},
		{"too big", true, big, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := queue.Run{ID: "D" + string(rune('A'+i))}
			cons := createTestRun(t, js, run)
			f, snk := newTestFrontier(t, frontierConfig{Window: 8, PerHost: 8, Slots: 8, Structured: tt.structured})
			load(t, f, hostURLs{"a", 1})
			released, _, _ := f.pick(time.Now())
			var b queue.ResultBatch
			b.Add(queue.EncodeResult(released[0].task, &scrape.Result{Title: "t", Status: 200, Data: []byte(tt.data)}, 0))
			if _, err := js.PublishMsg(t.Context(), b.Msg(run, "wa")); err != nil {
				t.Fatal(err)
			}
			c := collectBatches(t, run, cons, f, snk, 3)
			recs := snk.w.(*memWriter).recs
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1", len(recs))
			}
			var r scrape.Result
			if err := json.Unmarshal(recs[0], &r); err != nil {
				t.Fatal(err)
			}
			if (r.Data != nil) != tt.kept || r.Title != "t" {
				t.Errorf("record %s: data kept %v, want %v", recs[0], r.Data != nil, tt.kept)
			}
			if got, want := c.rejected.count(), map[bool]int{true: 0, false: 1}[tt.kept]; got != want {
				t.Errorf("rejected %d, want %d", got, want)
			}
		})
	}
}

// TestCollectorCompressed: a compressed batch is written as a plain one
// would be, and one whose compression is a lie (a size past the queue's
// limit, a cut body, an encoding no build knows) is rejected whole, its
// tasks left waiting for another delivery.
func TestCollectorCompressed(t *testing.T) {
	srv := testqueue.Start(t)
	js := testqueue.Connect(t, srv)
	tests := []struct {
		name string
		// spoil changes the compressed message; nil sends it as it is.
		spoil    func(m *nats.Msg)
		written  int
		rejected int
	}{
		{"compressed", nil, 3, 0},
		{"claims more than the queue's limit", func(m *nats.Msg) { m.Data = binary.AppendUvarint(nil, maxPayload+1) }, 0, 1},
		{"cut short", func(m *nats.Msg) { m.Data = m.Data[:len(m.Data)/2] }, 0, 1},
		{"an unknown encoding", func(m *nats.Msg) { m.Header.Set(queue.HeaderEncoding, "zstd") }, 0, 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := queue.Run{ID: "Z" + string(rune('A'+i))}
			cons := createTestRun(t, js, run)
			f, snk := newTestFrontier(t, frontierConfig{Window: 8, PerHost: 8, Slots: 8})
			load(t, f, hostURLs{"a", 3})
			released, _, _ := f.pick(time.Now())
			var b queue.ResultBatch
			page := &scrape.Result{Title: "t", Status: 200}
			for k := range 50 {
				page.Links = append(page.Links, fmt.Sprintf("http://a/section/page/%d", k))
			}
			for _, e := range released {
				b.Add(queue.EncodeResult(e.task, page, 0))
			}
			m := b.Msg(run, "wa")
			queue.Compress(m, nil)
			if m.Header.Get(queue.HeaderEncoding) == "" {
				t.Fatal("the batch was not compressed")
			}
			if tt.spoil != nil {
				tt.spoil(m)
			}
			if _, err := js.PublishMsg(t.Context(), m); err != nil {
				t.Fatal(err)
			}
			c := collectBatches(t, run, cons, f, snk, 3)
			recs := snk.w.(*memWriter).recs
			if len(recs) != tt.written {
				t.Fatalf("%d records, want %d", len(recs), tt.written)
			}
			for j, rec := range recs {
				var r scrape.Result
				if err := json.Unmarshal(rec, &r); err != nil {
					t.Fatal(err)
				}
				if r.URL != released[j].task.URL || len(r.Links) != 50 || r.Links[49] != "http://a/section/page/49" {
					t.Errorf("record %d: %s", j, rec)
				}
			}
			if got := c.rejected.count(); got != tt.rejected {
				t.Errorf("rejected %d, want %d", got, tt.rejected)
			}
			if got := f.outstanding(); got != 3-tt.written {
				t.Errorf("%d tasks outstanding, want %d", got, 3-tt.written)
			}
		})
	}
}

// collectBatches runs a collector over the run's results for n pulls of
// 100 ms, into f and snk, and returns it for its counts.
func collectBatches(t *testing.T, run queue.Run, cons jetstream.Consumer, f *frontier, snk *sink, n int) *collector {
	t.Helper()
	c := &collector{runID: run, cons: cons, frontier: f, sink: snk, log: slog.New(slog.DiscardHandler),
		nodeOf: func(w string) string { return "node-" + w }}
	for range n {
		if _, err := c.batch(t.Context(), 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// createTestRun makes run's streams in memory on js, with a minute's
// AckWait, and returns the coordinator's consumer of its results.
func createTestRun(t *testing.T, js jetstream.JetStream, run queue.Run) jetstream.Consumer {
	t.Helper()
	cons, err := queue.CreateRun(t.Context(), js, run, queue.Job{AckWait: time.Minute}, queue.Streams{MaxMsg: 1 << 20, Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	return cons
}
