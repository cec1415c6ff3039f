package main

import (
	"os"
	"runtime/debug"
	"time"
)

// GC pacing for the two kinds of scrape process, unless GOGC says otherwise.
// Their heaps are nothing alike:
//
//   - A worker keeps only the pages in flight, a few MB, and turns over many
//     times that each second. At the default GOGC=100 it collects dozens of
//     times a second, with every slot's goroutine stack scanned each time.
//     workerGOGC spends about 10 MB more to do a fraction of that work.
//   - The coordinator holds the queue (embedded JetStream) and the frontier's
//     window, a few tens of MB. Most of what it allocates is the queue's
//     short-lived message copies. It used to run at GOGC=50 to stay well
//     inside its memory budget (100 MB with a 1,000,000-line urls file),
//     which cost some 5 µs of its CPU per page on the CPU-bound benchmark
//     (54 against 48-50 at GOGC=100-200; GOGC=off is worse, at 77: fresh
//     memory faulted in). Now it runs at coordinatorGOGC under a soft
//     limit of coordinatorMemLimit: the collector works harder only as the
//     heap nears the budget, not all the time.
//
// A worker's heap can also hold slots × --max-body of bodies at once (bad
// sites send endless ones), and GOGC=400 alone would let that grow to five
// times as much before a collection. workerMemLimit is a soft limit that
// makes the collector work harder as the heap nears it, so the relaxed
// pacing costs memory only while the heap is small.
//
// A run's first second is different again: the queue's server and the
// run's streams allocate a few MB once, and at GOGC=50 the heap starts so
// small that this alone took four collections, some 4 ms of a short run's
// 30. For startupTime the coordinator paces as a worker does, with
// startupGOGC under a soft limit of startupMemLimit, so that a big urls
// file read in that second cannot grow the heap past it.
const (
	workerGOGC      = 400
	coordinatorGOGC = 100
	// coordinatorMemLimit is the coordinator's budget less what is not
	// heap (stacks, the runtime's own). A live heap above it would make
	// the collector run back to back (the runtime caps that at half the
	// CPU); only a run that has blown the budget anyway gets there.
	coordinatorMemLimit = 96 << 20
	workerMemLimit      = 128 << 20
	startupGOGC         = 400
	startupMemLimit     = 48 << 20
	startupTime         = time.Second
)

func setGOGC(percent int) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
}

// setStartupGC paces the coordinator's collector for its start-up, and
// with steady pacing once that is over.
func setStartupGC() {
	if os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(startupGOGC)
	limit := debug.SetMemoryLimit(-1)
	setMemLimit(startupMemLimit)
	time.AfterFunc(startupTime, func() {
		debug.SetGCPercent(coordinatorGOGC)
		debug.SetMemoryLimit(limit) // what it was: GOMEMLIMIT's, or none
		setMemLimit(coordinatorMemLimit)
	})
}

func setMemLimit(bytes int64) {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(bytes)
	}
}
