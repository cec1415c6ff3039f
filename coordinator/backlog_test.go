package coordinator

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/queue"
)

// treeCrawl is a crawl of endless trees, one per host: page P links to P/0
// to P/fanout-1, and back to its parent and to the host's first page, which
// the frontier must take for pages it has.
type treeCrawl struct {
	t      *testing.T
	f      *frontier
	snk    *sink
	fanout int
	// released counts the releases of each URL; maxQueued is the most
	// tasks the hosts' queues held after a step.
	released  map[string]int
	maxQueued int
	// lastID is the last task ID released of each host: a host's tasks go
	// in the order they were found.
	lastID map[string]uint64
}

func (c *treeCrawl) links(task string, parent string) []string {
	var ls []string
	for i := range c.fanout {
		ls = append(ls, fmt.Sprintf("%s/%d", task, i))
	}
	if parent != "" {
		ls = append(ls, parent, parent+"#again")
	}
	return ls
}

// step does what dispatch and the collector do with one pick: every task
// released is answered as fetched, its record written and its links
// passed on; then the pages found are flushed and the output committed.
// It returns how many tasks were released.
func (c *treeCrawl) step() int {
	c.t.Helper()
	now := time.Now()
	batch, denied, _ := c.f.pick(now)
	if err := c.f.failure(); err != nil {
		c.t.Fatal(err)
	}
	if len(denied) > 0 {
		c.t.Fatalf("denied %v", keys(denied))
	}
	for _, e := range batch {
		if e.task.ID <= c.lastID[e.host.key] {
			c.t.Errorf("%s: task %d released after %d", e.host.key, e.task.ID, c.lastID[e.host.key])
		}
		c.lastID[e.host.key] = e.task.ID
		c.released[e.task.URL]++
		v, task := c.f.answer(ok(e), now)
		if v != write {
			c.t.Fatalf("%s: verdict %v", e.task.URL, v)
		}
		if err := c.snk.write([]byte(task.URL), queue.ResultMeta{Task: task.ID}); err != nil {
			c.t.Fatal(err)
		}
		c.f.discover(task, c.links(task.URL, task.Parent))
	}
	if err := c.f.flushFound(); err != nil {
		c.t.Fatal(err)
	}
	if err := c.snk.flush(); err != nil {
		c.t.Fatal(err)
	}
	c.f.settle()
	c.f.mu.Lock()
	c.maxQueued = max(c.maxQueued, c.f.queued)
	c.f.mu.Unlock()
	return len(batch)
}

func (c *treeCrawl) done() bool {
	select {
	case <-c.f.done:
		return true
	default:
		return false
	}
}

func newTreeCrawl(t *testing.T, state string, rec recovered) *treeCrawl {
	t.Helper()
	j, err := openJournal(state, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.close() })
	snk := &sink{w: &memWriter{}, stats: newSummary(), journal: j}
	cfg := frontierConfig{Window: 16, PerHost: 4, Slots: 8, MaxQueued: 32, Crawl: newCrawlScope(2, false, nil, 0),
		SpillDir: filepath.Join(state, frontierDir), CheckpointEvery: time.Hour}
	f := newFrontier(cfg, nil, queue.Run{ID: "T"}, snk, nil)
	t.Cleanup(func() { f.store.close() })
	if err := f.restore(rec); err != nil {
		t.Fatal(err)
	}
	load(t, f, hostURLs{"a", 1}, hostURLs{"b", 1})
	return &treeCrawl{t: t, f: f, snk: snk, fanout: 50, released: map[string]int{}, lastID: map[string]uint64{}}
}

// treePages is how many pages the crawl of newTreeCrawl has: two hosts,
// each its first page, 50 below it and 50 below each of those.
const treePages = 2 * (1 + 50 + 50*50)

// A crawl whose pages outgrow the frontier's head keeps them on disk, and
// still fetches every page once, each host's in the order found, the
// hosts in turn.
func TestFrontierSpillsACrawlBeyondItsHead(t *testing.T) {
	state := t.TempDir()
	c := newTreeCrawl(t, state, recovered{Done: map[uint64]bool{}})
	spilled := 0
	for steps := 0; !c.done(); steps++ {
		if steps > 10*treePages {
			t.Fatalf("not done after %d steps: %d outstanding", steps, c.f.outstanding())
		}
		c.step()
		segs, _ := segments(filepath.Join(state, frontierDir))
		spilled = max(spilled, len(segs))
	}
	if spilled == 0 {
		t.Error("no segment file written: the crawl never spilled")
	}
	if limit := 32 + 2*chunkMax; c.maxQueued > limit {
		t.Errorf("the hosts' queues held %d tasks, want at most %d", c.maxQueued, limit)
	}
	if len(c.released) != treePages {
		t.Errorf("%d pages released, want %d", len(c.released), treePages)
	}
	for u, n := range c.released {
		if n != 1 {
			t.Errorf("%s released %d times", u, n)
		}
	}
	if w := c.snk.w.(*memWriter); len(w.recs) != treePages {
		t.Errorf("%d records, want %d", len(w.recs), treePages)
	}
}

// A run that stops at any point after a checkpoint (a kill -9: no goodbye)
// and is resumed from its state directory writes every page once in all:
// the checkpoint, the journal's commits after it and the hosts' logs give
// back each page that has no record, with its ID, and none that has one.
func TestResumeReplaysTheHostsLogs(t *testing.T) {
	for _, after := range []int{0, 3, 40} { // steps between the checkpoint and the kill
		t.Run(fmt.Sprint(after), func(t *testing.T) {
			state := t.TempDir()
			a := newTreeCrawl(t, state, recovered{Done: map[uint64]bool{}})
			for range 30 {
				a.step()
			}
			// Twice: the second checkpoint removes segments the first
			// needed, and none the second does.
			for range 2 {
				if err := a.f.checkpointIfDue(time.Now().Add(2 * time.Hour)); err != nil {
					t.Fatal(err)
				}
				for range 10 {
					a.step()
				}
			}
			for range after {
				a.step()
			}
			// Released and never answered: lost with the coordinator.
			if batch, _, _ := a.f.pick(time.Now()); len(batch) == 0 {
				t.Fatal("nothing in flight at the kill")
			}
			a.f.store.close()
			a.snk.journal.close()

			rec, err := recoverRun(state)
			if err != nil {
				t.Fatal(err)
			}
			b := newTreeCrawl(t, state, rec)
			for steps := 0; !b.done(); steps++ {
				if steps > 10*treePages {
					t.Fatalf("resumed run not done after %d steps: %d outstanding", steps, b.f.outstanding())
				}
				b.step()
			}
			records := map[string]int{}
			aw := a.snk.w.(*memWriter)
			for _, r := range aw.recs[:rec.Out.Records] {
				records[string(r)]++
			}
			for _, r := range b.snk.w.(*memWriter).recs {
				records[string(r)]++
			}
			if len(records) != treePages {
				t.Errorf("%d pages with records, want %d (%d before the kill, %d after)", len(records), treePages, rec.Out.Records, len(b.snk.w.(*memWriter).recs))
			}
			for u, n := range records {
				if n != 1 {
					t.Errorf("%s: %d records", u, n)
				}
			}
		})
	}
}
