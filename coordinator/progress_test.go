package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/output"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// countLines counts what feed turns into records, whatever the file holds:
// the two read it alike.
func TestCountLinesAgreesWithFeed(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	for _, tt := range []struct {
		name, text string
	}{
		{"empty", ""},
		{"urls, blanks and comments", "http://a/1\n\n# c\n  http://a/2  \n\t\nnot a url\n"},
		{"no final newline", "http://a/1\nhttp://a/2"},
		{"a BOM", "\xef\xbb\xbfhttp://a/1\n"},
		{"a BOM before a comment", "\xef\xbb\xbf# c\nhttp://a/1\n"},
		{"CRLF", "http://a/1\r\n\r\nhttp://a/2\r\n"},
		{"a line too long", "http://a/1\n" + long + "\nhttp://a/2\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "urls")
			if err := os.WriteFile(path, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			f, _ := newTestFrontier(t, frontierConfig{Window: 64})
			if n, ok := f.lines.known(); ok {
				t.Fatalf("known before counting: %d", n)
			}
			if err := f.countLines(t.Context(), path); err != nil {
				t.Fatal(err)
			}
			counted, ok := f.lines.known()
			if !ok {
				t.Fatal("not known after counting")
			}
			// feed reads the same file into a frontier of its own, and
			// every line it reads becomes a task or a record.
			g, snk := newTestFrontier(t, frontierConfig{Window: 64, MaxQueued: 1 << 20})
			in, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			if err := g.feed(t.Context(), in); err != nil {
				t.Fatal(err)
			}
			fed, _ := g.lines.known()
			records := snk.snapshot().Records
			if counted != fed || int(counted) != g.queued+records || int(g.lines.read.Load()) != g.queued+records {
				t.Errorf("counted %d, feed read %d: %d tasks and %d records", counted, fed, g.queued, records)
			}
		})
	}
}

// A big file's total grows while it is counted, and is known at the end.
func TestCountLinesShowsItsProgress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "urls")
	var b strings.Builder
	for i := range 10_000 {
		fmt.Fprintf(&b, "http://a/%d\n", i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	f, _ := newTestFrontier(t, frontierConfig{Window: 64})
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // stops the count at its first look, after 4095 lines
	if err := f.countLines(ctx, path); err != nil {
		t.Fatal(err)
	}
	if n, known, counting := f.total(); known || !counting || n != 4095 {
		t.Errorf("stopped count: total %d, known %v, counting %v; want 4095 so far", n, known, counting)
	}
	if err := f.countLines(t.Context(), path); err != nil {
		t.Fatal(err)
	}
	if n, known, counting := f.total(); !known || counting || n != 10_000 {
		t.Errorf("whole count: total %d, known %v, counting %v", n, known, counting)
	}
}

func TestRateMeter(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var m rateMeter
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	// 10 pages a second for 30 s, then nothing.
	var rate float64
	for s := 1; s <= 30; s++ {
		rate = m.add(at(float64(s)), 10*s, start)
	}
	if rate < 9.99 || rate > 10.01 {
		t.Errorf("steady 10 pages/s measured as %.2f", rate)
	}
	if got := at(30).Sub(m.changed); got != 0 {
		t.Errorf("last change %s ago, want now", got)
	}
	for s := 31; s <= 40; s++ {
		rate = m.add(at(float64(s)), 300, start)
	}
	// Over the last 20 s, 10 of them idle: half the pace.
	if rate < 4.99 || rate > 5.01 {
		t.Errorf("after 10 s of nothing, %.2f pages/s, want 5", rate)
	}
	if got := at(40).Sub(m.changed); got != 10*time.Second {
		t.Errorf("last change %s ago, want 10s", got)
	}
	for s := 41; s <= 60; s++ {
		rate = m.add(at(float64(s)), 300, start)
	}
	if rate != 0 {
		t.Errorf("after 20 s of nothing, %.2f pages/s", rate)
	}
	if n := len(m.samples); n > 25 {
		t.Errorf("%d samples kept for a window of 20 one a second", n)
	}
}

func TestStatusLine(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	base := Status{Started: start, Updated: start.Add(90 * time.Second), Running: true, Total: 200, TotalKnown: true, Rate: 4}
	base.Records, base.OK = 120, 113
	base.Errors = map[string]int{"timeout": 5, "http_status": 2}
	for _, tt := range []struct {
		name string
		set  func(*Status)
		want string
	}{
		{"going", func(*Status) {},
			"120/200 done, 4.0 pages/s, elapsed 1m30s, ETA 20s, 7 errors (http_status 2, timeout 5)"},
		{"stdin not read to its end", func(st *Status) { st.TotalKnown = false },
			"120/? done, 4.0 pages/s, elapsed 1m30s, ETA ?, 7 errors (http_status 2, timeout 5)"},
		{"a big file being counted", func(st *Status) { st.TotalKnown, st.Counting, st.Total = false, true, 8192 },
			"120/8192+ done, 4.0 pages/s, elapsed 1m30s, ETA ?, 7 errors (http_status 2, timeout 5)"},
		{"waiting", func(st *Status) { st.InFlight, st.RetryWaiting, st.RobotsWaiting = 4, 12, 3 },
			"120/200 done, 4.0 pages/s, elapsed 1m30s, ETA 20s, 4 in flight, 12 waiting to retry, 3 hosts waiting on robots.txt, 7 errors (http_status 2, timeout 5)"},
		{"stalled", func(st *Status) { st.IdleSeconds, st.RobotsWaiting = 65, 1 },
			"120/200 done, 4.0 pages/s, elapsed 1m30s, ETA ?, no record for 1m5s, 1 host waiting on robots.txt, 7 errors (http_status 2, timeout 5)"},
		{"ended", func(st *Status) { st.Running, st.Outcome, st.InFlight = false, OutcomeInterrupted, 4 },
			"120/200 done, 4.0 pages/s, elapsed 1m30s, 7 errors (http_status 2, timeout 5)"},
		{"no errors, nodes", func(st *Status) { st.OK, st.Errors, st.PerNode = 120, nil, map[string]int{"b": 50, "a": 70} },
			"120/200 done, 4.0 pages/s, elapsed 1m30s, ETA 20s, 0 errors [a 70, b 50]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := base
			tt.set(&st)
			if got := st.Line(); got != tt.want {
				t.Errorf("\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestCut(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 3, "abc"}, {"abcd", 3, "ab…"}, {"a · b · c", 5, "a · …"}, {"abc", 0, ""}, {"abc", -4, ""},
	} {
		if got := cut(tt.s, tt.n); got != tt.want {
			t.Errorf("cut(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

// A resumed run's summary counts the records before the resume from the
// output itself, in each format, up to the journal's commit only.
func TestCountEarlier(t *testing.T) {
	recs := []scrape.Result{
		{URL: "http://a/1", Bytes: 100, Node: "n1", Unchanged: true},
		{URL: "http://a/2", Bytes: 50, Node: "n2", Error: &scrape.Error{Kind: scrape.KindHTTPStatus, Message: "404"}},
		{URL: "nope", Error: &scrape.Error{Kind: scrape.KindInvalidURL, Message: "no"}},
		// After the commit: not counted.
		{URL: "http://a/3", Bytes: 7, Node: "n1", Unchanged: true, NeedsRender: "script-only body"},
	}
	for _, format := range []output.Format{output.JSON, output.JSONL, output.CSV} {
		t.Run(string(format), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out."+string(format))
			w, err := output.Create(path, format, nil, output.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var pos output.Pos
			for i, r := range recs {
				data, err := json.Marshal(r)
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Write(data); err != nil {
					t.Fatal(err)
				}
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				if i == 2 {
					pos = w.Pos() // the journal's last commit: three records
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			s := newSummary()
			s.count("", 1, "n1") // this part's own
			if err := countEarlier(s, path, format, pos); err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("%d records, %d earlier, %d ok, %d unchanged, %d unrendered, %d bytes, %v, %v", s.Records, s.Earlier, s.OK, s.Unchanged, s.Unrendered, s.Bytes, s.Errors, s.PerNode)
			if want := "4 records, 3 earlier, 2 ok, 1 unchanged, 0 unrendered, 151 bytes, map[http_status:1 invalid_url:1], map[n1:2 n2:1]"; got != want {
				t.Errorf("\n got %s\nwant %s", got, want)
			}
			w.Close()
		})
	}
	s := newSummary()
	if err := countEarlier(s, filepath.Join(t.TempDir(), "gone.jsonl"), output.JSONL, output.Pos{Offset: 10, Records: 1}); err == nil || s.Records != 0 {
		t.Errorf("a missing output: %v, %d records", err, s.Records)
	}
}

// LongestRetryWait bounds what backoff really waits, and is reached.
func TestLongestRetryWait(t *testing.T) {
	for _, tt := range []struct {
		base    time.Duration
		retries int
	}{{time.Second, 2}, {time.Second, 20}, {time.Hour, 3}, {10 * time.Millisecond, 0}} {
		limit := LongestRetryWait(tt.base, tt.retries)
		most := time.Duration(0)
		for range 500 {
			var sum time.Duration
			for n := 2; n <= tt.retries+1; n++ {
				sum += backoff(tt.base, n, 0)
			}
			if sum > limit {
				t.Fatalf("base %s, %d retries: waited %s, beyond LongestRetryWait %s", tt.base, tt.retries, sum, limit)
			}
			most = max(most, sum)
		}
		if most < limit*8/10 {
			t.Errorf("base %s, %d retries: at most %s waited of %s", tt.base, tt.retries, most, limit)
		}
	}
}

// waiting counts what the run waits on as tasks go out, fail, wait for their
// retry, and go out again or are given up with their host.
func TestWaitingFollowsTasks(t *testing.T) {
	f, _ := newTestFrontier(t, frontierConfig{Window: 64, PerHost: 4, Slots: 8, Retries: 3, Backoff: time.Minute, HostFailures: 2})
	load(t, f, hostURLs{"a", 2}, hostURLs{"b", 1})
	check := func(when string, inFlight, retries int) {
		t.Helper()
		if n, r, _ := f.waiting(); n != inFlight || r != retries {
			t.Errorf("%s: %d in flight, %d waiting to retry; want %d, %d", when, n, r, inFlight, retries)
		}
	}
	check("loaded", 0, 0)
	t0 := time.Unix(1_000_000, 0)
	batch, _, _ := f.pick(t0)
	check("released", 3, 0)
	byURL := map[string]*entry{}
	for _, e := range batch {
		byURL[e.task.URL] = e
	}
	fail := func(e *entry, kind string) {
		t.Helper()
		if v, _ := f.answer(queue.ResultMeta{Task: e.task.ID, Attempt: e.task.Attempt, Token: e.task.Token, Kind: kind, Status: 503}, t0); v != retry {
			t.Fatalf("%s: verdict %d, want a retry", e.task.URL, v)
		}
	}
	fail(byURL["http://a/1"], scrape.KindHTTPStatus)
	fail(byURL["http://b/1"], scrape.KindHTTPStatus)
	check("two failed", 1, 2)
	if batch, _, _ := f.pick(t0.Add(2 * time.Minute)); len(batch) != 2 {
		t.Fatalf("the retries due: released %v", keys(batch))
	}
	check("retried", 3, 0)
	// a's connection fails twice: its breaker opens, and its retry waiting
	// behind it is recorded, not retried.
	f.answer(ok(byURL["http://a/2"]), t0)
	for _, e := range f.pendingOf("a") {
		fail(e, scrape.KindConnect)
	}
	check("a failed to connect", 1, 1)
	// a is down: its queue, the retry in it included, is recorded
	// unfetched, and no retry waits any more.
	now := t0.Add(3 * time.Minute)
	f.mu.Lock()
	f.hosts["a"].brk.state, f.hosts["a"].brk.probeAt = hostDown, now.Add(time.Hour)
	f.mu.Unlock()
	if _, denied, _ := f.pick(now); len(denied) != 1 || denied[0].task.URL != "http://a/1" {
		t.Errorf("a down: recorded %v, want its retry", keys(denied))
	}
	check("a given up", 1, 0)
	if r := f.queuedRetries(); r != 0 {
		t.Errorf("%d retries still queued", r)
	}
}

// pendingOf lists host's tasks in flight.
func (f *frontier) pendingOf(host string) []*entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	var list []*entry
	for _, e := range f.pending {
		if e.host.key == host {
			list = append(list, e)
		}
	}
	return list
}

// queuedRetries counts the retries in the hosts' queues, the long way.
func (f *frontier) queuedRetries() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, h := range f.hosts {
		for _, e := range h.queue {
			if e.retried {
				n++
			}
		}
	}
	return n
}

// BenchmarkCountLines counts a 1,000,000-line urls file, as a run does ahead
// of its feed: its time is what the total waits for, its memory is bounded
// by one line's buffer whatever the file's size.
func BenchmarkCountLines(b *testing.B) {
	path := filepath.Join(b.TempDir(), "urls")
	var buf strings.Builder
	for i := range 1_000_000 {
		fmt.Fprintf(&buf, "https://host%d.example/page/%d\n", i%1000, i)
	}
	if err := os.WriteFile(path, []byte(buf.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		f := &frontier{log: slog.New(slog.DiscardHandler)}
		f.lines.total.Store(-1)
		if err := f.countLines(b.Context(), path); err != nil {
			b.Fatal(err)
		}
		if n, _ := f.lines.known(); n != 1_000_000 {
			b.Fatalf("counted %d", n)
		}
	}
}
