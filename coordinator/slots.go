package coordinator

import (
	"fmt"

	"github.com/scrape-cluster/scrape/machinefile"
)

// How many pages a node has in flight.
//
// A machinefile slot keeps its MPI meaning: a share of the cluster, as a
// process or a CPU would be, and the weight of a node against the others.
// But an MPI slot does work that keeps a CPU busy, and a page in flight
// keeps it busy for a few hundred microseconds of its hundred-millisecond
// wait. So a node fetches PerSlot pages at a time for each of its slots:
// "node1:2" fetches 32 pages at a time, and a run without -f, one slot per
// CPU, 32 on two CPUs and 128 on eight.
//
// 16 is what one Scrapy process (one core: Scrapy runs on a single thread)
// has in flight by default. A page costs the coordinator and the worker
// together about 0.6 ms of CPU (bench/), so 16 pages per CPU at 100 ms a page
// keep it about a tenth busy: the site, not the machine, sets the pace. A site that
// answers in microseconds makes the run CPU-bound whatever the number, and
// more pages waiting for a core cost only their memory: a page in flight
// holds at most --max-body, and is typically tens of KB.
//
// Politeness stays with the coordinator: however many pages the nodes could
// fetch, no host gets more than --per-host at once (frontier.pick), so a
// larger PerSlot speeds up a run over many hosts and leaves a run on one
// site exactly as polite as before.
const (
	// DefaultPerSlot is the pages a node fetches at a time per slot.
	DefaultPerSlot = 16
	// MaxPerSlot bounds PerSlot: more than this per CPU is a typo.
	MaxPerSlot = 10_000
	// MaxNodeFetches bounds one node's pages in flight, whatever its slots
	// and PerSlot: a worker sizes its connection pool and its queues by it.
	MaxNodeFetches = 1 << 16
)

// nodeFetches is how many pages a node of slots slots fetches at a time
// when each slot is worth perSlot of them.
func nodeFetches(slots, perSlot int) int {
	if slots <= 0 || perSlot <= 0 {
		return 0
	}
	if slots > MaxNodeFetches/perSlot {
		return MaxNodeFetches
	}
	return slots * perSlot
}

// fetches is how many pages h's worker fetches at a time.
func (c *Config) fetches(h machinefile.Host) int { return nodeFetches(h.Slots, c.PerSlot) }

// clusterFetches is how many pages the machinefile's nodes fetch at a time,
// all together: what the window and the per-host hint are sized by.
func (c *Config) clusterFetches() int {
	n := 0
	for _, h := range c.Hosts {
		n += c.fetches(h)
	}
	return n
}

// checkPerSlot fills in PerSlot's default and refuses a value past its bound.
func (c *Config) checkPerSlot() error {
	if c.PerSlot <= 0 {
		c.PerSlot = DefaultPerSlot
	}
	if c.PerSlot > MaxPerSlot {
		return fmt.Errorf("pages per slot %d: want 1 to %d", c.PerSlot, MaxPerSlot)
	}
	return nil
}
