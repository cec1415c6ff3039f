package coordinator

import (
	"encoding/json"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testqueue"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// Page times of a fast and a slow node, forty times apart.
const (
	fastPage = 50 * time.Millisecond
	slowPage = 2 * time.Second
)

// answeredBy is e's successful answer from node, whose page took took.
func answeredBy(e *entry, node string, took time.Duration) queue.ResultMeta {
	m := ok(e)
	m.Node, m.Took = node, took
	return m
}

// endOfRun loads n URLs of host a into f, releases them all at t0 (stepping
// by cfg.Delay when the host is spaced), has the nodes answer all but the
// last left of them, the first three by "slow" taking slowTook and the rest
// by "fast" taking fastPage, and returns the tasks still in flight and the
// time of the last release.
func endOfRun(t *testing.T, f *frontier, n, left int, slowTook time.Duration, t0 time.Time) ([]*entry, time.Time) {
	t.Helper()
	load(t, f, hostURLs{"a", n})
	var released []*entry
	now := t0
	for range 10 * n {
		released = append(released, pickAt(f, now)...)
		if len(released) == n {
			break
		}
		now = now.Add(max(f.cfg.Delay, time.Millisecond))
	}
	if len(released) != n {
		t.Fatalf("released %d of %d tasks", len(released), n)
	}
	for i, e := range released[:n-left] {
		node, took := "fast", fastPage
		if i < 3 {
			node, took = "slow", slowTook
		}
		if v, _ := f.answer(answeredBy(e, node, took), now); v != write {
			t.Fatalf("answer %d: verdict %d, want write", i, v)
		}
	}
	return released[n-left:], now
}

// At the end of a run, a task in flight four times as long as the fastest
// node's pages take is offered again, when one node is that much slower than
// another, within its host's limit and pace, once per attempt.
func TestFrontierReoffer(t *testing.T) {
	t0 := time.Now()
	tests := []struct {
		name     string
		cfg      frontierConfig
		n, left  int
		slowTook time.Duration
		moreFeed bool // a task still waits to be released
		setup    func(*frontier)
		at       time.Duration // after the last release
		want     int           // copies
	}{
		{"the slow node's task, at the end", frontierConfig{PerHost: 8, Slots: 16}, 8, 2, slowPage, false, nil, time.Second, 2},
		{"not before the floor", frontierConfig{PerHost: 8, Slots: 16}, 8, 2, slowPage, false, nil, reofferFloor - time.Millisecond, 0},
		{"as many as places are idle", frontierConfig{PerHost: 16, Slots: 5}, 10, 4, slowPage, false, nil, time.Second, 1},
		{"none until two nodes' speeds are known", frontierConfig{PerHost: 8, Slots: 16}, 5, 1, slowPage, false, nil, time.Minute, 0},
		{"none while every place is busy", frontierConfig{PerHost: 8, Slots: 2}, 8, 2, slowPage, false, nil, time.Second, 0},
		{"none while tasks wait to be released", frontierConfig{PerHost: 8, Slots: 16}, 8, 2, slowPage, true, nil, time.Second, 0},
		{"none among nodes of one speed, however slow", frontierConfig{PerHost: 8, Slots: 16}, 8, 2, fastPage, false, nil, time.Minute, 0},
		{"none beyond the host's limit", frontierConfig{PerHost: 2, Slots: 16}, 2, 2, slowPage, false, func(f *frontier) {
			// Speeds known from another host's pages.
			f.took["fast"], f.took["slow"] = &pageTimes{}, &pageTimes{}
			for range tookLeast {
				f.took["fast"].add(fastPage)
				f.took["slow"].add(slowPage)
			}
		}, time.Minute, 0},
		{"none to a spaced host", frontierConfig{PerHost: 8, Slots: 16, Delay: time.Second}, 8, 2, slowPage, false, nil, time.Minute, 0},
		{"none to a host whose breaker is open", frontierConfig{PerHost: 8, Slots: 16}, 8, 2, slowPage, false, func(f *frontier) {
			f.hosts["a"].brk.state = hostSuspect
		}, time.Minute, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Window = 64
			f, _ := newTestFrontier(t, tt.cfg)
			if tt.setup != nil && tt.n == tt.left {
				tt.setup(f) // before: the host's tasks are all in flight
			}
			left, last := endOfRun(t, f, tt.n, tt.left, tt.slowTook, t0)
			if tt.setup != nil && tt.n != tt.left {
				tt.setup(f)
			}
			if tt.moreFeed {
				f.mu.Lock()
				u, _ := url.Parse("http://a/more")
				f.enqueueLocked(scrape.Task{ID: 1000, URL: u.String(), Attempt: 1}, u)
				f.mu.Unlock()
			}
			if copies, _ := f.reoffer(last); len(copies) > 0 {
				t.Fatalf("%d copies as the places became spare, want none yet", len(copies))
			}
			copies, _ := f.reoffer(last.Add(tt.at))
			if len(copies) != tt.want {
				for _, e := range left {
					t.Logf("in flight: task %d released %s, host in flight %d of %d", e.task.ID, e.sent.Sub(t0), e.host.inflight, e.host.rate.limit)
				}
				t.Fatalf("%d copies, want %d", len(copies), tt.want)
			}
			for i, c := range copies {
				// The longest in flight first; the delivery as it was.
				if c.ID != left[i].task.ID || c.Attempt != left[i].task.Attempt || c.Token != left[i].task.Token {
					t.Errorf("copy %d is task %d attempt %d, want task %d attempt %d with its token", i, c.ID, c.Attempt, left[i].task.ID, left[i].task.Attempt)
				}
			}
			if again, _ := f.reoffer(last.Add(tt.at + time.Minute)); len(copies) > 0 && len(again) > 0 {
				t.Errorf("offered again twice: %d more copies", len(again))
			}
		})
	}
}

// The copies' wait: reoffer says how long until the first task in flight is
// due, counted from when the cluster had places to spare.
func TestFrontierReofferWaits(t *testing.T) {
	f, _ := newTestFrontier(t, frontierConfig{Window: 64, PerHost: 8, Slots: 16})
	t0 := time.Now()
	_, last := endOfRun(t, f, 8, 2, slowPage, t0)
	spare := last.Add(time.Hour) // long after the release: the tasks waited in the queue
	copies, wait := f.reoffer(spare)
	if len(copies) != 0 || wait != reofferFloor {
		t.Fatalf("at the first spare place: %d copies, wait %s; want none, %s", len(copies), wait, reofferFloor)
	}
	if copies, _ := f.reoffer(spare.Add(wait)); len(copies) != 2 {
		t.Fatalf("after the wait: %d copies, want 2", len(copies))
	}
}

// The first answer to a delivery offered twice is written, the other
// dropped, and the copy no longer counts against its host; a retry of the
// task may be offered again.
func TestFrontierFirstAnswerWins(t *testing.T) {
	tests := []struct {
		name      string
		first     queue.ResultMeta
		firstWant verdict
	}{
		{"the copy answers first", queue.ResultMeta{Node: "fast", Took: fastPage, Status: 200}, write},
		// A timeout, not a 503: a 503 slows the host, which then gets no copies.
		{"the copy's answer is retried", queue.ResultMeta{Node: "fast", Took: fastPage, Kind: scrape.KindTimeout}, retry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := newTestFrontier(t, frontierConfig{Window: 64, PerHost: 8, Slots: 16, Retries: 2, Backoff: time.Millisecond})
			t0 := time.Now()
			left, last := endOfRun(t, f, 8, 1, slowPage, t0)
			e := left[0]
			f.reoffer(last) // places spare from here on
			copies, _ := f.reoffer(last.Add(time.Second))
			if len(copies) != 1 {
				t.Fatalf("%d copies, want 1", len(copies))
			}
			if got := e.host.inflight; got != 2 {
				t.Errorf("host in flight with the copy: %d, want 2", got)
			}
			m := tt.first
			m.Task, m.Attempt, m.Token = e.task.ID, copies[0].Attempt, copies[0].Token
			if v, _ := f.answer(m, last.Add(time.Second)); v != tt.firstWant {
				t.Fatalf("first answer: verdict %d, want %d", v, tt.firstWant)
			}
			if e.host.inflight != 0 || f.copying != 0 {
				t.Errorf("after the first answer: host in flight %d, copies in flight %d; want 0, 0", e.host.inflight, f.copying)
			}
			if v, _ := f.answer(answeredBy(&entry{task: copies[0]}, "slow", slowPage), last.Add(2*time.Second)); v != drop {
				t.Errorf("the slow node's answer: verdict %d, want drop", v)
			}
			if tt.firstWant != retry {
				return
			}
			retried := pickAt(f, last.Add(time.Minute))
			if len(retried) != 1 || retried[0].task.Attempt != 2 {
				t.Fatalf("retry released: %v, want task %d attempt 2", keys(retried), e.task.ID)
			}
			if again, _ := f.reoffer(last.Add(2 * time.Minute)); len(again) != 1 || again[0].Attempt != 2 {
				t.Errorf("the retry offered again: %d copies, want 1 of attempt 2", len(again))
			}
		})
	}
}

func TestPageTimesTypical(t *testing.T) {
	tests := []struct {
		name  string
		pages []time.Duration
		want  time.Duration
	}{
		{"too few to tell", []time.Duration{time.Second, time.Second}, 0},
		{"the median", []time.Duration{time.Second, 3 * time.Second, 2 * time.Second}, 2 * time.Second},
		{"of the last tookKept", append(repeat(time.Minute, tookKept), repeat(time.Second, tookKept/2+1)...), time.Second},
		{"a millisecond at least", []time.Duration{0, 0, 0}, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p pageTimes
			for _, d := range tt.pages {
				p.add(d)
			}
			if got := p.typical(); got != tt.want {
				t.Errorf("typical %s, want %s", got, tt.want)
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = d
	}
	return s
}

// Tasks sent together, released or offered again at the end, go to the
// subject of their kind: a render task among plain ones reaches only the
// workers that render, and a plain one among render tasks every worker.
func TestFrontierSendSplitsByKind(t *testing.T) {
	srv := testqueue.Start(t)
	js := testqueue.Connect(t, srv)
	run := queue.Run{ID: "S"}
	createTestRun(t, js, run)
	f, _ := newTestFrontier(t, frontierConfig{Window: 8, PerHost: 8, Slots: 8})
	f.js, f.run = js, run
	tasks := []scrape.Task{
		{ID: 1, Attempt: 1, URL: "http://a/1"},
		{ID: 2, Attempt: 1, URL: "http://a/2", Render: true},
		{ID: 3, Attempt: 1, URL: "http://a/3"},
		{ID: 4, Attempt: 1, URL: "http://a/4", Render: true},
	}
	for _, again := range []bool{false, true} {
		if err := f.send(t.Context(), slices.Clone(tasks), again); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := js.Stream(t.Context(), run.TaskStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 4 {
		t.Fatalf("%d messages, want 4: each send in two, by kind", info.State.Msgs)
	}
	for seq := uint64(1); seq <= info.State.Msgs; seq++ {
		m, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		var got []scrape.Task
		if err := json.Unmarshal(m.Data, &got); err != nil {
			t.Fatal(err)
		}
		render := m.Subject == run.RenderSubject()
		for _, task := range got {
			if task.Render != render {
				t.Errorf("task %d (render %v) on %s", task.ID, task.Render, m.Subject)
			}
		}
	}
}
