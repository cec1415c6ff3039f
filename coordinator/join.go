package coordinator

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scrape-cluster/scrape/queue"
)

// joinerSilence is how long a worker that joined by itself may go without a
// hello before the run stops counting on it: three missed beats. Its tasks
// are handed on by JetStream after AckWait regardless.
const joinerSilence = 3 * queue.HelloInterval

// joiners are the workers that joined the run by themselves (scrape worker
// --nats), from nodes the run did not start and need not know. They are
// counted from their hellos and byes, which arrive on NATS callbacks; the
// fleet's watch reports them.
type joiners struct {
	mu     sync.Mutex
	live   map[string]*joiner // by worker ID (hostname:pid)
	news   []joinEvent        // not yet reported
	total  int                // workers that ever joined
	names  map[string]string  // every joiner's node, by worker ID: results outlive their sender
	notify chan struct{}      // a nudge for watch; never blocks
}

type joiner struct {
	node    string
	slots   int
	renders int // render slots: 0 if it has no browser
	seen    time.Time
}

type joinEvent struct {
	node, worker string
	slots        int
	renders      int
	left         bool
	why          string // of a joiner that left without a word
}

func newJoiners() *joiners {
	return &joiners{live: map[string]*joiner{}, names: map[string]string{}, notify: make(chan struct{}, 1)}
}

// hello counts a joiner's hello, the first of which is its joining.
func (j *joiners) hello(h queue.Hello, now time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if jr, ok := j.live[h.Worker]; ok {
		jr.seen = now
		return
	}
	j.live[h.Worker] = &joiner{node: h.Node, slots: h.Slots, renders: h.RenderSlots, seen: now}
	j.names[h.Worker] = h.Node
	j.total++
	j.news = append(j.news, joinEvent{node: h.Node, worker: h.Worker, slots: h.Slots, renders: h.RenderSlots})
	j.nudge()
}

// node is what the joiner with this ID called its node, "" if it never said
// hello. A hello is the joiner's own word: it can name itself anything, but
// speak only for itself.
func (j *joiners) node(id string) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.names[id]
}

// bye stops counting a joiner that left.
func (j *joiners) bye(b queue.Bye) {
	j.mu.Lock()
	defer j.mu.Unlock()
	jr, ok := j.live[b.Worker]
	if !ok {
		return // a launched worker, or a joiner already given up on
	}
	delete(j.live, b.Worker)
	j.news = append(j.news, joinEvent{node: jr.node, worker: b.Worker, slots: jr.slots, renders: jr.renders, left: true})
	j.nudge()
}

// expire gives up on joiners silent for longer than joinerSilence: killed,
// or cut off from the queue.
func (j *joiners) expire(now time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for id, jr := range j.live {
		if now.Sub(jr.seen) > joinerSilence {
			delete(j.live, id)
			j.news = append(j.news, joinEvent{node: jr.node, worker: id, slots: jr.slots, renders: jr.renders, left: true, why: fmt.Sprintf("no word for %s", joinerSilence)})
		}
	}
}

func (j *joiners) nudge() {
	select {
	case j.notify <- struct{}{}:
	default:
	}
}

// take returns the joins and leaves not reported yet.
func (j *joiners) take() []joinEvent {
	j.mu.Lock()
	defer j.mu.Unlock()
	ev := j.news
	j.news = nil
	return ev
}

func (j *joiners) count() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.live)
}

func (j *joiners) joined() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.total
}

// joinHint is the command that lets a worker join this run by hand.
func (c *Coordinator) joinHint(q *runQueue) string {
	if q.srv == nil {
		return fmt.Sprintf("scrape worker --nats %s --run %s, with credentials for that NATS", strings.Join(c.cfg.NATS, ","), c.run.ID)
	}
	addr := c.cfg.Advertise
	if addr == "" {
		host, _, _ := splitListen(c.cfg.Listen)
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			addr = host
		} else if addr, _ = os.Hostname(); addr == "" {
			addr = "THIS-HOST"
		}
	}
	dir, err := filepath.Abs(q.srv.dir)
	if err != nil {
		dir = q.srv.dir
	}
	hint := fmt.Sprintf("scrape worker --nats nats://%s --nkey %s", net.JoinHostPort(addr, strconv.Itoa(q.srv.port())), filepath.Join(dir, JoinKeyFile))
	if q.srv.pin != "" {
		hint += " --tls-ca " + filepath.Join(dir, CertFile)
	}
	return hint
}

// addSlots counts n more slots in the cluster (fewer, for n < 0) when a
// worker joins or leaves, and widens the window to keep them busy: four
// tasks per slot, as at the start. The window never narrows again; a
// narrower one would only hold back work already released.
func (f *frontier) addSlots(n int) {
	f.mu.Lock()
	f.cfg.Slots = max(f.cfg.Slots+n, 0)
	f.cfg.Window = max(f.cfg.Window, 4*f.cfg.Slots)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}
