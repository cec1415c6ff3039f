package coordinator

import (
	"cmp"
	"slices"
	"time"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// The breaker. Without it, a host that refuses or hangs costs each of its
// URLs all its attempts, PerHost URLs at a time: 200 URLs of a host that
// hangs take 200/8 × 3 attempts × --timeout, and the run waits for them.
// So the frontier counts each host's failures to reach it in a row (connect,
// dns, tls, timeout: no HTTP answer at all). At HostFailures of them the
// breaker opens: the host's queue is held, and its failed tasks wait there
// instead of each waiting out its own backoff. Once a backoff has passed,
// one task goes as a probe: a URL not tried yet, if one waits, rather than
// one that just failed and may fail by itself. Any HTTP answer, the probe's
// or a late one from a task that was in flight, closes the breaker and the
// host's queue goes on as before. A probe that fails too puts the host down:
// its queued URLs, and those that arrive while it is down, are recorded at
// once as host_unreachable, with the last failure in their message.
//
// A failure counts only if the host gave no HTTP answer after the request
// was sent. A host that serves its pages while some of its URLs hang is
// alive, though its limit's worth of requests can be stuck on those URLs at
// once and time out together: their failures, each older than an answer the
// host gave meanwhile, do not count.

// downFor is how long a host whose probe failed stays down. A crawl may
// keep finding its URLs: after this, the next one goes as a new probe.
const downFor = maxBackoff

// breakerState is where a host's breaker is.
type breakerState uint8

const (
	hostUp      breakerState = iota // closed: tasks go; failures in a row are counted
	hostSuspect                     // open: tasks wait until probeAt, then one goes as the probe
	hostProbing                     // the probe is out; the rest wait for its answer
	hostDown                        // the probe failed: tasks are recorded until probeAt
)

// breaker is one host's.
type breaker struct {
	state    breakerState
	fails    int       // failures to reach the host, in a row
	last     string    // the last of them: "connect: connection refused"
	probeAt  time.Time // suspect: when the probe may go; down: when the next one may
	probe    uint64    // probing: the probe's task
	recorded int       // tasks recorded as host_unreachable
	// answered is when the host last gave an HTTP answer.
	answered time.Time
}

// breakerSay is the breaker's say over a task whose attempt failed.
type breakerSay uint8

const (
	asUsual   breakerSay = iota // retried or written as any failure is
	holdTask                    // if it is retried, it waits behind the breaker, with no backoff of its own
	finalTask                   // written as it is: the host is down
)

// unreachable says whether a failure of kind kept the request from reaching
// the host at all, when there is no HTTP status either.
func unreachable(kind string) bool {
	switch kind {
	case scrape.KindConnect, scrape.KindDNS, scrape.KindTLS, scrape.KindTimeout:
		return true
	}
	return false
}

// reached tells what an answer says of its host: failed, it could not be
// reached; answered, it gave an HTTP answer, whatever the status. Neither
// (a worker lost, a blocked address) says nothing of the host.
func reached(m queue.ResultMeta) (failed, answered bool) {
	if m.Kind == "" || m.Status > 0 {
		return false, true
	}
	return unreachable(m.Kind), false
}

// breakerLocked accounts for the answer m to e in its host's breaker, and
// says what becomes of e if the attempt failed.
func (f *frontier) breakerLocked(e *entry, m queue.ResultMeta, now time.Time) breakerSay {
	if f.cfg.HostFailures <= 0 {
		return asUsual
	}
	h := e.host
	b := &h.brk
	failed, answered := reached(m)
	switch {
	case answered:
		if b.state != hostUp {
			f.log.Info("host answers again: its URLs go on", "host", h.key)
		}
		b.state, b.fails = hostUp, 0
		if now.After(b.answered) {
			b.answered = now
		}
		return asUsual
	case !failed:
		if b.state == hostProbing && b.probe == e.task.ID {
			b.state, b.probeAt = hostSuspect, now // told nothing: the next task probes
		}
		return asUsual
	case b.answered.After(e.sent):
		return asUsual // the host answered meanwhile: this URL failed by itself
	}
	b.fails++
	b.last = m.Kind + ": " + m.Message
	switch b.state {
	case hostUp:
		if b.fails < f.cfg.HostFailures {
			return asUsual
		}
		f.suspectLocked(h, now, backoff(f.cfg.Backoff, 2, 0))
	case hostProbing:
		if b.probe != e.task.ID {
			break // one in flight before the probe: it waits with the rest
		}
		b.state, b.probeAt = hostDown, now.Add(downFor)
		f.log.Warn("host unreachable: its URLs are recorded as host_unreachable", "host", h.key, "failures", b.fails, "last", b.last)
		return finalTask
	case hostDown:
		return finalTask
	}
	return holdTask
}

// suspectLocked opens h's breaker: its tasks wait, and after wait one goes
// as the probe. Those that wait out a backoff of their own wait no longer.
func (f *frontier) suspectLocked(h *hostState, now time.Time, wait time.Duration) {
	at := now.Add(wait)
	h.brk.state, h.brk.probeAt = hostSuspect, at
	for _, e := range h.queue {
		if e.notBefore.After(at) {
			e.notBefore = at
		}
	}
	f.log.Info("host failing: its URLs wait for a probe", "host", h.key, "failures", h.brk.fails, "last", h.brk.last, "probe_in", wait.Round(time.Millisecond))
}

// robotsFailedLocked counts the failed attempts to reach h that ended its
// robots.txt fetch: they are the host's failures as much as a page's. Should
// they open the breaker, the first page goes as the probe at once: the
// robots.txt fetch waited out its own backoffs.
func (f *frontier) robotsFailedLocked(h *hostState, fails int, last string, now time.Time) {
	if f.cfg.HostFailures <= 0 || fails == 0 || h.brk.state != hostUp {
		return
	}
	h.brk.fails += fails
	h.brk.last = "robots.txt: " + last
	if h.brk.fails >= f.cfg.HostFailures {
		f.suspectLocked(h, now, 0)
	}
}

// gateLocked is the breaker's say in pick over h, whose queue is not empty:
// hold says none of its tasks goes now, and wait how long until that may
// change (0: until an answer comes). A host that is down has its queue taken
// to be recorded (gone).
func (f *frontier) gateLocked(h *hostState, now time.Time) (gone []*entry, hold bool, wait time.Duration) {
	b := &h.brk
	switch b.state {
	case hostDown:
		if now.Before(b.probeAt) {
			gone, h.queue = h.queue, nil
			f.queued -= len(gone)
			b.recorded += len(gone)
			why := scrape.Errorf(scrape.KindHostUnreachable, "host %s unreachable: %d attempts in a row failed, the last: %s", h.key, b.fails, b.last)
			for _, e := range gone {
				e.refusal = why
				f.sink.hold(e.task)
				if e.retried {
					f.retryWaiting--
				}
			}
			return gone, true, 0
		}
		b.state = hostSuspect // down long enough: try it again
		fallthrough
	case hostSuspect:
		if d := b.probeAt.Sub(now); d > 0 {
			return nil, true, d
		}
		// The probe: the first URL not tried yet, if one waits behind the
		// failed ones.
		for i, e := range h.queue {
			if e.task.Attempt == 1 {
				copy(h.queue[1:i+1], h.queue[:i])
				h.queue[0] = e
				break
			}
		}
	case hostProbing:
		return nil, true, 0
	}
	return nil, false, 0
}

// releasedLocked notes that pick released e now: a retry is made (one that
// is recorded unfetched is not), and the first task of a suspect host is its
// probe.
func (f *frontier) releasedLocked(e *entry, now time.Time) {
	e.sent = now
	if e.retried {
		e.retried = false
		f.retried++
	}
	if b := &e.host.brk; b.state == hostSuspect {
		b.state, b.probe = hostProbing, e.task.ID
	}
}

// UnreachableHost is a host the breaker gave up on.
type UnreachableHost struct {
	Host string `json:"host"`
	// URLs is how many of its URLs were recorded as host_unreachable.
	URLs int `json:"urls"`
	// Error is the last failure to reach it.
	Error string `json:"error"`
}

// unreachableHosts lists the hosts that had URLs recorded as
// host_unreachable, by host.
func (f *frontier) unreachableHosts() []UnreachableHost {
	f.mu.Lock()
	defer f.mu.Unlock()
	var list []UnreachableHost
	for _, h := range f.hosts {
		if h.brk.recorded > 0 {
			list = append(list, UnreachableHost{Host: h.key, URLs: h.brk.recorded, Error: h.brk.last})
		}
	}
	slices.SortFunc(list, func(a, b UnreachableHost) int { return cmp.Compare(a.Host, b.Host) })
	return list
}
