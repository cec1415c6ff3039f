package coordinator

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/temoto/robotstxt"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// Answers to feed a host's pace, by name.
var paceAnswers = map[string]queue.ResultMeta{
	"429":     {Kind: scrape.KindHTTPStatus, Status: 429},
	"503":     {Kind: scrape.KindHTTPStatus, Status: 503},
	"200":     {Status: 200},
	"404":     {Kind: scrape.KindHTTPStatus, Status: 404},
	"500":     {Kind: scrape.KindHTTPStatus, Status: 500},
	"408":     {Kind: scrape.KindHTTPStatus, Status: 408},
	"timeout": {Kind: scrape.KindTimeout},
	"connect": {Kind: scrape.KindConnect},
}

// The AIMD curve: 429 and 503 halve the limit and double the spacing (from
// slowFloor, up to slowCap, never below the host's own delay); an answer to a
// request sent before the last cut does not cut again; every recoverAfter
// successes raise the pace a step, back to --per-host and the host's delay;
// other failures do neither.
func TestHostRateAIMD(t *testing.T) {
	const ms = time.Millisecond
	type step struct {
		answer string
		times  int  // answers in a row (1 if 0)
		old    bool // to a request released before the last cut
		limit  int  // the pace after them
		delay  time.Duration
	}
	tests := []struct {
		name    string
		perHost int
		base    time.Duration // --delay, or the Crawl-delay
		steps   []step
	}{
		{"a 429 halves the limit and spaces from the floor", 8, 0, []step{{answer: "429", limit: 4, delay: 250 * ms}}},
		{"a 503 as well", 8, 0, []step{{answer: "503", limit: 4, delay: 250 * ms}}},
		{"each cut halves and doubles again, to 1 and slowCap", 8, 0, []step{
			{answer: "429", limit: 4, delay: 250 * ms},
			{answer: "429", limit: 2, delay: 500 * ms},
			{answer: "503", limit: 1, delay: time.Second},
			{answer: "429", limit: 1, delay: 2 * time.Second},
			{answer: "429", times: 3, limit: 1, delay: 16 * time.Second},
			{answer: "429", limit: 1, delay: slowCap},
			{answer: "429", times: 5, limit: 1, delay: slowCap},
		}},
		{"the rest of a burst sent at the old pace cuts once", 8, 0, []step{
			{answer: "429", limit: 4, delay: 250 * ms},
			{answer: "429", times: 7, old: true, limit: 4, delay: 250 * ms},
			{answer: "503", old: true, limit: 4, delay: 250 * ms},
		}},
		{"recoverAfter successes raise it a step, the spacing back to none below the floor", 8, 0, []step{
			{answer: "429", limit: 4, delay: 250 * ms},
			{answer: "200", times: recoverAfter - 1, limit: 4, delay: 250 * ms},
			{answer: "200", limit: 5, delay: 0},
			{answer: "200", times: recoverAfter - 1, limit: 5, delay: 0},
			{answer: "404", limit: 6, delay: 0},
			{answer: "200", times: 2 * recoverAfter, limit: 8, delay: 0},
			{answer: "200", times: 5 * recoverAfter, limit: 8, delay: 0},
		}},
		{"from 1 in flight and 1s apart: 30 successes to 4 and none, 70 to all", 8, 0, []step{
			{answer: "429", limit: 4, delay: 250 * ms},
			{answer: "429", limit: 2, delay: 500 * ms},
			{answer: "429", limit: 1, delay: time.Second},
			{answer: "200", times: recoverAfter, limit: 2, delay: 500 * ms},
			{answer: "200", times: recoverAfter, limit: 3, delay: 250 * ms},
			{answer: "200", times: recoverAfter, limit: 4, delay: 0},
			{answer: "200", times: 4 * recoverAfter, limit: 8, delay: 0},
		}},
		{"a cut restarts the count of successes", 8, 0, []step{
			{answer: "429", limit: 4, delay: 250 * ms},
			{answer: "200", times: recoverAfter - 1, limit: 4, delay: 250 * ms},
			{answer: "429", limit: 2, delay: 500 * ms},
			{answer: "200", times: recoverAfter - 1, limit: 2, delay: 500 * ms},
			{answer: "200", limit: 3, delay: 250 * ms},
		}},
		{"at full pace nothing is counted", 8, 0, []step{
			{answer: "200", times: recoverAfter - 1, limit: 8, delay: 0},
			{answer: "429", limit: 4, delay: 250 * ms},
			{answer: "200", limit: 4, delay: 250 * ms},
		}},
		{"timeouts, connection errors, 408 and 500 neither cut nor count", 8, 0, []step{
			{answer: "429", limit: 4, delay: 250 * ms},
			{answer: "timeout", times: 3 * recoverAfter, limit: 4, delay: 250 * ms},
			{answer: "connect", times: 3 * recoverAfter, limit: 4, delay: 250 * ms},
			{answer: "408", times: 3 * recoverAfter, limit: 4, delay: 250 * ms},
			{answer: "500", times: 3 * recoverAfter, limit: 4, delay: 250 * ms},
		}},
		{"the host's own delay is the floor and where it comes back to", 8, time.Second, []step{
			{answer: "429", limit: 4, delay: 2 * time.Second},
			{answer: "429", limit: 2, delay: 4 * time.Second},
			{answer: "200", times: recoverAfter, limit: 3, delay: 2 * time.Second},
			{answer: "200", times: recoverAfter, limit: 4, delay: time.Second},
			{answer: "200", times: 4 * recoverAfter, limit: 8, delay: time.Second},
		}},
		{"a delay below the floor", 8, 100 * ms, []step{
			{answer: "429", limit: 4, delay: 250 * ms},
			{answer: "200", times: recoverAfter, limit: 5, delay: 100 * ms},
		}},
		{"a delay above slowCap stays", 8, time.Minute, []step{
			{answer: "429", limit: 4, delay: time.Minute},
		}},
		{"--per-host 1", 1, 0, []step{
			{answer: "429", limit: 1, delay: 250 * ms},
			{answer: "200", times: recoverAfter, limit: 1, delay: 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newHostRate(tt.perHost, tt.base)
			now := time.Unix(1_000_000, 0)
			lastCut := now
			for i, s := range tt.steps {
				for range max(s.times, 1) {
					now = now.Add(time.Second)
					released := now.Add(-time.Millisecond)
					if s.old {
						released = lastCut.Add(-time.Millisecond)
					}
					if r.answer(paceAnswers[s.answer], released, now, tt.perHost) == paceLowered {
						lastCut = now
					}
				}
				if r.limit != s.limit || r.delay != s.delay {
					t.Fatalf("step %d (%s x%d): %d in flight, %s apart; want %d, %s", i+1, s.answer, max(s.times, 1), r.limit, r.delay, s.limit, s.delay)
				}
			}
		})
	}
}

// A Crawl-delay longer than the host's delay becomes its delay, capped; a
// shorter one changes nothing.
func TestHostRateCrawlDelay(t *testing.T) {
	tests := []struct {
		name             string
		delay, crawl     time.Duration // --delay, and the Crawl-delay read
		most             time.Duration // --max-crawl-delay
		changed          bool
		wantBase, wantAt time.Duration // the host's delay after
	}{
		{"none", 0, 0, 30 * time.Second, false, 0, 0},
		{"longer than --delay", 100 * time.Millisecond, 2 * time.Second, 30 * time.Second, true, 2 * time.Second, 2 * time.Second},
		{"shorter than --delay", time.Second, 200 * time.Millisecond, 30 * time.Second, false, time.Second, time.Second},
		{"above the cap", 0, time.Hour, 30 * time.Second, true, 30 * time.Second, 30 * time.Second},
		{"too large to read (negative)", 0, -1 << 62, 30 * time.Second, true, 30 * time.Second, 30 * time.Second},
		{"capped below --delay", 5 * time.Second, time.Hour, time.Second, false, 5 * time.Second, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newHostRate(8, tt.delay)
			if changed := r.crawlDelay(tt.crawl, tt.most); changed != tt.changed || r.base != tt.wantBase || r.delay != tt.wantAt {
				t.Errorf("crawlDelay(%s, %s) = %v: base %s, delay %s; want %v, %s, %s", tt.crawl, tt.most, changed, r.base, r.delay, tt.changed, tt.wantBase, tt.wantAt)
			}
		})
	}
}

// The Crawl-delay read is the one of robots.txt's group for our agent, or of
// "*" when it has none of its own.
func TestRobotsCrawlDelay(t *testing.T) {
	const agent = "scrape/1.2 (+https://github.com/scrape-cluster/scrape)"
	r := &robotsFetcher{agent: agent}
	tests := []struct {
		name   string
		status int
		body   string
		want   time.Duration
	}{
		{"for all", 200, "User-agent: *\nCrawl-delay: 2\n", 2 * time.Second},
		{"fractional", 200, "User-agent: *\nCrawl-delay: 0.2\n", 200 * time.Millisecond},
		{"ours over all", 200, "User-agent: *\nCrawl-delay: 1\n\nUser-agent: scrape\nCrawl-delay: 5\n", 5 * time.Second},
		{"another agent's only", 200, "User-agent: otherbot\nCrawl-delay: 5\n", 0},
		{"another agent's, and none for all", 200, "User-agent: otherbot\nCrawl-delay: 5\n\nUser-agent: *\nDisallow: /x\n", 0},
		{"none", 200, "User-agent: *\nDisallow: /private\n", 0},
		{"not found", 404, "", 0},
		{"server error", 503, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := robotstxt.FromStatusAndString(tt.status, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.crawlDelay(data); got != tt.want {
				t.Errorf("Crawl-delay %s, want %s", got, tt.want)
			}
		})
	}
	if got := r.crawlDelay(nil); got != 0 {
		t.Errorf("no robots.txt: Crawl-delay %s", got)
	}
	// Too large for a Duration: whatever the conversion makes of it, the
	// host is spaced by the cap.
	data, err := robotstxt.FromString("User-agent: *\nCrawl-delay: 1e300\n")
	if err != nil {
		t.Fatal(err)
	}
	rate := newHostRate(8, 0)
	rate.crawlDelay(r.crawlDelay(data), 30*time.Second)
	if rate.delay != 30*time.Second {
		t.Errorf("Crawl-delay 1e300: spaced %s apart, want the cap", rate.delay)
	}
	if why, _ := rate.slowed(8); !strings.Contains(why, "capped to 30s") {
		t.Errorf("Crawl-delay 1e300: summary says %q", why)
	}
}

// The frontier keeps to a host's lowered pace: a 429 halves what it releases
// of the host at once and spaces the releases, each task carries the host's
// delay for its worker's lease, and other hosts go on at full pace.
func TestFrontierSlowsAHostThatAnswers429(t *testing.T) {
	f, _ := newTestFrontier(t, frontierConfig{Window: 64, PerHost: 4, Slots: 16, Retries: 2, Backoff: time.Millisecond})
	load(t, f, hostURLs{"a", 40}, hostURLs{"b", 40})
	t0 := time.Unix(1_000_000, 0)
	first, _, _ := f.pick(t0)
	if got := perHost(first); got["a"] != 4 || got["b"] != 4 {
		t.Fatalf("released %v, want 4 of each", got)
	}
	for _, e := range first {
		if e.task.Delay != 0 {
			t.Errorf("%s released with delay %s: no host is spaced yet", e.task.URL, e.task.Delay)
		}
	}
	var a []*entry
	for _, e := range first {
		if e.host.key == "a" {
			a = append(a, e)
		} else {
			f.answer(ok(e), t0)
		}
	}
	// All four of a's answer 429; they were sent together, so the pace is
	// cut once: 2 in flight, slowFloor apart.
	now := t0.Add(10 * time.Millisecond)
	for _, e := range a {
		m := ok(e)
		m.Kind, m.Status = scrape.KindHTTPStatus, 429
		if v, _ := f.answer(m, now); v != retry {
			t.Fatalf("429: verdict %d, want retry", v)
		}
	}
	if d, known := f.hostDelay("a"); d != slowFloor || !known {
		t.Errorf("a's delay for leases: %s (%v), want %s", d, known, slowFloor)
	}
	if d, known := f.hostDelay("b"); d != 0 || !known {
		t.Errorf("b's delay for leases: %s (%v), want none", d, known)
	}
	if _, known := f.hostDelay("nowhere"); known {
		t.Error("a host with no task is known to the leases")
	}

	// Within slowFloor of the cut, a's retries are due (backoff of a
	// millisecond) but its spacing is not; b goes on.
	batch, _, wait := f.pick(now.Add(5 * time.Millisecond))
	if got := perHost(batch); got["a"] != 0 || got["b"] != 4 {
		t.Errorf("right after the 429s: released %v, want b's 4 alone", got)
	}
	if wait <= 0 || wait > slowFloor {
		t.Errorf("pick waits %s, want a's spacing of at most %s", wait, slowFloor)
	}
	for _, e := range batch {
		f.answer(ok(e), now)
	}
	// Then a's tasks go one at a time, slowFloor to 1.5 times it apart,
	// each with the delay its worker must ask a lease for; unanswered,
	// they stop at a's lowered limit of 2 in flight.
	var held []*entry
	for _, at := range []time.Duration{250, 650, 1050} {
		for _, e := range pickAt(f, now.Add(at*time.Millisecond)) {
			if e.host.key == "a" {
				held = append(held, e)
			} else {
				f.answer(ok(e), now)
			}
		}
	}
	if len(held) != 2 {
		t.Fatalf("released %v of a over a second, unanswered; want 2, its lowered limit", keys(held))
	}
	for _, e := range held {
		f.answer(ok(e), now.Add(1050*time.Millisecond))
	}
	var releases []time.Time
	for at := now.Add(1050 * time.Millisecond); at.Before(now.Add(3 * time.Second)); at = at.Add(5 * time.Millisecond) {
		batch, _, _ := f.pick(at)
		for _, e := range batch {
			if e.host.key == "a" {
				releases = append(releases, at)
				if e.task.Delay != slowFloor {
					t.Errorf("%s released with delay %s, want %s", e.task.URL, e.task.Delay, slowFloor)
				}
			}
			f.answer(ok(e), at)
		}
	}
	if len(releases) < 5 {
		t.Fatalf("%d of a released in 2s, want one every %s or so", len(releases), slowFloor)
	}
	for i := 1; i < len(releases); i++ {
		if gap := releases[i].Sub(releases[i-1]); gap < slowFloor || gap > 3*slowFloor/2+5*time.Millisecond {
			t.Errorf("releases %d and %d of a %s apart, want %s to 1.5 times it", i, i+1, gap, slowFloor)
		}
	}
	slowed, n := f.slowed()
	if n != 1 || !strings.HasPrefix(slowed["a"], "429 x4: down to 2 in flight, 250ms apart") {
		t.Errorf("slowed %v (%d), want a's 429s", slowed, n)
	}
}

// A limit lowered by a host's 429s holds its tasks back, but that is the
// host's doing: the summary does not blame --per-host for it.
func TestFrontierLoweredLimitIsNotPerHostHoldingBack(t *testing.T) {
	f, _ := newTestFrontier(t, frontierConfig{Window: 64, PerHost: 2, Slots: 16, Retries: 2, Backoff: time.Millisecond})
	load(t, f, hostURLs{"a", 10})
	t0 := time.Unix(1_000_000, 0)
	batch := pickAt(f, t0)
	if len(batch) != 2 {
		t.Fatalf("released %v, want 2", keys(batch))
	}
	m := ok(batch[0])
	m.Kind, m.Status = scrape.KindHTTPStatus, 503
	f.answer(m, t0)
	f.answer(ok(batch[1]), t0)
	held := 0
	for at := t0; at.Before(t0.Add(5 * time.Second)); at = at.Add(10 * time.Millisecond) {
		batch := pickAt(f, at)
		held += len(batch)
		if len(batch) > 1 || f.hosts["a"].inflight > 1 {
			t.Fatalf("%d of a in flight, want 1: its limit after a 503", f.hosts["a"].inflight)
		}
		if at.Sub(t0) > 4*time.Second {
			for _, e := range batch {
				f.answer(ok(e), at)
			}
		}
	}
	if held == 0 {
		t.Fatal("nothing released after the 503")
	}
	if d, _ := f.politeness(); d != 0 {
		t.Errorf("per-host held the run back %s, want none: a's own limit did", d)
	}
}

// The summary names the most slowed hosts, a bounded number of them, and
// says why.
func TestFrontierSlowedNamesTheMostSlowedHosts(t *testing.T) {
	f, _ := newTestFrontier(t, frontierConfig{Window: 64, PerHost: 8, Slots: 8, Delay: 100 * time.Millisecond})
	var hosts []hostURLs
	for i := range maxSlowedHosts + 5 {
		hosts = append(hosts, hostURLs{fmt.Sprintf("h%02d", i), 1})
	}
	hosts = append(hosts, hostURLs{"fine", 1}, hostURLs{"crawl", 1}, hostURLs{"capped", 1}, hostURLs{"short", 1})
	load(t, f, hosts...)
	f.mu.Lock()
	now := time.Unix(1_000_000, 0)
	for i := range maxSlowedHosts + 5 {
		// Host hNN answered 429 NN+1 times.
		h := f.hosts[fmt.Sprintf("h%02d", i)]
		for range i + 1 {
			now = now.Add(time.Second)
			h.rate.answer(paceAnswers["429"], now, now, 8)
		}
	}
	f.crawlDelayLocked(f.hosts["crawl"], 2*time.Second)
	f.crawlDelayLocked(f.hosts["capped"], time.Hour)
	f.crawlDelayLocked(f.hosts["short"], 50*time.Millisecond) // under --delay: not slowed
	f.mu.Unlock()

	slowed, n := f.slowed()
	if n != maxSlowedHosts+5+2 || len(slowed) != maxSlowedHosts {
		t.Fatalf("%d hosts named of %d slowed, want %d of %d: %v", len(slowed), n, maxSlowedHosts, maxSlowedHosts+7, slowed)
	}
	for i := 5; i < maxSlowedHosts+5; i++ {
		if _, ok := slowed[fmt.Sprintf("h%02d", i)]; !ok {
			t.Errorf("h%02d (%d 429s) not named among the most slowed: %v", i, i+1, slowed)
		}
	}
	if why := slowed["h14"]; why != "429 x15: down to 1 in flight, 30s apart; 1 in flight, 30s apart at the end" {
		t.Errorf("h14: %q", why)
	}

	// Without 429s, Crawl-delays rank by length.
	f2, _ := newTestFrontier(t, frontierConfig{Window: 64, PerHost: 8, Slots: 8, Delay: 100 * time.Millisecond, MaxCrawlDelay: 10 * time.Second})
	load(t, f2, hostURLs{"fine", 1}, hostURLs{"crawl", 1}, hostURLs{"capped", 1}, hostURLs{"short", 1})
	f2.mu.Lock()
	f2.crawlDelayLocked(f2.hosts["crawl"], 2*time.Second)
	f2.crawlDelayLocked(f2.hosts["capped"], time.Hour)
	f2.crawlDelayLocked(f2.hosts["short"], 50*time.Millisecond)
	f2.mu.Unlock()
	slowed, n = f2.slowed()
	want := map[string]string{"crawl": "Crawl-delay 2s", "capped": "Crawl-delay 1h0m0s, capped to 10s by --max-crawl-delay"}
	if n != 2 || fmt.Sprint(slowed) != fmt.Sprint(want) {
		t.Errorf("slowed %v (%d), want %v", slowed, n, want)
	}
}

// The summary prints the hosts slowed down, and says how many more there
// were; its JSON names them under "slowed".
func TestSummarySaysWhichHostsWereSlowed(t *testing.T) {
	s := newSummary()
	s.Slowed = map[string]string{"b.example": "429 x3: down to 2 in flight, 500ms apart; back to full pace by the end", "a.example:8080": "Crawl-delay 2s"}
	s.SlowedHosts = 5
	var out strings.Builder
	s.Print(&out)
	for _, want := range []string{
		"  slowed down a.example:8080: Crawl-delay 2s\n  slowed down b.example: 429 x3: down to 2 in flight, 500ms apart; back to full pace by the end\n",
		"  slowed down 3 more hosts\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func pickAt(f *frontier, now time.Time) []*entry {
	batch, _, _ := f.pick(now)
	return batch
}
