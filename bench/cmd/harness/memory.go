package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// memResult is the coordinator-memory case.
type memResult struct {
	Lines      int           `json:"lines"`
	Measured   time.Duration `json:"measured_ns"` // from start to the SIGTERM (or the end)
	Finished   bool          `json:"finished"`    // the run ended before the SIGTERM
	Records    int           `json:"records"`     // records in the output when it ended
	CoordHWM   int64         `json:"coordinator_vmhwm_kib"`
	CoordPeak  int64         `json:"coordinator_peak_sampled_kib"`
	WorkerHWM  int64         `json:"worker_vmhwm_kib"`
	Series     []memSample   `json:"series"`
	StopTook   time.Duration `json:"stop_took_ns"`
	ExitStatus string        `json:"exit"`
}

// runMemory runs scrape on a urls file of MemLines lines (pages of the
// CPU-bound site, repeated), sampling the coordinator's RSS every 50 ms. By
// default the run goes to its end (a million pages take a few minutes on
// two cores, and an output of about 1.5 GB, removed afterwards); a shorter
// -mem-time stops it with SIGTERM, as Ctrl-C would, and the report says how
// far it got.
func runMemory(ctx context.Context, o options, bins binaries, work string, rep *report) error {
	dir := filepath.Join(work, "mem")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	site, err := startSite(bins.Site, o.CPUPages, 0, 0)
	if err != nil {
		return err
	}
	defer site.stop()
	urls := filepath.Join(dir, "urls.txt")
	logf("coordinator memory: writing %d-line urls file", o.MemLines)
	if err := urlsFile(urls, site.URLs, o.MemLines, o.CPUPages); err != nil {
		return err
	}
	defer os.Remove(urls)
	mf := filepath.Join(dir, "machinefile")
	if err := os.WriteFile(mf, fmt.Appendf(nil, "localhost:%d\n", o.InFlight), 0o644); err != nil {
		return err
	}
	out := filepath.Join(dir, "scrape.jsonl")
	defer os.Remove(out)
	logf("coordinator memory: scrape on %d lines for at most %s", o.MemLines, o.MemTime)
	c := toolCommand(bins, "scrape", workload{InFlight: o.InFlight}, mf, urls, out)
	m, err := runMeasured(ctx, dir, c, o.MemTime+60*time.Second, o.MemTime, true)
	if err != nil {
		return err
	}
	res := memResult{Lines: o.MemLines, CoordHWM: m.Mem.rootHWM(), Series: m.Mem.Samples}
	for pid, p := range m.Mem.Procs {
		if pid != m.Mem.Root {
			res.WorkerHWM += p.HWM
		}
	}
	for _, s := range m.Mem.Samples {
		res.CoordPeak = max(res.CoordPeak, s.Root)
	}
	res.Finished = m.ExitErr == nil
	res.Measured = min(m.Wall, o.MemTime)
	if !res.Finished {
		res.StopTook = m.Wall - o.MemTime
	}
	res.ExitStatus = "0"
	if m.ExitErr != nil {
		res.ExitStatus = m.ExitErr.Error()
	}
	res.Records, err = countLines(out)
	if err != nil {
		return err
	}
	logf("coordinator memory: peak %.1f MiB (VmHWM), %d records in %s, exit %s",
		mib(res.CoordHWM), res.Records, res.Measured.Round(time.Millisecond), res.ExitStatus)
	rep.mem = &res
	return nil
}
