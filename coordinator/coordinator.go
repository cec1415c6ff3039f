package coordinator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/scrape-cluster/scrape/output"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/remote"
	"github.com/scrape-cluster/scrape/scrape"
)

// Coordinator is one run.
type Coordinator struct {
	cfg       Config
	log       *slog.Logger
	run       queue.Run
	ownsState bool
	// stderr is where the run's own lines go (worker logs, warnings, the
	// log): Config.Stderr, or the progress bar's writer while it is drawn.
	// Everything writes through it, so one swap moves them all.
	stderr   *syncWriter
	builds   *remote.BuildSet // what --push sends
	launcher Launcher
	// createdOutput is set once a new run has made its output file;
	// createdWarc its --warc.
	createdOutput, createdWarc bool
}

// New validates cfg and fills in defaults.
func New(cfg Config) (*Coordinator, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	id, err := randomHex(6)
	if err != nil {
		return nil, err
	}
	c := &Coordinator{
		cfg:    cfg,
		run:    queue.Run{ID: strings.ToUpper(id)},
		stderr: &syncWriter{w: cfg.Stderr},
	}
	log := cfg.Logger
	if log == nil {
		var level slog.Level
		if level.UnmarshalText([]byte(cfg.LogLevel)) != nil {
			level = slog.LevelWarn
		}
		log = slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))
	}
	c.log = log.With("component", "coordinator", "run", c.run.ID)
	if cfg.Plaintext && len(cfg.NATS) == 0 && !allLocal(cfg.Hosts) {
		fmt.Fprintf(c.stderr, "scrape: warning: the queue serves without TLS: tasks and results cross the network in clear to the other nodes\n")
	}
	c.builds = &remote.BuildSet{Own: cfg.LocalBin, Dir: cfg.PushDir}
	c.launcher = cfg.Launcher
	if c.launcher == nil {
		c.launcher = &processLauncher{cfg: &c.cfg, stderr: c.stderr, log: c.log, builds: c.builds}
	}
	return c, nil
}

// Run does the whole run. It returns the summary of what was written even
// when it fails or is interrupted: what was scraped is in the output.
func (c *Coordinator) Run(ctx context.Context) (*Summary, error) {
	start := time.Now()
	stats := newSummary()
	defer func() { stats.Elapsed = time.Since(start) }()

	format, err := output.FormatFor(c.cfg.Output, c.cfg.Format)
	if err != nil {
		return stats, err
	}
	if !c.cfg.Resume {
		if err := c.checkOutput(); err != nil {
			return stats, err
		}
	}
	// Before the state directory: a --since file that cannot be read
	// leaves nothing behind.
	since, err := c.openSince()
	if err != nil {
		return stats, err
	}
	defer since.close()
	runDir, st, err := c.prepareState(format)
	if err != nil {
		return stats, err
	}
	// A run that fails before its first record leaves nothing behind: no
	// state directory of ours, no empty output.
	begun := false
	defer func() {
		if !begun && !c.cfg.Resume && stats.Records == 0 {
			c.discard(runDir)
		}
	}()
	rec := recovered{Done: map[uint64]bool{}}
	if c.cfg.Resume {
		if rec, err = recoverRun(runDir); err != nil {
			return stats, err
		}
		// The summary is the whole run's, what came before included.
		if err := countEarlier(stats, c.cfg.Output, format, rec.Out); err != nil {
			c.log.Warn("the summary counts only the records written after the resume", "err", err)
		}
	}
	out, err := c.openOutput(format, rec)
	if err != nil {
		return stats, err
	}
	defer out.Close()
	input, closeInput, err := c.openInput(runDir, st)
	if err != nil {
		return stats, err
	}
	defer closeInput()
	jr, err := openJournal(runDir, rec)
	if err != nil {
		return stats, err
	}
	defer jr.close()

	// Workers start while the queue is set up; work flows as soon as the
	// first is up: one slow or dead node does not hold up the others.
	lctx, cancelLaunches := context.WithCancel(ctx)
	defer cancelLaunches()
	fl := c.launch(lctx)
	if c.cfg.Resume && len(c.cfg.NATS) == 0 {
		// The resumed run's queue starts afresh (setUpRun): its embedded
		// store goes before the server starts, which would otherwise read
		// back the streams the crashed run left, megabytes of them, only to
		// delete them.
		if err := os.RemoveAll(filepath.Join(runDir, "jetstream")); err != nil {
			return stats, fmt.Errorf("resume: reset the queue's store: %w", err)
		}
	}
	q, err := c.openQueue(ctx, runDir)
	if err != nil {
		cancelLaunches()
		fl.stop(nil)
		fl.reap()
		return stats, err
	}
	defer q.close()
	defer func() { // before the queue closes; the processes are gone on return
		cancelLaunches()
		fl.stop(q.nc)
		fl.reap()
	}()
	job, results, err := c.setUpRun(ctx, q)
	if err != nil {
		return stats, err
	}
	if q.srv != nil && c.log.Enabled(ctx, slog.LevelInfo) {
		c.log.Info("workers can join", "how", c.joinHint(q))
	}

	snk := &sink{w: out, stats: stats, journal: jr}
	fc := c.frontierConfig()
	fc.SpillDir = filepath.Join(runDir, frontierDir)
	fc.Since = since
	f := newFrontier(fc, q.js, c.run, snk, c.log)
	defer f.store.close()
	if c.cfg.Resume {
		if err := f.restore(rec); err != nil {
			return stats, err
		}
		rec = recovered{Out: rec.Out} // the frontier has the rest; let it go
		fmt.Fprintf(c.stderr, "scrape: resuming run %s: %d records already in %s\n", c.run.ID, rec.Out.Records, c.cfg.Output)
	}
	status := func(outcome string) Status {
		st := Status{Summary: snk.snapshot(), Run: c.run.ID, PID: os.Getpid(), Started: start, Updated: time.Now(), Running: outcome == "", Outcome: outcome}
		st.Total = st.Records + f.outstanding()
		if n, known, counting := f.total(); known || counting {
			st.Total = max(n, st.Total)
			if known {
				st.Total = max(n, st.Records)
			}
			st.TotalKnown, st.Counting = known, counting
		}
		if st.Running {
			st.InFlight, st.RetryWaiting, st.RobotsWaiting = f.waiting()
		}
		st.Summary.settle(st.Updated.Sub(start))
		return st
	}
	// Typed URLs would be drawn over by a bar: status lines leave them be.
	barOn := c.cfg.Stderr
	if c.cfg.TerminalInput {
		barOn = nil
	}
	prog, progOut := startProgress(c.cfg.Progress, barOn, c.stderr, c.cfg.ProgressInterval, filepath.Join(runDir, StatusFile), func() Status { return status("") })
	if progOut != nil {
		c.stderr.set(progOut)
	}
	defer func() { // a return before the end below: the run failed, or was stopped
		if ctx.Err() != nil {
			prog.finish(status(OutcomeInterrupted))
		} else {
			prog.finish(status(OutcomeFailed))
		}
	}()
	col := &collector{runID: c.run, cons: results, frontier: f, sink: snk, log: c.log, nodeOf: fl.nodeOf}
	if c.cfg.Fetch.Archive {
		col.pull = archiveBatch
	}

	if err := fl.attach(q.nc, q, job); err != nil {
		return stats, err
	}
	// Leases are served whatever the flags: any host may come to need
	// spacing, from its robots.txt's Crawl-delay or its 429s and 503s.
	// Workers ask only for the tasks of spaced hosts (scrape.Task.Delay).
	sub, err := newLeases(f.hostDelay).serve(q.nc, c.run.LeaseSubject())
	if err != nil {
		return stats, fmt.Errorf("serve start leases: %w", err)
	}
	defer sub.Unsubscribe()
	openSub, err := f.serveOpen(q.nc, c.run.OpenSubject())
	if err != nil {
		return stats, fmt.Errorf("serve open tasks: %w", err)
	}
	defer openSub.Unsubscribe()

	g, gctx := errgroup.WithContext(ctx)
	if path := inputFile(runDir, st, c.cfg.Resume); path != "" {
		g.Go(func() error { return f.countLines(gctx, path) })
	}
	if c.cfg.TerminalInput {
		fmt.Fprintln(c.stderr, "scrape: reading URLs from standard input (Ctrl-D to end)")
	}
	g.Go(func() error { return f.feed(gctx, input) })
	g.Go(func() error { return f.dispatch(gctx) })
	g.Go(func() error { return col.run(gctx) })
	g.Go(func() error { return fl.watch(gctx, f) })
	g.Go(func() error { return q.watchQueue(gctx, c.run, f.done) })
	runErr := g.Wait()
	if runErr == nil && ctx.Err() != nil {
		runErr = ctx.Err() // interrupted: every part stopped cleanly, but the run is not done
	}

	// Whatever ended the run, stop the workers first and then keep what
	// they managed to store: an interrupted run's output holds everything
	// scraped so far.
	cancelLaunches()
	fl.stop(q.nc)
	nodes := fl.readyCount()
	snk.update(func(s *Summary) { s.Nodes = nodes })
	runErr = c.settleRecords(runErr, col, snk, f, start)
	outcome := OutcomeFinished
	switch {
	case ctx.Err() != nil:
		outcome = OutcomeInterrupted
	case runErr != nil:
		outcome = OutcomeFailed
	}
	final := status(outcome)
	if outcome != OutcomeFinished && c.resumable() {
		final.Resume = "scrape run --resume " + runDir
	}
	prog.finish(final)
	c.stderr.set(c.cfg.Stderr)
	begun = snk.snapshot().Records > 0
	if runErr != nil && !begun && !c.cfg.Resume {
		out.Close()
		return stats, runErr // nothing to resume: discard tidies up
	}
	begun = true
	if runErr != nil {
		return stats, c.keepForResume(ctx, runErr, out, runDir)
	}
	return stats, c.finish(out, q, jr, runDir, st)
}

// maxRecord is the largest encoded result a worker may send: the
// server's largest message (a --nats cluster's is 1 MiB unless set
// otherwise), less room for the message's headers.
func maxRecord(serverMax int64) int {
	limit := int64(maxPayload)
	if serverMax > 0 {
		limit = min(limit, serverMax)
	}
	return int(max(limit-64<<10, limit/2))
}

// setUpRun makes the run's streams, consumers and config on the queue.
func (c *Coordinator) setUpRun(ctx context.Context, q *runQueue) (queue.Job, jetstream.Consumer, error) {
	if c.cfg.Resume {
		// A resumed run starts its queue afresh: what the crashed run's
		// streams held is either in the journal or released again, and fresh
		// streams forget the message IDs it used. CreateRun makes them anew.
		if err := queue.DeleteRun(ctx, q.js, c.run); err != nil {
			return queue.Job{}, nil, fmt.Errorf("resume: reset the queue: %w", err)
		}
	}
	job := queue.Job{
		Fetch:      c.cfg.Fetch,
		AckWait:    c.cfg.AckWait,
		MaxDeliver: c.cfg.MaxDeliver,
		MaxRecord:  maxRecord(q.nc.MaxPayload()),
		Delay:      c.cfg.Delay,
		TaskBatch:  c.taskBatch(),
		PerSlot:    c.cfg.PerSlot,

		RenderSlots: c.cfg.RenderSlots,
	}
	// CreateRun only creates or updates, so it can be tried again while a
	// NATS cluster has a peer offline or is electing leaders, as any other
	// queue operation is; an error no wait will cure fails at once.
	var results jetstream.Consumer
	var err error
	for o := (outage{}); ; pause(ctx) {
		results, err = queue.CreateRun(ctx, q.js, c.run, job, queue.Streams{MaxMsg: maxPayload, Replicas: c.cfg.Replicas, Memory: q.srv != nil})
		if err == nil || ctx.Err() != nil || !passing(err) || !o.failed(c.log, "set up the run", err) {
			break
		}
	}
	if err != nil {
		// Its three parts are made at once, so which of them reports a
		// refusal first varies; this names the step whichever it is.
		return job, nil, fmt.Errorf("set up the run's queue: %w", err)
	}
	return job, results, nil
}

// settleRecords writes what the stopped workers stored after a failed or
// interrupted run, makes the output durable, and fills in the summary's
// last figures.
func (c *Coordinator) settleRecords(runErr error, col *collector, snk *sink, f *frontier, start time.Time) error {
	if runErr != nil {
		if err := col.drain(); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	if err := snk.flush(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	// What has no record: of the whole input when its size is known, not
	// only the part the frontier had read ahead.
	outstanding, rejected := f.outstanding(), col.rejected.count()
	if n, known, _ := f.total(); known {
		outstanding = max(n-snk.snapshot().Records, 0)
	}
	held, retried := f.politeness()
	reoffered := f.reoffers()
	slowed, nSlowed := f.slowed()
	unreachable := f.unreachableHosts()
	// The progress display may still be reading the summary.
	snk.update(func(stats *Summary) {
		stats.Outstanding = outstanding
		stats.Rejected = rejected
		stats.Retries = retried
		stats.Reoffered = reoffered
		stats.PerHost = c.cfg.PerHost
		stats.Slowed, stats.SlowedHosts = slowed, nSlowed
		stats.Unreachable = unreachable
		if secs := time.Since(start); secs > 0 && held > secs/5 {
			stats.PerHostHeld = held
		}
	})
	return runErr
}

// keepForResume closes the output of a run that did not finish and says how
// to take it up again; the state directory stays.
func (c *Coordinator) keepForResume(ctx context.Context, runErr error, out output.Writer, runDir string) error {
	if err := out.Close(); err != nil {
		return errors.Join(runErr, fmt.Errorf("close output: %w", err))
	}
	if c.resumable() {
		fmt.Fprintf(c.stderr, "scrape: the run's state is in %s; finish it with: scrape run --resume %s\n", runDir, runDir)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return runErr
}

// resumable says whether a run that did not finish can be taken up again:
// not one that wrote to stdout.
func (c *Coordinator) resumable() bool {
	return c.cfg.Output != "" && c.cfg.Output != output.Stdout
}

// finish closes a run whose every record is written: the queue can go while
// the output is synced to disk. The state directory stays until the output
// is safe, so that a run whose output fails to close can still be resumed.
func (c *Coordinator) finish(out output.Writer, q *runQueue, jr *journal, runDir string, st *runState) error {
	closed := make(chan error, 1)
	go func() { closed <- out.Close() }()
	if err := q.drop(context.Background(), c.run); err != nil {
		c.log.Warn("the finished run's queue stays on the NATS server", "err", err)
	}
	q.close()
	if err := <-closed; err != nil {
		return fmt.Errorf("close output: %w", err)
	}
	jr.close()
	// The hosts' logs are read to their ends and no resume will need the
	// seen-set: they can go, however big.
	_ = os.RemoveAll(filepath.Join(runDir, frontierDir))
	_ = os.Remove(filepath.Join(runDir, seenFile))
	if err := c.finishState(runDir, st); err != nil {
		c.log.Warn("tidy state directory", "dir", runDir, "err", err)
	}
	return nil
}

// openOutput creates the output, or on a resume takes it over where the
// journal says its last commit left it.
func (c *Coordinator) openOutput(format output.Format, rec recovered) (output.Writer, error) {
	var fields []string
	for _, sel := range c.cfg.Fetch.Select {
		fields = append(fields, sel.Name)
	}
	opt := output.Options{Fields: fields, Lastmod: c.cfg.Sitemap, Data: c.cfg.Fetch.Structured, Warcinfo: c.warcinfo()}
	if c.cfg.Resume {
		if c.cfg.Output == "" || c.cfg.Output == output.Stdout {
			return nil, errors.New("resume: the run wrote to stdout, which cannot be taken up again")
		}
		w, err := output.Resume(c.cfg.Output, format, opt, rec.Out)
		if err != nil || c.cfg.Warc == "" {
			return w, err
		}
		// The archive too goes on from the last commit: the pages after
		// it are fetched again and archived once.
		a, err := output.ResumeArchive(c.cfg.Warc, false, output.Pos{Offset: rec.Out.Archive})
		if err != nil {
			w.Close()
			return nil, err
		}
		return output.Archived{Writer: w, A: a}, nil
	}
	w, err := output.Create(c.cfg.Output, format, c.cfg.Stdout, opt)
	c.createdOutput = err == nil && c.cfg.Output != "" && c.cfg.Output != output.Stdout
	if err != nil || c.cfg.Warc == "" {
		return w, err
	}
	a, err := output.CreateArchive(c.cfg.Warc, nil, false, opt.Warcinfo)
	if err != nil {
		w.Close()
		return nil, err
	}
	c.createdWarc = true
	return output.Archived{Writer: w, A: a}, nil
}

// warcinfo are the fields of a WARC's warcinfo record: what made it and
// how (the WARC 1.1 spec's suggested fields).
func (c *Coordinator) warcinfo() [][2]string {
	agent := cmp.Or(c.cfg.Fetch.UserAgent, scrape.DefaultUserAgent())
	robots := "obey"
	if c.cfg.IgnoreRobots {
		robots = "ignore"
	}
	return [][2]string{
		{"software", "scrape/" + scrape.Version},
		{"format", "WARC File Format 1.1"},
		{"conformsTo", "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"},
		{"isPartOf", c.run.ID},
		{"http-header-user-agent", agent},
		{"robots", robots},
	}
}

// taskBatch is the most tasks one task message carries: a quarter of the
// smallest node's pages in flight, so that a node's pull, which takes whole messages,
// holds few tasks beyond its places, and no node takes a run's first window
// in a few messages while the others start.
func (c *Coordinator) taskBatch() int {
	least := 0
	for _, h := range c.cfg.Hosts {
		if n := c.cfg.fetches(h); least == 0 || n < least {
			least = n
		}
	}
	return min(max(least/4, 1), queue.MaxTaskBatch)
}

func (c *Coordinator) frontierConfig() frontierConfig {
	fc := frontierConfig{
		Window:          c.cfg.Window,
		MaxQueued:       c.cfg.MaxQueued,
		CheckpointEvery: c.cfg.CheckpointEvery,
		Slots:           c.cfg.clusterFetches(),
		PerHost:         c.cfg.PerHost,
		Retries:         c.cfg.Retries,
		Backoff:         c.cfg.RetryBackoff,

		Delay:         c.cfg.Delay,
		MaxCrawlDelay: c.cfg.MaxCrawlDelay,
		// The breaker's threshold.
		HostFailures: c.cfg.HostFailures,

		TaskBatch: c.taskBatch(),

		Structured: c.cfg.Fetch.Structured,

		RenderAll: c.cfg.Fetch.Render == scrape.RenderAlways,
	}
	if c.cfg.Session {
		fc.Jar = newSessionJar()
	}
	if !c.cfg.IgnoreRobots {
		agent := c.cfg.Fetch.UserAgent
		if agent == "" {
			agent = scrape.DefaultUserAgent()
		}
		fc.Robots = newRobotsFetcher(agent, c.cfg.Fetch, c.cfg.Retries, c.cfg.RetryBackoff, c.log)
	}
	if c.cfg.Depth > 0 || c.cfg.Sitemap {
		// --sitemap alone is a crawl of depth 0: the sitemaps' URLs are
		// admitted as a crawl's links are, and none of their links.
		fc.Crawl = newCrawlScope(c.cfg.Depth, c.cfg.SameHost, c.cfg.AllowDomains, c.cfg.MaxPages)
		// setDefaults compiled them once already.
		fc.Crawl.match, _ = CompilePatterns("match", c.cfg.Match)
		fc.Crawl.exclude, _ = CompilePatterns("exclude", c.cfg.Exclude)
	}
	if c.cfg.Sitemap {
		agent := c.cfg.Fetch.UserAgent
		if agent == "" {
			agent = scrape.DefaultUserAgent()
		}
		fc.Sitemaps = newSitemapFetcher(agent, c.cfg.Fetch, c.cfg.SitemapMax, c.log)
	}
	return fc
}

// checkOutput refuses an output a new run could not write or must not
// overwrite, before anything is made.
func (c *Coordinator) checkOutput() error {
	if err := c.checkOutputFile(c.cfg.Output); err != nil {
		return err
	}
	if c.cfg.Warc != "" {
		return c.checkOutputFile(c.cfg.Warc)
	}
	return nil
}

func (c *Coordinator) checkOutputFile(path string) error {
	if path == "" || path == output.Stdout {
		return nil
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("%s is a directory: the output is a file", path)
	case err == nil && fi.Mode().IsRegular() && !c.cfg.Force:
		return fmt.Errorf("%s: %w", path, ErrOutputExists)
	case err == nil:
		return nil // a device such as /dev/null, or a file Force lets us replace
	}
	if dir, err := os.Stat(filepath.Dir(path)); err != nil || !dir.IsDir() {
		return fmt.Errorf("create output %s: no directory %s", path, filepath.Dir(path))
	}
	return nil
}

// discard removes what a run that never wrote a record made: its state
// directory if it was ours (and .scrape/ if that leaves it empty), and the
// output file it created.
func (c *Coordinator) discard(runDir string) {
	if c.ownsState && runDir != "" {
		_ = os.RemoveAll(runDir)
		_ = os.Remove(filepath.Dir(runDir)) // only if empty
	}
	if path := c.cfg.Output; c.createdOutput {
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
			_ = os.Remove(path) // no record in it
		}
	}
	if path := c.cfg.Warc; c.createdWarc {
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
			_ = os.Remove(path) // no page in it
		}
	}
}
