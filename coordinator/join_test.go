package coordinator

import (
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/queue"
)

// TestJoinersCount: a joiner's repeated hellos are one join; it is counted
// until it says bye or falls silent; a bye from a worker that never joined
// (one the run started) changes nothing.
func TestJoinersCount(t *testing.T) {
	j := newJoiners()
	t0 := time.Now()
	a := queue.Hello{Node: "a", Worker: "a:1", Slots: 4, Joined: true}
	b := queue.Hello{Node: "b", Worker: "b:1", Slots: 2, Joined: true}
	j.hello(a, t0)
	j.hello(a, t0.Add(queue.HelloInterval))
	j.hello(b, t0)
	if ev := j.take(); len(ev) != 2 || ev[0].node != "a" || ev[0].slots != 4 || ev[0].left || ev[1].node != "b" {
		t.Fatalf("joins %+v", ev)
	}
	if j.count() != 2 {
		t.Errorf("%d live joiners, want 2", j.count())
	}
	j.bye(queue.Bye{Node: "localhost", Worker: "launched:9"})
	if ev := j.take(); len(ev) != 0 || j.count() != 2 {
		t.Errorf("bye of a launched worker: %+v, %d live", ev, j.count())
	}

	// b is silent from t0; a beat later.
	j.expire(t0.Add(joinerSilence + time.Second))
	if ev := j.take(); len(ev) != 1 || ev[0].worker != "b:1" || !ev[0].left || ev[0].why == "" || ev[0].slots != 2 {
		t.Errorf("silent joiner: %+v", ev)
	}
	j.bye(queue.Bye{Node: "a", Worker: "a:1"})
	if ev := j.take(); len(ev) != 1 || ev[0].worker != "a:1" || !ev[0].left || ev[0].why != "" {
		t.Errorf("bye: %+v", ev)
	}
	if j.count() != 0 || j.joined() != 2 {
		t.Errorf("after both left: %d live, %d joined; want 0, 2", j.count(), j.joined())
	}
}

// TestJoinersWidenTheWindow: the window grows with joined slots, four tasks
// per slot, so a big joiner is not starved by a window sized for the
// machinefile; it does not narrow when they leave.
func TestJoinersWidenTheWindow(t *testing.T) {
	f := newFrontier(frontierConfig{Window: 64, Slots: 2}, nil, queue.Run{ID: "T"}, nil, nil)
	f.addSlots(100)
	if f.cfg.Window != 408 || f.cfg.Slots != 102 {
		t.Errorf("after a 100-slot joiner: window %d, slots %d; want 408, 102", f.cfg.Window, f.cfg.Slots)
	}
	f.addSlots(-100)
	if f.cfg.Window != 408 || f.cfg.Slots != 2 {
		t.Errorf("after it left: window %d, slots %d; want 408, 2", f.cfg.Window, f.cfg.Slots)
	}
}
