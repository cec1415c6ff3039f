// Package coordinator runs a scrape across a cluster: it starts the run's
// embedded NATS JetStream queue, launches one worker per machinefile host,
// feeds URL tasks through its frontier, writes every result to the output
// exactly once and stops every worker it started.
package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/scrape-cluster/scrape/machinefile"
	"github.com/scrape-cluster/scrape/output"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// Defaults for Config; a zero field means its default.
const (
	DefaultConnectTimeout = 10 * time.Second
	// DefaultAckWait is how long a task may go without a heartbeat before
	// it is handed to another worker. Workers beat every third of it, so it
	// bounds how long a dead node's tasks wait.
	DefaultAckWait    = 15 * time.Second
	DefaultMaxDeliver = 5
	// DefaultPerHost is Scrapy's per-domain default, here for the cluster.
	DefaultPerHost      = 8
	DefaultRetries      = 2
	DefaultRetryBackoff = time.Second
	// stopGrace is how long a worker gets to hand back its tasks and exit
	// before it is killed; the whole stop stays within 5 s.
	stopGrace = 3 * time.Second
	// readyTimeout is how long a started worker gets, beyond the SSH
	// connect timeout, to connect back and say hello.
	readyTimeout = 20 * time.Second
)

// Config is one run.
type Config struct {
	// Hosts are the machinefile's nodes; nil means this machine alone
	// with one slot per CPU. An empty list launches no worker: the run
	// waits for workers to join (scrape worker --nats), which needs
	// WaitWorkers.
	Hosts []machinefile.Host
	// WaitWorkers, when set, is how long the run waits for a worker to join
	// while none is running (at the start with no Hosts, or after every
	// node was lost) before it fails; zero fails at once.
	WaitWorkers time.Duration
	// Input is the urls file, one URL per line.
	Input io.Reader
	// Output is a file path, or "-" (or "") for stdout; Format overrides
	// the format its extension implies.
	Output string
	Format string
	Stdout io.Writer
	// Stderr receives worker log lines, prefixed with their node.
	Stderr io.Writer

	Fetch scrape.Config

	// Listen is where the embedded NATS listens (default all interfaces,
	// a free port). Advertise, when set, is the address every worker
	// dials; otherwise each worker dials our address on its route.
	Listen    string
	Advertise string
	// SSH is the ssh command and its own arguments (default "ssh").
	SSH []string
	// RemoteBin is the scrape binary's path on remote nodes (default:
	// LocalBin, as on a cluster sharing its file system).
	RemoteBin string
	// LocalBin is the binary started for local workers (default: this
	// program).
	LocalBin string
	// Push copies LocalBin to every remote node that lacks an identical
	// copy, into a per-user cache directory there, and runs it from there.
	Push bool
	// StateDir holds the queue's store, the journal and what a resume
	// needs. Empty means a new directory under .scrape/, removed again after
	// a successful run.
	StateDir string
	// InputPath is the urls file Input reads, or "-" for stdin; a resume
	// reads it again.
	InputPath string
	// Resume continues the run kept in StateDir; Input is not read.
	Resume bool
	// Force lets a new run overwrite an existing output file and a state
	// directory holding another run.
	Force bool
	// Saved is stored with the run for SavedOptions: the command's flags,
	// so that a resume runs as the run did.
	Saved []byte

	// NATS, when set, are the URLs of an existing NATS server or cluster
	// with JetStream to use instead of the embedded one; NATSAuth is how to
	// log in to it (and is passed on to the workers). Replicas is the
	// streams' replication factor there.
	NATS     []string
	NATSAuth queue.Auth
	Replicas int
	// TLS makes the embedded queue serve TLS with a certificate made for the
	// run; workers get its pin with their credentials.
	TLS bool

	ConnectTimeout time.Duration
	AckWait        time.Duration
	MaxDeliver     int
	// Window bounds the tasks released and not yet answered (default:
	// four per slot, at least 64).
	Window int

	// Politeness, enforced for the whole cluster. PerHost bounds requests
	// in flight to one host (default DefaultPerHost); Delay spaces the
	// starts of requests to one host; robots.txt is obeyed unless
	// IgnoreRobots.
	PerHost      int
	Delay        time.Duration
	IgnoreRobots bool
	// Retries is how many further attempts a timeout, connection error,
	// 408, 429 or 5xx gets (used as given: the command's default is 2).
	// RetryBackoff is the first wait (default DefaultRetryBackoff); each
	// later one doubles, and a site's Retry-After is honoured.
	Retries      int
	RetryBackoff time.Duration

	// Crawling: Depth > 0 follows links that many levels from the input,
	// within SameHost (the input's hosts) or AllowDomains when given, up to
	// MaxPages tasks in all (0: no cap).
	Depth        int
	SameHost     bool
	AllowDomains []string
	MaxPages     int

	Logger *slog.Logger
	// LogLevel is passed on to the workers ("DEBUG", "INFO", "WARN").
	LogLevel string
	// Progress shows the run as it goes on Stderr: a bar on a terminal,
	// a status line every ProgressInterval elsewhere.
	Progress         bool
	ProgressInterval time.Duration
}

// ErrNoWorkers is returned when no node could start a worker, or every
// worker was lost before the work was done.
var ErrNoWorkers = errors.New("no worker")

// Coordinator is one run.
type Coordinator struct {
	cfg       Config
	log       *slog.Logger
	run       queue.Run
	ownsState bool
	relay     *syncWriter
	stderr    io.Writer // cfg.Stderr, or the progress bar's writer while it is drawn
	bin       binary    // what --push sends
}

// New validates cfg and fills in defaults.
func New(cfg Config) (*Coordinator, error) {
	if cfg.Input == nil && !cfg.Resume {
		return nil, errors.New("no input")
	}
	if cfg.TLS && len(cfg.NATS) > 0 {
		return nil, errors.New("--tls is for the embedded queue; with --nats, use tls:// URLs and --tls-ca")
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Hosts == nil {
		cfg.Hosts = []machinefile.Host{{Name: "localhost", Slots: runtime.NumCPU(), Line: 0}}
	} else if len(cfg.Hosts) == 0 && cfg.WaitWorkers <= 0 {
		return nil, errors.New("no hosts to start workers on, and no --wait-workers to wait for workers to join")
	}
	if len(cfg.SSH) == 0 {
		cfg.SSH = []string{"ssh"}
	}
	if cfg.LocalBin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own binary: %w", err)
		}
		cfg.LocalBin = exe
	}
	if cfg.RemoteBin == "" {
		cfg.RemoteBin = cfg.LocalBin
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = DefaultAckWait
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = DefaultMaxDeliver
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	if cfg.PerHost <= 0 {
		cfg.PerHost = DefaultPerHost
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = DefaultRetryBackoff
	}
	if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.Window <= 0 {
		slots := 0
		for _, h := range cfg.Hosts {
			slots += h.Slots
		}
		cfg.Window = max(64, 4*slots)
	}
	if _, _, err := splitListen(cfg.Listen); err != nil {
		return nil, err
	}
	if err := cfg.Fetch.Validate(); err != nil {
		return nil, err
	}
	id, err := randomHex(6)
	if err != nil {
		return nil, err
	}
	c := &Coordinator{
		cfg:    cfg,
		run:    queue.Run{ID: strings.ToUpper(id)},
		relay:  &syncWriter{w: cfg.Stderr},
		stderr: cfg.Stderr,
	}
	c.log = cfg.Logger.With("component", "coordinator", "run", c.run.ID)
	c.bin.path = cfg.LocalBin
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
	if !c.cfg.Resume && !c.cfg.Force && c.cfg.Output != "" && c.cfg.Output != output.Stdout {
		if _, err := os.Stat(c.cfg.Output); err == nil {
			return stats, fmt.Errorf("%s exists: choose another -o, or overwrite it with --force", c.cfg.Output)
		}
	}
	runDir, st, err := c.prepareState(format)
	if err != nil {
		return stats, err
	}
	rec := recovered{Done: map[uint64]bool{}}
	if c.cfg.Resume {
		if rec, err = readJournal(filepath.Join(runDir, journalFile)); err != nil {
			return stats, err
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
	jr, err := openJournal(filepath.Join(runDir, journalFile), rec.Valid)
	if err != nil {
		return stats, err
	}
	defer jr.close()

	// Workers start while the queue is set up; work flows as soon as the
	// first is up: one slow or dead node does not hold up the others.
	lctx, cancelLaunches := context.WithCancel(ctx)
	defer cancelLaunches()
	fl := c.launch(lctx)
	var nc *nats.Conn // set once the queue is up
	stopWorkers := func() {
		cancelLaunches()
		fl.stop(nc)
		fl.reap()
	}

	q, err := c.openQueue(ctx, runDir)
	if err != nil {
		stopWorkers()
		return stats, err
	}
	defer q.close()
	defer stopWorkers() // before the queue closes; the processes are gone on return
	nc = q.nc
	js := q.js
	if c.cfg.Resume {
		// A resumed run starts its queue afresh: what the crashed run's
		// streams held is either in the journal or released again, and fresh
		// streams forget the message IDs it used. CreateRun makes them anew.
		if err := queue.DeleteRun(ctx, js, c.run); err != nil {
			return stats, fmt.Errorf("resume: reset the queue: %w", err)
		}
	}
	job := queue.Job{
		Fetch:      c.cfg.Fetch,
		AckWait:    c.cfg.AckWait,
		MaxDeliver: c.cfg.MaxDeliver,
		MaxRecord:  maxPayload - 64<<10, // room for headers
		Delay:      c.cfg.Delay,
	}
	// CreateRun only creates or updates, so it can be tried again while a
	// NATS cluster has a peer offline or is electing leaders, as any other
	// queue operation is; an error no wait will cure fails at once.
	var results jetstream.Consumer
	for o := (outage{}); ; pause(ctx) {
		results, err = queue.CreateRun(ctx, js, c.run, job, queue.Streams{MaxMsg: maxPayload, Replicas: c.cfg.Replicas})
		if err == nil || ctx.Err() != nil || !passing(err) || !o.failed(c.log, "set up the run", err) {
			break
		}
	}
	if err != nil {
		// Its three parts are made at once, so which of them reports a
		// refusal first varies; this names the step whichever it is.
		return stats, fmt.Errorf("set up the run's queue: %w", err)
	}
	if q.srv != nil && c.cfg.Logger.Enabled(ctx, slog.LevelInfo) {
		c.log.Info("workers can join", "nats", fmt.Sprintf("nats://HOST:%d", q.srv.port()), "nkey", filepath.Join(runDir, JoinKeyFile))
	}

	snk := &sink{w: out, stats: stats, journal: jr}
	f := newFrontier(c.frontierConfig(), js, c.run, snk, c.log)
	if c.cfg.Resume {
		if err := f.restore(rec); err != nil {
			return stats, err
		}
		fmt.Fprintf(c.cfg.Stderr, "scrape: resuming run %s: %d records already in %s\n", c.run.ID, rec.Out.Records, c.cfg.Output)
	}
	status := func(running bool) Status {
		st := Status{Summary: snk.snapshot(), Run: c.run.ID, PID: os.Getpid(), Started: start, Updated: time.Now(), Running: running}
		st.Total = st.Records + f.outstanding()
		st.Summary.settle(st.Updated.Sub(start))
		return st
	}
	prog, progOut := startProgress(c.cfg.Progress, c.cfg.Stderr, c.cfg.ProgressInterval, filepath.Join(runDir, StatusFile), func() Status { return status(true) })
	c.useStderr(progOut)
	defer func() { prog.finish(status(false)) }()
	col := &collector{cons: results, frontier: f, sink: snk, log: c.log}

	if err := fl.attach(nc, q, job); err != nil {
		return stats, err
	}

	if c.cfg.Delay > 0 {
		l := &leases{delay: c.cfg.Delay, next: map[string]time.Time{}}
		sub, err := l.serve(nc, c.run.LeaseSubject())
		if err != nil {
			return stats, fmt.Errorf("serve start leases: %w", err)
		}
		defer sub.Unsubscribe()
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return f.feed(gctx, input) })
	g.Go(func() error { return f.dispatch(gctx) })
	g.Go(func() error { return col.run(gctx) })
	g.Go(func() error { return fl.watch(gctx, f) })
	runErr := g.Wait()
	if runErr == nil && ctx.Err() != nil {
		runErr = ctx.Err() // interrupted: every part stopped cleanly, but the run is not done
	}

	// Whatever ended the run, stop the workers first and then keep what
	// they managed to store: an interrupted run's output holds everything
	// scraped so far.
	cancelLaunches()
	fl.stop(nc)
	stats.Nodes = fl.readyCount()
	if runErr != nil {
		if err := col.drain(); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	if err := snk.flush(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	stats.Outstanding = f.outstanding()
	prog.finish(status(false))
	c.useStderr(c.cfg.Stderr)
	held, retried := f.politeness()
	stats.Retries = retried
	stats.PerHost = c.cfg.PerHost
	if secs := time.Since(start); secs > 0 && held > secs/5 {
		stats.PerHostHeld = held
	}
	if runErr != nil {
		if err := out.Close(); err != nil {
			return stats, errors.Join(runErr, fmt.Errorf("close output: %w", err))
		}
		if c.cfg.Output != "" && c.cfg.Output != output.Stdout {
			fmt.Fprintf(c.cfg.Stderr, "scrape: the run's state is in %s; finish it with: scrape run --resume %s\n", runDir, runDir)
		}
		if ctx.Err() != nil {
			return stats, ctx.Err()
		}
		return stats, runErr
	}

	// Every record is written: the queue can go while the output is synced
	// to disk. The state directory stays until the output is safe, so that
	// a run whose output fails to close can still be resumed.
	closed := make(chan error, 1)
	go func() { closed <- out.Close() }()
	if err := q.drop(context.Background(), c.run); err != nil {
		c.log.Warn("the finished run's queue stays on the NATS server", "err", err)
	}
	q.close()
	if err := <-closed; err != nil {
		return stats, fmt.Errorf("close output: %w", err)
	}
	jr.close()
	if err := c.finishState(runDir, st); err != nil {
		c.log.Warn("tidy state directory", "dir", runDir, "err", err)
	}
	return stats, nil
}

// openOutput creates the output, or on a resume takes it over where the
// journal says its last commit left it.
func (c *Coordinator) openOutput(format output.Format, rec recovered) (output.Writer, error) {
	var fields []string
	for _, sel := range c.cfg.Fetch.Select {
		fields = append(fields, sel.Name)
	}
	opt := output.Options{Fields: fields}
	if c.cfg.Resume {
		if c.cfg.Output == "" || c.cfg.Output == output.Stdout {
			return nil, errors.New("resume: the run wrote to stdout, which cannot be taken up again")
		}
		return output.Resume(c.cfg.Output, format, opt, rec.Out)
	}
	return output.Create(c.cfg.Output, format, c.cfg.Stdout, opt)
}

// useStderr sends the run's own lines (worker logs, warnings, logging) to w.
func (c *Coordinator) useStderr(w io.Writer) {
	c.relay.mu.Lock()
	c.relay.w = w
	c.relay.mu.Unlock()
	c.stderr = w
	if w != c.cfg.Stderr {
		var level slog.Level
		if level.UnmarshalText([]byte(c.cfg.LogLevel)) != nil {
			level = slog.LevelWarn
		}
		c.log = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})).With("component", "coordinator", "run", c.run.ID)
	}
}

func (c *Coordinator) frontierConfig() frontierConfig {
	slots := 0
	for _, h := range c.cfg.Hosts {
		slots += h.Slots
	}
	fc := frontierConfig{
		Window:  c.cfg.Window,
		Slots:   slots,
		PerHost: c.cfg.PerHost,
		Retries: c.cfg.Retries,
		Backoff: c.cfg.RetryBackoff,
	}
	if !c.cfg.IgnoreRobots {
		agent := c.cfg.Fetch.UserAgent
		if agent == "" {
			agent = scrape.DefaultUserAgent()
		}
		fc.Robots = newRobotsFetcher(agent, c.log)
	}
	if c.cfg.Depth > 0 {
		fc.Crawl = newCrawlScope(c.cfg.Depth, c.cfg.SameHost, c.cfg.AllowDomains, c.cfg.MaxPages)
	}
	return fc
}

// advertise picks the address n's worker dials to reach the queue.
func (c *Coordinator) advertise(ctx context.Context, n *node) (string, error) {
	if c.cfg.Advertise != "" {
		return c.cfg.Advertise, nil
	}
	host, _, _ := splitListen(c.cfg.Listen)
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return host, nil // listening on one address: that is the one
	}
	if n.local {
		return "127.0.0.1", nil
	}
	target := sshHostName(ctx, c.cfg.SSH, n.host.Destination(), n.host.Port)
	addr, err := routeAddr(ctx, target)
	if err != nil {
		return "", fmt.Errorf("find our address on the route to %s (set --advertise): %w", target, err)
	}
	return addr, nil
}
