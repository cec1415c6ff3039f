package coordinator

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
)

// A crawl far bigger than the frontier's memory, interrupted after it
// spilled and checkpointed, and resumed: every page of the site within the
// depth has one record, and the run spilled to disk on the way.
func TestSpilledCrawlInterruptedAndResumed(t *testing.T) {
	site := testsite.New(1)
	site.Fanout = 8
	t.Cleanup(site.Close)
	// 5 ms a page, so the run takes a second or so and the interruption
	// lands in its middle: batched runs do this site in a tenth of that.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond)
		site.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	const pages = 1 + 8 + 8*8 + 8*8*8 // depth 3

	h := newHarness(t, 8)
	h.cfg.Depth, h.cfg.SameHost = 3, true
	h.cfg.MaxQueued, h.cfg.CheckpointEvery = 16, 50*time.Millisecond
	h.cfg.Input = bytes.NewReader([]byte(srv.URL + "/tree\n"))
	c, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// Interrupted once a third of the pages are written and a checkpoint
	// was made while pages waited on disk.
	var spilled bool
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ctx.Err() == nil {
			segs, _ := segments(filepath.Join(h.state, frontierDir))
			_, cperr := os.Stat(filepath.Join(h.state, checkpointFile))
			if len(segs) > 0 && cperr == nil && lines(h.out) >= pages/3 {
				spilled = true
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	start := time.Now()
	_, err = c.Run(ctx)
	t.Logf("interrupted run took %s: %v", time.Since(start).Round(time.Millisecond), err)
	cancel()
	<-watched
	if !spilled {
		t.Fatalf("the run ended (%v) before it had spilled, checkpointed and written %d records: %d records", err, pages/3, lines(h.out))
	}
	if err == nil {
		t.Fatal("the interrupted run says it finished")
	}
	before := lines(h.out)

	h.cfg.Resume, h.cfg.Input = true, nil
	h.launcher = newInprocLauncher(t, h.log) // a node is launched once a run
	h.cfg.Launcher = h.launcher
	if _, err := h.run(nil); err != nil {
		t.Fatalf("resume: %v", err)
	}
	recs := byURL(t, h.records())
	if len(recs) != pages {
		t.Errorf("%d pages with records, want %d (%d before the interruption)", len(recs), pages, before)
	}
	for u, r := range recs {
		if r.Error != nil {
			t.Errorf("%s: %v", u, r.Error)
		}
	}
}

// lines counts the lines of a file that may be being written.
func lines(path string) int {
	data, _ := os.ReadFile(path)
	return bytes.Count(data, []byte("\n"))
}
