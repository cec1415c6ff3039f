package coordinator

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/output"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// memWriter is an output in memory.
type memWriter struct {
	recs  [][]byte
	bytes int64
}

func (w *memWriter) Write(b []byte) error {
	w.recs = append(w.recs, append([]byte(nil), b...))
	w.bytes += int64(len(b)) + 1
	return nil
}
func (w *memWriter) Flush() error    { return nil }
func (w *memWriter) Pos() output.Pos { return output.Pos{Offset: w.bytes, Records: len(w.recs)} }

// newTestFrontier is a frontier with no queue behind it: pick and answer are
// its scheduling, and publishing is dispatch's business. Its sink writes to
// memory and journals in a temporary directory.
func newTestFrontier(t *testing.T, cfg frontierConfig) (*frontier, *sink) {
	t.Helper()
	j, err := openJournal(t.TempDir(), recovered{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.close() })
	snk := &sink{w: &memWriter{}, stats: newSummary(), journal: j}
	if cfg.MaxQueued == 0 {
		cfg.MaxQueued = 1 << 20 // load never waits for room
	}
	return newFrontier(cfg, nil, queue.Run{ID: "T"}, snk, slog.New(slog.DiscardHandler)), snk
}

// load reads urls into f as the urls file, each host's n URLs
// http://HOST/1 to http://HOST/n, hosts in the order given.
func load(t *testing.T, f *frontier, hosts ...hostURLs) {
	t.Helper()
	var lines []string
	for _, h := range hosts {
		for i := range h.n {
			lines = append(lines, fmt.Sprintf("http://%s/%d", h.host, i+1))
		}
	}
	if err := f.feed(t.Context(), strings.NewReader(strings.Join(lines, "\n"))); err != nil {
		t.Fatal(err)
	}
}

type hostURLs struct {
	host string
	n    int
}

// perHost counts a batch's tasks by host.
func perHost(batch []*entry) map[string]int {
	m := map[string]int{}
	for _, e := range batch {
		m[e.host.key]++
	}
	return m
}

// checkRoundRobin fails if a host got a turn twice while another host with
// tasks left had none in between: a host's nth task is released only after
// every host that has n-1 tasks or more had its (n-1)th.
func checkRoundRobin(t *testing.T, batch []*entry, loaded []hostURLs) {
	t.Helper()
	total := map[string]int{}
	for _, h := range loaded {
		total[h.host] = h.n
	}
	got := map[string]int{}
	for i, e := range batch {
		h := e.host.key
		got[h]++
		for g, n := range total {
			if g != h && n >= got[h]-1 && got[g] < got[h]-1 {
				t.Errorf("release %d: %s's task %d before %s had its task %d (order %v)", i+1, h, got[h], g, got[h]-1, keys(batch))
				return
			}
		}
	}
}

func keys(batch []*entry) []string {
	var ks []string
	for _, e := range batch {
		ks = append(ks, e.task.URL)
	}
	return ks
}

func ok(e *entry) queue.ResultMeta {
	return queue.ResultMeta{Task: e.task.ID, Attempt: e.task.Attempt, Token: e.task.Token, Status: 200}
}

func TestFrontierPick(t *testing.T) {
	tests := []struct {
		name    string
		window  int
		perHost int
		hosts   []hostURLs
		total   int            // released by the first pick
		want    map[string]int // of those, per host; nil: any within one of each other
	}{
		{"every host in turn", 64, 8, []hostURLs{{"a", 4}, {"b", 2}, {"c", 1}}, 7, map[string]int{"a": 4, "b": 2, "c": 1}},
		{"the window bounds the release", 5, 8, []hostURLs{{"a", 10}, {"b", 10}}, 5, nil},
		{"a host with many tasks does not crowd out the others", 3, 8, []hostURLs{{"a", 50}, {"b", 1}, {"c", 1}}, 3, map[string]int{"a": 1, "b": 1, "c": 1}},
		{"the per-host limit", 64, 2, []hostURLs{{"a", 10}, {"b", 3}, {"c", 1}}, 5, map[string]int{"a": 2, "b": 2, "c": 1}},
		{"the per-host limit under the window", 4, 1, []hostURLs{{"a", 10}, {"b", 10}, {"c", 10}}, 3, map[string]int{"a": 1, "b": 1, "c": 1}},
		{"hosts are host and port", 64, 1, []hostURLs{{"a", 3}, {"a:8080", 3}, {"A", 3}}, 2, map[string]int{"a": 1, "a:8080": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := newTestFrontier(t, frontierConfig{Window: tt.window, PerHost: tt.perHost, Slots: 8})
			load(t, f, tt.hosts...)
			batch, denied, wait := f.pick(time.Now())
			if len(denied) != 0 || wait != 0 {
				t.Errorf("denied %d, wait %s: want none without robots.txt or retries", len(denied), wait)
			}
			got := perHost(batch)
			if len(batch) != tt.total {
				t.Errorf("released %d tasks %v, want %d", len(batch), got, tt.total)
			}
			if tt.want != nil && fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("released %v, want %v", got, tt.want)
			}
			for h, n := range got {
				for g, m := range got {
					if tt.want == nil && n > m+1 {
						t.Errorf("released %d of %s and %d of %s", n, h, m, g)
					}
				}
			}
			checkRoundRobin(t, batch, tt.hosts)
			if b, _, _ := f.pick(time.Now()); len(b) != 0 {
				t.Errorf("a second pick with nothing answered released %d more", len(b))
			}
			if n := f.outstanding(); n != sumURLs(tt.hosts) {
				t.Errorf("outstanding %d, want every loaded task (%d)", n, sumURLs(tt.hosts))
			}
		})
	}
}

func sumURLs(hosts []hostURLs) int {
	n := 0
	for _, h := range hosts {
		n += h.n
	}
	return n
}

// Each answer frees a place in the window: the next pick releases one task
// for each task answered, and no more.
func TestFrontierWindowRefills(t *testing.T) {
	f, _ := newTestFrontier(t, frontierConfig{Window: 3, PerHost: 8, Slots: 8})
	load(t, f, hostURLs{"a", 10})
	now := time.Now()
	first, _, _ := f.pick(now)
	if len(first) != 3 {
		t.Fatalf("first pick released %d, want the window of 3", len(first))
	}
	for i, answered := range [][]*entry{first[:1], first[1:]} {
		for _, e := range answered {
			if v, _ := f.answer(ok(e), now); v != write {
				t.Fatalf("answer for %s: verdict %d, want write", e.task.URL, v)
			}
		}
		batch, _, _ := f.pick(now)
		if len(batch) != len(answered) {
			t.Errorf("round %d: %d answered, %d released", i+1, len(answered), len(batch))
		}
	}
	if n := f.outstanding(); n != 7 {
		t.Errorf("outstanding %d, want 7 (3 released, 4 queued)", n)
	}
}

// The per-host limit counts a host's tasks in flight: an answer from one
// host frees a place for that host only. While the limit holds tasks back and
// the cluster has idle slots, the time is counted for the summary.
func TestFrontierPerHostLimit(t *testing.T) {
	f, _ := newTestFrontier(t, frontierConfig{Window: 64, PerHost: 2, Slots: 16})
	load(t, f, hostURLs{"a", 5}, hostURLs{"b", 1})
	t0 := time.Unix(1_000_000, 0)
	batch, _, _ := f.pick(t0)
	if got := perHost(batch); got["a"] != 2 || got["b"] != 1 {
		t.Fatalf("released %v, want a:2 b:1", got)
	}
	byHost := map[string][]*entry{}
	for _, e := range batch {
		byHost[e.host.key] = append(byHost[e.host.key], e)
	}
	f.answer(ok(byHost["b"][0]), t0)
	if b, _, _ := f.pick(t0.Add(time.Second)); len(b) != 0 {
		t.Errorf("b's answer released %v: a is still at its limit", keys(b))
	}
	f.answer(ok(byHost["a"][0]), t0.Add(2*time.Second))
	b, _, _ := f.pick(t0.Add(2 * time.Second))
	if got := perHost(b); len(b) != 1 || got["a"] != 1 {
		t.Errorf("a's answer released %v, want one more of a", keys(b))
	}
	// Everything released: nothing is held back any more.
	for _, e := range append(byHost["a"][1:], b...) {
		f.answer(ok(e), t0.Add(3*time.Second))
	}
	for range 2 {
		b, _, _ := f.pick(t0.Add(3 * time.Second))
		for _, e := range b {
			f.answer(ok(e), t0.Add(3*time.Second))
		}
	}
	if b, _, _ := f.pick(t0.Add(4 * time.Second)); len(b) != 0 || f.outstanding() != 0 {
		t.Fatalf("released %d, %d outstanding: want all done", len(b), f.outstanding())
	}
	// Held from the first pick (a at its limit, 3 of 16 slots busy) until
	// the pick at 3 s released a's last task.
	if held, _ := f.politeness(); held != 3*time.Second {
		t.Errorf("held back %s, want 3s", held)
	}
}

// A retry goes back to the front of its host's queue and waits out its
// backoff there: the host's later tasks do not overtake it, other hosts go
// on meanwhile, and pick says how long until it is due.
func TestFrontierRetryWaitsAtTheFrontOfItsHost(t *testing.T) {
	f, _ := newTestFrontier(t, frontierConfig{Window: 64, PerHost: 1, Slots: 8, Retries: 2, Backoff: time.Millisecond})
	load(t, f, hostURLs{"a", 3}, hostURLs{"b", 2})
	t0 := time.Unix(1_000_000, 0)
	batch, _, _ := f.pick(t0)
	if len(batch) != 2 {
		t.Fatalf("released %v, want one per host", keys(batch))
	}
	a1, b1 := batch[0], batch[1]
	if a1.host.key != "a" {
		a1, b1 = b1, a1
	}
	// The site asks for 10 s; the backoff of a millisecond is shorter.
	v, task := f.answer(queue.ResultMeta{Task: a1.task.ID, Attempt: 1, Token: a1.task.Token, Kind: scrape.KindHTTPStatus, Status: 503, RetryAfter: 10 * time.Second}, t0)
	if v != retry || task.Attempt != 2 || task.URL != "http://a/1" {
		t.Fatalf("a 503: verdict %d, task %+v; want a retry as attempt 2", v, task)
	}
	f.answer(ok(b1), t0)

	batch, _, wait := f.pick(t0)
	if len(batch) != 1 || batch[0].task.URL != "http://b/2" {
		t.Errorf("released %v, want b's next task alone: a's retry is at its front and not due", keys(batch))
	}
	if wait != 10*time.Second {
		t.Errorf("pick waits %s for the retry, want its 10s", wait)
	}
	if batch, _, wait := f.pick(t0.Add(9 * time.Second)); len(batch) != 0 || wait != time.Second {
		t.Errorf("9s on: released %v, wait %s; want nothing for another 1s", keys(batch), wait)
	}
	batch, _, _ = f.pick(t0.Add(10 * time.Second))
	if len(batch) != 1 || batch[0].task.URL != "http://a/1" || batch[0].task.Attempt != 2 {
		t.Fatalf("10s on: released %v, want a/1's second attempt", keys(batch))
	}
	// A late answer to the first attempt (a redelivered copy) is dropped.
	if v, _ := f.answer(queue.ResultMeta{Task: a1.task.ID, Attempt: 1, Status: 200}, t0.Add(10*time.Second)); v != drop {
		t.Errorf("answer to the superseded attempt: verdict %d, want drop", v)
	}
	if v, _ := f.answer(queue.ResultMeta{Task: a1.task.ID, Attempt: 2, Token: a1.task.Token, Status: 200}, t0.Add(10*time.Second)); v != write {
		t.Errorf("answer to the retry: verdict %d, want write", v)
	}
	// Its 503 spaced the host's requests slowFloor apart (plus jitter).
	batch, _, _ = f.pick(t0.Add(10*time.Second + 3*slowFloor/2))
	if len(batch) != 1 || batch[0].task.URL != "http://a/2" {
		t.Errorf("then released %v, want a/2", keys(batch))
	}
	if _, retried := f.politeness(); retried != 1 {
		t.Errorf("%d retries counted, want 1", retried)
	}
}

// answer's verdicts: passing failures are retried until Retries further
// attempts are spent, lasting ones are written at once, and answers the
// frontier does not wait for are dropped.
func TestFrontierAnswer(t *testing.T) {
	fail := func(kind string, status int) queue.ResultMeta {
		return queue.ResultMeta{Kind: kind, Status: status}
	}
	okMeta := queue.ResultMeta{Status: 200}
	tests := []struct {
		name    string
		retries int
		answers []queue.ResultMeta // in turn, each to the task's current attempt
		want    []verdict
	}{
		{"a page", 2, []queue.ResultMeta{okMeta}, []verdict{write}},
		{"503, then fine", 2, []queue.ResultMeta{fail(scrape.KindHTTPStatus, 503), okMeta}, []verdict{retry, write}},
		{"503 until the retries are spent", 2, []queue.ResultMeta{fail(scrape.KindHTTPStatus, 503), fail(scrape.KindHTTPStatus, 503), fail(scrape.KindHTTPStatus, 503)}, []verdict{retry, retry, write}},
		{"no retries", 0, []queue.ResultMeta{fail(scrape.KindTimeout, 0)}, []verdict{write}},
		{"429", 1, []queue.ResultMeta{fail(scrape.KindHTTPStatus, 429), okMeta}, []verdict{retry, write}},
		{"408", 1, []queue.ResultMeta{fail(scrape.KindHTTPStatus, 408), okMeta}, []verdict{retry, write}},
		{"500", 1, []queue.ResultMeta{fail(scrape.KindHTTPStatus, 500), okMeta}, []verdict{retry, write}},
		{"404 is no passing failure", 2, []queue.ResultMeta{fail(scrape.KindHTTPStatus, 404)}, []verdict{write}},
		{"403 is no passing failure", 2, []queue.ResultMeta{fail(scrape.KindHTTPStatus, 403)}, []verdict{write}},
		{"timeout", 1, []queue.ResultMeta{fail(scrape.KindTimeout, 0), okMeta}, []verdict{retry, write}},
		{"connection refused", 1, []queue.ResultMeta{fail(scrape.KindConnect, 0), okMeta}, []verdict{retry, write}},
		{"a body cut short", 1, []queue.ResultMeta{fail(scrape.KindBadBody, 200), okMeta}, []verdict{retry, write}},
		{"DNS", 2, []queue.ResultMeta{fail(scrape.KindDNS, 0)}, []verdict{write}},
		{"not HTML", 2, []queue.ResultMeta{fail(scrape.KindNotHTML, 200)}, []verdict{write}},
		{"worker lost", 2, []queue.ResultMeta{fail(scrape.KindWorkerLost, 0)}, []verdict{write}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := newTestFrontier(t, frontierConfig{Window: 8, PerHost: 8, Slots: 8, Retries: tt.retries, Backoff: time.Millisecond})
			load(t, f, hostURLs{"a", 1})
			now := time.Unix(1_000_000, 0)
			for i, m := range tt.answers {
				now = now.Add(time.Hour) // past any backoff
				batch, _, _ := f.pick(now)
				if len(batch) != 1 {
					t.Fatalf("answer %d: %d tasks released, want the one", i+1, len(batch))
				}
				e := batch[0]
				if e.task.Attempt != i+1 {
					t.Errorf("answer %d: task is on attempt %d", i+1, e.task.Attempt)
				}
				m.Task, m.Attempt, m.Token = e.task.ID, e.task.Attempt, e.task.Token
				if v, _ := f.answer(m, now); v != tt.want[i] {
					t.Fatalf("answer %d (%s %d): verdict %d, want %d", i+1, m.Kind, m.Status, v, tt.want[i])
				}
			}
			f.settle()
			select {
			case <-f.done:
			default:
				t.Errorf("not done after the last answer; %d outstanding", f.outstanding())
			}
		})
	}
}

// Answers the frontier is not waiting for are dropped: a duplicate of a
// written result, a task it never released, an answer that names no attempt.
// One for the attempt under way without its delivery's token is rejected: it
// does not come from the worker the task was delivered to.
func TestFrontierDropsAnswersItDoesNotWaitFor(t *testing.T) {
	f, _ := newTestFrontier(t, frontierConfig{Window: 8, PerHost: 8, Slots: 8, Retries: 2, Backoff: time.Millisecond})
	load(t, f, hostURLs{"a", 2})
	now := time.Now()
	batch, _, _ := f.pick(now)
	if len(batch) != 2 {
		t.Fatalf("released %d, want 2", len(batch))
	}
	if v, _ := f.answer(queue.ResultMeta{Task: 999}, now); v != drop {
		t.Errorf("answer for a task never released: verdict %d, want drop", v)
	}
	if v, _ := f.answer(ok(batch[0]), now); v != write {
		t.Errorf("first answer: verdict %d, want write", v)
	}
	if v, _ := f.answer(ok(batch[0]), now); v != drop {
		t.Errorf("duplicate answer: verdict %d, want drop", v)
	}
	if v, _ := f.answer(queue.ResultMeta{Task: batch[1].task.ID, Status: 200}, now); v != drop {
		t.Errorf("answer without an attempt: verdict %d, want drop", v)
	}
	forged := ok(batch[1])
	forged.Token = "0123456789abcdef01234567"
	if v, _ := f.answer(forged, now); v != reject {
		t.Errorf("answer with another token: verdict %d, want reject", v)
	}
	if v, task := f.answer(ok(batch[1]), now); v != write || task.ID != batch[1].task.ID {
		t.Errorf("then the real answer: verdict %d for task %d, want write", v, task.ID)
	}
	if batch[0].task.Token == "" || batch[0].task.Token == batch[1].task.Token {
		t.Errorf("deliveries' tokens %q and %q: want each its own", batch[0].task.Token, batch[1].task.Token)
	}
}

// feed streams the urls file: it holds at most MaxQueued tasks that are not
// yet released and goes on as pick makes room; an invalid line is answered
// at once; the frontier is done once the input is read and every released
// task answered.
func TestFrontierFeedStreams(t *testing.T) {
	f, snk := newTestFrontier(t, frontierConfig{Window: 2, PerHost: 8, Slots: 8, MaxQueued: 3})
	lines := []string{"not a url", "# comment", "http://a/1", "http://a/2", "", "http://b/1", "http://a/3", "http://b/2"}
	fed := make(chan error, 1)
	go func() { fed <- f.feed(t.Context(), strings.NewReader(strings.Join(lines, "\n"))) }()

	queued := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.queued
	}
	waitFor(t, 5*time.Second, "the feed to fill the frontier", func() bool { return queued() == 3 })
	select {
	case err := <-fed:
		t.Fatalf("feed returned (%v) with more input and no room", err)
	case <-time.After(50 * time.Millisecond):
	}
	if s := snk.snapshot(); s.Records != 1 || s.Errors[scrape.KindInvalidURL] != 1 {
		t.Errorf("records %d, errors %v: want the invalid line's", s.Records, s.Errors)
	}

	answered := 0
	deadline := time.Now().Add(5 * time.Second)
	for answered < 5 && time.Now().Before(deadline) {
		now := time.Now()
		batch, _, _ := f.pick(now)
		if q := queued(); q > 3 {
			t.Fatalf("%d tasks queued, MaxQueued is 3", q)
		}
		for _, e := range batch {
			if e.task.Line == 0 || lines[e.task.Line-1] != e.task.URL {
				t.Errorf("task %+v does not carry its line", e.task)
			}
			f.answer(ok(e), now)
			answered++
		}
		f.settle()
		time.Sleep(time.Millisecond)
	}
	if answered != 5 {
		t.Fatalf("%d of 5 tasks answered", answered)
	}
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("not done with the input read and everything answered; %d outstanding", f.outstanding())
	}
}

// Crawling: discover queues a page's links that are in scope and new, one
// level deeper, with IDs above any line number, and journals them.
func TestFrontierDiscover(t *testing.T) {
	f, _ := newTestFrontier(t, frontierConfig{Window: 64, PerHost: 8, Slots: 8, Crawl: newCrawlScope(2, true, nil, 0)})
	load(t, f, hostURLs{"a", 1})
	now := time.Now()
	batch, _, _ := f.pick(now)
	seed := batch[0].task
	f.answer(ok(batch[0]), now)
	f.discover(seed, []string{"http://a/x", "http://a/1", "http://b/y", "http://a/x#frag", "http://a/z"})
	batch, _, _ = f.pick(now)
	var got []string
	for _, e := range batch {
		got = append(got, e.task.URL)
		if e.task.Depth != 1 || e.task.Parent != seed.URL || e.task.ID <= crawlIDBase || e.task.Line != 0 {
			t.Errorf("discovered task %+v", e.task)
		}
	}
	if fmt.Sprint(got) != "[http://a/x http://a/z]" {
		t.Errorf("discovered %v, want the new links on the seed's host", got)
	}
	// At the crawl's depth, links are not followed.
	deep := batch[0].task
	deep.Depth = 2
	f.discover(deep, []string{"http://a/deeper"})
	if b, _, _ := f.pick(now); len(b) != 0 {
		t.Errorf("links of a page at the crawl's depth released: %v", keys(b))
	}
}
