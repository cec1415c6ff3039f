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
	"github.com/scrape-cluster/scrape/scrape"
	"github.com/scrape-cluster/scrape/worker"
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
	// Hosts are the machinefile's nodes; none means this machine alone
	// with one slot per CPU.
	Hosts []machinefile.Host
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
	// StateDir holds the queue's store. Empty means a new directory under
	// .scrape/, removed again after a successful run.
	StateDir string

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
	run       worker.Run
	ownsState bool
	relay     *syncWriter
	stderr    io.Writer // cfg.Stderr, or the progress bar's writer while it is drawn
	bin       binary    // what --push sends
}

// New validates cfg and fills in defaults.
func New(cfg Config) (*Coordinator, error) {
	if cfg.Input == nil {
		return nil, errors.New("no input")
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
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = []machinefile.Host{{Name: "localhost", Slots: runtime.NumCPU(), Line: 0}}
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
		run:    worker.Run{ID: strings.ToUpper(id)},
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
	var fields []string
	for _, sel := range c.cfg.Fetch.Select {
		fields = append(fields, sel.Name)
	}
	out, err := output.Create(c.cfg.Output, format, c.cfg.Stdout, output.Options{Fields: fields})
	if err != nil {
		return stats, err
	}
	defer out.Close()

	storeDir, err := c.stateDir()
	if err != nil {
		return stats, err
	}
	runDir := filepath.Dir(storeDir)
	srv, err := startServer(c.cfg.Listen, storeDir)
	if err != nil {
		return stats, err
	}
	defer srv.shutdown()

	nc, err := nats.Connect("", nats.InProcessServer(srv.srv), nats.UserInfo(queueUser, srv.password), nats.Name("scrape coordinator"))
	if err != nil {
		return stats, fmt.Errorf("connect to queue: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return stats, fmt.Errorf("connect to queue: %w", err)
	}
	results, err := worker.CreateRun(ctx, js, c.run, worker.Job{
		Fetch:      c.cfg.Fetch,
		AckWait:    c.cfg.AckWait,
		MaxDeliver: c.cfg.MaxDeliver,
		MaxRecord:  maxPayload - 64<<10, // room for headers
		Delay:      c.cfg.Delay,
	}, maxPayload)
	if err != nil {
		return stats, err
	}

	snk := &sink{w: out, stats: stats}
	f := newFrontier(c.frontierConfig(), js, c.run, snk, c.log)
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

	// Work flows as soon as the first worker is up: one slow or dead node
	// does not hold up the others.
	lctx, cancelLaunches := context.WithCancel(ctx)
	defer cancelLaunches()
	fl, err := c.launch(lctx, nc, srv)
	if err != nil {
		return stats, err
	}
	defer func() {
		cancelLaunches()
		fl.stop(nc)
	}()

	if c.cfg.Delay > 0 {
		l := &leases{delay: c.cfg.Delay, next: map[string]time.Time{}}
		sub, err := l.serve(nc, c.run.LeaseSubject())
		if err != nil {
			return stats, fmt.Errorf("serve start leases: %w", err)
		}
		defer sub.Unsubscribe()
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return f.feed(gctx, c.cfg.Input) })
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
	stats.Outstanding = f.outstanding()
	prog.finish(status(false))
	c.useStderr(c.cfg.Stderr)
	held, retried := f.politeness()
	stats.Retries = retried
	stats.PerHost = c.cfg.PerHost
	if secs := time.Since(start); secs > 0 && held > secs/5 {
		stats.PerHostHeld = held
	}
	if err := out.Close(); err != nil {
		return stats, errors.Join(runErr, fmt.Errorf("close output: %w", err))
	}
	if runErr == nil && c.ownsState {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = worker.DeleteRun(dctx, js, c.run) // the directory goes anyway; this is for a prompt shutdown
		cancel()
		nc.Close()
		srv.shutdown()
		_ = os.RemoveAll(runDir)
	}
	if runErr != nil && ctx.Err() != nil {
		return stats, ctx.Err()
	}
	return stats, runErr
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

// stateDir makes the directory the queue stores into.
func (c *Coordinator) stateDir() (string, error) {
	dir := c.cfg.StateDir
	if dir == "" {
		dir = filepath.Join(".scrape", time.Now().Format("20060102-150405")+"-"+strings.ToLower(c.run.ID))
		c.ownsState = true
	}
	store := filepath.Join(dir, "jetstream")
	if err := os.MkdirAll(store, 0o700); err != nil {
		return "", fmt.Errorf("create state directory: %w", err)
	}
	return store, nil
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
