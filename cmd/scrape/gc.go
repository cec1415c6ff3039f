package main

import (
	"os"
	"runtime/debug"
)

// GC pacing for the two kinds of scrape process, unless GOGC says otherwise.
// Their heaps are nothing alike:
//
//   - A worker keeps only the pages in flight, a few MB, and turns over many
//     times that each second. At the default GOGC=100 it collects dozens of
//     times a second, with every slot's goroutine stack scanned each time.
//     workerGOGC spends about 10 MB more to do a fraction of that work.
//   - The coordinator holds the queue (embedded JetStream) and the frontier's
//     window. Most of what it allocates is the queue's short-lived message
//     copies, so a lower GOGC costs little CPU and keeps its resident memory
//     well inside its budget (100 MB with a 1,000,000-line urls file).
const (
	workerGOGC      = 400
	coordinatorGOGC = 50
)

func setGOGC(percent int) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
}
