package coordinator

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// What an answer tells of its host: only a failure to reach it at all
// counts against it, and any HTTP answer, whatever its status, clears it.
func TestBreakerReached(t *testing.T) {
	tests := []struct {
		kind             string
		status           int
		failed, answered bool
	}{
		{"", 200, false, true},
		{scrape.KindHTTPStatus, 503, false, true},
		{scrape.KindHTTPStatus, 404, false, true},
		{scrape.KindNotHTML, 200, false, true},
		{scrape.KindBadBody, 200, false, true},
		{scrape.KindTimeout, 200, false, true}, // the body timed out: the host answered
		{scrape.KindConnect, 0, true, false},
		{scrape.KindDNS, 0, true, false},
		{scrape.KindTLS, 0, true, false},
		{scrape.KindTimeout, 0, true, false},
		{scrape.KindWorkerLost, 0, false, false},
		{scrape.KindBlockedAddress, 0, false, false},
		{scrape.KindFetch, 0, false, false},
	}
	for _, tt := range tests {
		failed, answered := reached(queue.ResultMeta{Kind: tt.kind, Status: tt.status})
		if failed != tt.failed || answered != tt.answered {
			t.Errorf("%q %d: failed %v, answered %v; want %v, %v", tt.kind, tt.status, failed, answered, tt.failed, tt.answered)
		}
	}
}

func fail(kind, msg string) queue.ResultMeta {
	return queue.ResultMeta{Kind: kind, Message: msg}
}

var (
	refused  = fail(scrape.KindConnect, "connection refused")
	timedOut = fail(scrape.KindTimeout, "timed out after 1s")
	page     = queue.ResultMeta{Status: 200}
)

// pickOne releases the next task, letting the clock run to whatever pick
// waits for (a backoff, a probe) as long as it releases nothing.
func pickOne(t *testing.T, f *frontier, now *time.Time) *entry {
	t.Helper()
	for range 4 {
		batch, denied, wait := f.pick(*now)
		if len(denied) > 0 {
			t.Fatalf("recorded %v unfetched, want a task released", keys(denied))
		}
		if len(batch) > 1 {
			t.Fatalf("released %v, want one task", keys(batch))
		}
		if len(batch) == 1 {
			return batch[0]
		}
		if wait <= 0 {
			t.Fatalf("nothing released and nothing to wait for")
		}
		*now = now.Add(wait)
	}
	t.Fatalf("nothing released")
	return nil
}

func stateName(s breakerState) string {
	return [...]string{"up", "suspect", "probing", "down"}[s]
}

// The breaker's states, one task in flight at a time: each step answers the
// task pick releases next (letting the clock run to it), and says the
// verdict and the breaker's state after it. Then a pick records the URLs of
// a host that is down, or releases the next.
func TestFrontierBreaker(t *testing.T) {
	type step struct {
		answer queue.ResultMeta
		want   verdict
		state  breakerState
	}
	blocked := fail(scrape.KindBlockedAddress, "127.0.0.1 is a loopback address")
	lost := fail(scrape.KindWorkerLost, "lost 5 times")
	dns := fail(scrape.KindDNS, `no such host "a"`)
	tests := []struct {
		name     string
		failures int // HostFailures
		steps    []step
		recorded int    // by the last pick, as host_unreachable
		last     string // in their message
	}{
		{"three refusals open it; the probe fails too: the rest are recorded", 3, []step{
			{refused, retry, hostUp}, {refused, retry, hostUp}, {refused, write, hostSuspect},
			{refused, write, hostDown}, // the probe, a/2
		}, 4, "connect: connection refused"},
		{"the probe is answered: the breaker closes", 3, []step{
			{refused, retry, hostUp}, {refused, retry, hostUp}, {refused, write, hostSuspect},
			{page, write, hostUp},
		}, 0, ""},
		{"a 503 to the probe is an answer", 3, []step{
			{refused, retry, hostUp}, {refused, retry, hostUp}, {refused, write, hostSuspect},
			{queue.ResultMeta{Kind: scrape.KindHTTPStatus, Status: 503}, retry, hostUp},
		}, 0, ""},
		{"an answer starts the count again", 3, []step{
			{refused, retry, hostUp}, {refused, retry, hostUp}, {queue.ResultMeta{Kind: scrape.KindHTTPStatus, Status: 404}, write, hostUp},
			{refused, retry, hostUp}, {refused, retry, hostUp}, {page, write, hostUp},
		}, 0, ""},
		{"timeouts count; a timeout after the headers is an answer", 3, []step{
			{timedOut, retry, hostUp}, {timedOut, retry, hostUp}, {timedOut, write, hostSuspect},
			{queue.ResultMeta{Kind: scrape.KindTimeout, Status: 200}, retry, hostUp},
		}, 0, ""},
		{"DNS failures count, though none is retried", 3, []step{
			{dns, write, hostUp}, {dns, write, hostUp}, {dns, write, hostSuspect}, {dns, write, hostDown},
		}, 2, `dns: no such host "a"`},
		{"a probe that tells nothing is followed by another", 3, []step{
			{refused, retry, hostUp}, {refused, retry, hostUp}, {refused, write, hostSuspect},
			{lost, write, hostSuspect}, {timedOut, write, hostDown},
		}, 3, "timeout: timed out after 1s"},
		{"blocked addresses say nothing of the host", 3, []step{
			{blocked, write, hostUp}, {blocked, write, hostUp}, {blocked, write, hostUp}, {blocked, write, hostUp},
		}, 0, ""},
		{"a threshold of 1", 1, []step{
			{refused, retry, hostSuspect}, {timedOut, write, hostDown}, // the probe is a/2; a/1's retry waits
		}, 5, "timeout: timed out after 1s"},
		{"0 turns it off", 0, []step{
			{refused, retry, hostUp}, {refused, retry, hostUp}, {refused, write, hostUp},
			{refused, retry, hostUp}, {refused, retry, hostUp}, {refused, write, hostUp},
		}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, snk := newTestFrontier(t, frontierConfig{Window: 64, PerHost: 1, Slots: 8, Retries: 2, Backoff: time.Second, HostFailures: tt.failures})
			load(t, f, hostURLs{"a", 6})
			now := time.Unix(1_000_000, 0)
			h := f.hosts["a"]
			for i, s := range tt.steps {
				e := pickOne(t, f, &now)
				m := s.answer
				m.Task, m.Attempt, m.Token = e.task.ID, e.task.Attempt, e.task.Token
				if v, _ := f.answer(m, now); v != s.want || h.brk.state != s.state {
					t.Fatalf("step %d (%s, attempt %d, %s %d): verdict %d, breaker %s; want %d, %s",
						i+1, e.task.URL, e.task.Attempt, m.Kind, m.Status, v, stateName(h.brk.state), s.want, stateName(s.state))
				}
			}
			if tt.recorded == 0 {
				pickOne(t, f, &now) // the host's tasks go on
				return
			}
			batch, denied, _ := f.pick(now)
			if len(denied) != tt.recorded {
				t.Fatalf("last pick recorded %v, want %d", keys(denied), tt.recorded)
			}
			if len(batch) != 0 {
				t.Errorf("last pick released %v from a host that is down", keys(batch))
			}
			for _, e := range denied {
				if err := f.sink.refuse(e.task, e.refusal); err != nil {
					t.Fatal(err)
				}
			}
			for _, rec := range snk.w.(*memWriter).recs[len(snk.w.(*memWriter).recs)-tt.recorded:] {
				var r scrape.Result
				if err := json.Unmarshal(rec, &r); err != nil {
					t.Fatal(err)
				}
				if r.Error == nil || r.Error.Kind != scrape.KindHostUnreachable || !strings.Contains(r.Error.Message, "host a unreachable") || !strings.HasSuffix(r.Error.Message, "the last: "+tt.last) {
					t.Errorf("%s: %+v, want host_unreachable naming a and its last failure %q", r.URL, r.Error, tt.last)
				}
			}
			f.settle()
			if n := f.outstanding(); n != 0 {
				t.Errorf("%d tasks outstanding, want none", n)
			}
			if got := f.unreachableHosts(); len(got) != 1 || got[0].Host != "a" || got[0].URLs != tt.recorded || got[0].Error != tt.last {
				t.Errorf("unreachable hosts %+v, want a with %d URLs and %q", got, tt.recorded, tt.last)
			}
		})
	}
}

// With a host's limit full when it fails, the tasks in flight come back
// failed together: once the breaker opens, their retries wait behind it
// with no backoff of their own (those retried before it opened wait no
// longer than it), one URL not tried yet goes as the probe after the run's
// backoff while the rest stay queued, and then either all go on or all are
// recorded at once, with the tasks that arrive while the host is down. After
// downFor, the next task probes the host again.
func TestFrontierBreakerHoldsTheHost(t *testing.T) {
	for _, probe := range []string{"answered", "failed"} {
		t.Run("probe "+probe, func(t *testing.T) {
			f, _ := newTestFrontier(t, frontierConfig{Window: 64, PerHost: 8, Slots: 16, Retries: 2, Backoff: time.Second, HostFailures: 3})
			load(t, f, hostURLs{"a", 20}, hostURLs{"b", 2})
			t0 := time.Unix(1_000_000, 0)
			first, _, _ := f.pick(t0)
			var b []*entry
			for _, e := range first {
				if e.host.key == "a" {
					m := refused
					m.Task, m.Attempt, m.Token = e.task.ID, e.task.Attempt, e.task.Token
					if v, _ := f.answer(m, t0); v != retry {
						t.Fatalf("%s refused: verdict %d, want a retry", e.task.URL, v)
					}
				} else {
					b = append(b, e)
				}
			}
			a := f.hosts["a"]
			if a.brk.state != hostSuspect || len(b) != 2 {
				t.Fatalf("after 8 refusals the breaker is %s (b released %d); want suspect", stateName(a.brk.state), len(b))
			}
			for _, e := range a.queue {
				if e.notBefore.After(a.brk.probeAt) {
					t.Errorf("%s waits until %s, after the probe's %s", e.task.URL, e.notBefore.Sub(t0), a.brk.probeAt.Sub(t0))
				}
			}
			// b goes on meanwhile.
			f.answer(ok(b[0]), t0)
			f.answer(ok(b[1]), t0)

			batch, denied, wait := f.pick(t0)
			if len(batch)+len(denied) != 0 || wait < 500*time.Millisecond || wait > 1500*time.Millisecond {
				t.Fatalf("released %v, recorded %v, wait %s; want nothing until the probe, after the backoff of 1s±50%%", keys(batch), keys(denied), wait)
			}
			now := t0.Add(wait)
			batch, _, _ = f.pick(now)
			if len(batch) != 1 || batch[0].task.URL != "http://a/9" {
				t.Fatalf("at the probe's time, released %v, want a/9 alone: the first URL not tried yet", keys(batch))
			}
			pr := batch[0]
			if b, _, wait := f.pick(now.Add(time.Hour)); len(b) != 0 || wait != 0 {
				t.Fatalf("while the probe is out, released %v (wait %s), want nothing until it answers", keys(b), wait)
			}
			m := ok(pr)
			if probe == "failed" {
				m = refused
				m.Task, m.Attempt, m.Token = pr.task.ID, pr.task.Attempt, pr.task.Token
			}
			if v, _ := f.answer(m, now); v != write {
				t.Fatalf("the probe's answer: verdict %d, want write", v)
			}
			batch, denied, _ = f.pick(now)
			_, retried := f.politeness()
			if probe == "answered" {
				if a.brk.state != hostUp || len(batch) != 8 || len(denied) != 0 {
					t.Fatalf("after the probe's answer: breaker %s, released %d, recorded %d; want up, the limit of 8, none", stateName(a.brk.state), len(batch), len(denied))
				}
				// The 8 refused tasks go again: retries, counted as they are
				// released.
				if retried != 8 {
					t.Errorf("%d retries counted, want 8", retried)
				}
				return
			}
			if a.brk.state != hostDown || len(batch) != 0 || len(denied) != 19 {
				t.Fatalf("after the probe failed: breaker %s, released %v, recorded %d; want down, none, the 19 others", stateName(a.brk.state), keys(batch), len(denied))
			}
			attempted := 0
			for _, e := range denied {
				if e.refusal.Kind != scrape.KindHostUnreachable || !strings.Contains(e.refusal.Message, "connect: connection refused") {
					t.Errorf("%s: %+v", e.task.URL, e.refusal)
				}
				if e.task.Attempt == 2 {
					attempted++
				}
			}
			if attempted != 8 || retried != 0 {
				t.Errorf("%d recorded after an attempt, %d retries counted; want the 8 held back, and none made", attempted, retried)
			}
			// A URL that comes while the host is down is recorded at once;
			// after downFor, the next goes as a new probe.
			add := func(id uint64, path string) {
				u, _ := url.Parse("http://a" + path)
				f.mu.Lock()
				f.enqueueLocked(scrape.Task{ID: id, URL: u.String(), Attempt: 1}, u)
				f.mu.Unlock()
			}
			add(100, "/late")
			if batch, denied, _ := f.pick(now.Add(time.Minute)); len(batch) != 0 || len(denied) != 1 {
				t.Errorf("a URL found while the host is down: released %v, recorded %v; want it recorded", keys(batch), keys(denied))
			}
			add(101, "/later")
			add(102, "/latest")
			batch, denied, _ = f.pick(now.Add(downFor))
			if len(batch) != 1 || len(denied) != 0 || a.brk.state != hostProbing {
				t.Errorf("after downFor: released %v, recorded %v, breaker %s; want one probe", keys(batch), keys(denied), stateName(a.brk.state))
			}
			if got := f.unreachableHosts(); fmt.Sprint(got) != "[{a 20 connect: connection refused}]" {
				t.Errorf("unreachable hosts %v", got)
			}
		})
	}
}

// Tasks in flight when the host went down still get their answers: a
// failure is written as it is, without a retry; an HTTP answer brings the
// host back.
func TestFrontierBreakerLateAnswers(t *testing.T) {
	for _, late := range []string{"failed", "answered"} {
		t.Run(late, func(t *testing.T) {
			f, _ := newTestFrontier(t, frontierConfig{Window: 64, PerHost: 8, Slots: 8, Retries: 2, Backoff: time.Second, HostFailures: 2})
			load(t, f, hostURLs{"a", 10})
			now := time.Unix(1_000_000, 0)
			batch, _, _ := f.pick(now)
			for _, e := range batch[:2] { // two refusals: suspect
				m := refused
				m.Task, m.Attempt, m.Token = e.task.ID, e.task.Attempt, e.task.Token
				f.answer(m, now)
			}
			pr := pickOne(t, f, &now)
			m := timedOut
			m.Task, m.Attempt, m.Token = pr.task.ID, pr.task.Attempt, pr.task.Token
			f.answer(m, now)
			h := f.hosts["a"]
			if h.brk.state != hostDown {
				t.Fatalf("breaker %s after the probe failed, want down", stateName(h.brk.state))
			}
			m = ok(batch[2])
			want, state := write, hostUp
			if late == "failed" {
				m = timedOut
				m.Task, m.Attempt, m.Token = batch[2].task.ID, batch[2].task.Attempt, batch[2].task.Token
				state = hostDown
			}
			if v, _ := f.answer(m, now); v != want || h.brk.state != state {
				t.Errorf("late answer: verdict %d, breaker %s; want %d, %s", v, stateName(h.brk.state), want, stateName(state))
			}
		})
	}
}

// A failure counts against its host only if the host gave no answer after
// the request was sent: a host whose limit's worth of requests is stuck on
// URLs that hang by themselves, while it answers others, is not suspected.
func TestFrontierBreakerCountsFailuresSinceTheLastAnswer(t *testing.T) {
	f, _ := newTestFrontier(t, frontierConfig{Window: 64, PerHost: 4, Slots: 8, Retries: 0, Backoff: time.Second, HostFailures: 3})
	load(t, f, hostURLs{"a", 20})
	h := f.hosts["a"]
	t0 := time.Unix(1_000_000, 0)
	answer := func(e *entry, m queue.ResultMeta, at time.Time) {
		m.Task, m.Attempt, m.Token = e.task.ID, e.task.Attempt, e.task.Token
		f.answer(m, at)
	}
	first, _, _ := f.pick(t0)
	answer(first[0], page, t0.Add(time.Millisecond)) // the host answers after the others were sent
	second, _, _ := f.pick(t0.Add(time.Millisecond))
	for _, e := range first[1:] {
		answer(e, timedOut, t0.Add(time.Second))
	}
	if h.brk.state != hostUp || h.brk.fails != 0 {
		t.Fatalf("3 timeouts of requests sent before an answer: breaker %s after %d failures, want up after none", stateName(h.brk.state), h.brk.fails)
	}
	// Sent after the host's last answer, they count.
	next, _, _ := f.pick(t0.Add(time.Second))
	for _, e := range append(second, next[:2]...) {
		answer(e, timedOut, t0.Add(2*time.Second))
	}
	if h.brk.state != hostSuspect {
		t.Errorf("3 timeouts of requests sent after the last answer: breaker %s, want suspect", stateName(h.brk.state))
	}
}
