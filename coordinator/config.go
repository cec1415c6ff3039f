package coordinator

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

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
	// DefaultMaxCrawlDelay caps a robots.txt Crawl-delay, so that a hostile
	// or mistaken value cannot stall a run.
	DefaultMaxCrawlDelay = 30 * time.Second
	// DefaultHostFailures is how many failures to reach a host in a row
	// open its breaker.
	DefaultHostFailures = 3
	// MaxRetries bounds Retries: with doubling waits capped at maxBackoff,
	// more attempts than this keep one page for hours.
	MaxRetries = 20
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
	// with one slot per CPU. Each slot is PerSlot pages fetched at a time
	// (slots.go). An empty list launches no worker: the run
	// waits for workers to join (scrape worker --nats), which needs
	// WaitWorkers.
	Hosts []machinefile.Host
	// PerSlot is how many pages a node fetches at a time for each of its
	// slots (default DefaultPerSlot). A worker that joins by itself without
	// --slots fetches PerSlot per CPU.
	PerSlot int
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
	// Warc, when set, is a WARC file the pages' requests and responses are
	// archived to beside Output (output.WARC); an Output ending .warc.gz is
	// one itself.
	Warc   string
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
	// Launcher starts the workers (default: scrape worker processes, over
	// ssh for remote nodes, with the fields above).
	Launcher Launcher
	// LocalBin is the binary started for local workers (default: this
	// program).
	LocalBin string
	// Push copies LocalBin to every remote node that lacks an identical
	// copy, into a per-user cache directory there, and runs it from there.
	Push bool
	// PushDir holds the builds Push sends to nodes of another OS or CPU,
	// named scrape-<os>-<cpu>[.exe] (remote.Platform.BuildName); default:
	// LocalBin's directory.
	PushDir string
	// StateDir holds the queue's store, the journal and what a resume
	// needs. Empty means a new directory under .scrape/, removed again after
	// a successful run.
	StateDir string
	// InputPath is the urls file Input reads, or "-" for stdin; a resume
	// reads it again.
	InputPath string
	// TerminalInput says the urls are being typed on a terminal: progress
	// is then shown as status lines, not a bar that would redraw over them.
	TerminalInput bool
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
	// WorkerAuth is how the workers the run starts log in to an existing
	// NATS: credentials of their own, limited to a worker's subjects, never
	// the coordinator's.
	WorkerAuth queue.Auth
	Replicas   int
	// Plaintext turns off the embedded queue's TLS, for debugging with
	// tools that read the wire. By default the queue serves TLS with a
	// certificate made for the run, and workers get its pin with their
	// keys. Logins are NKey signatures either way, so no credential crosses
	// the network; without TLS the tasks and results do, in clear.
	Plaintext bool

	ConnectTimeout time.Duration
	AckWait        time.Duration
	MaxDeliver     int
	// Window bounds the tasks released and not yet answered (default:
	// four per page the nodes fetch at a time, at least 64).
	Window int
	// MaxQueued bounds the tasks waiting in memory to be released
	// (default: four times Window); the pages a crawl finds beyond it wait
	// on disk in the state directory.
	MaxQueued int
	// CheckpointEvery is how often the journal is checkpointed and emptied
	// (default DefaultCheckpointEvery): a resume reads the checkpoint and
	// the journal's commits since.
	CheckpointEvery time.Duration

	// Politeness, enforced for the whole cluster. PerHost bounds requests
	// in flight to one host (default DefaultPerHost); Delay spaces the
	// starts of requests to one host; robots.txt is obeyed unless
	// IgnoreRobots.
	PerHost      int
	Delay        time.Duration
	IgnoreRobots bool
	// MaxCrawlDelay caps a robots.txt Crawl-delay (default
	// DefaultMaxCrawlDelay): a host's Crawl-delay for our user agent
	// replaces Delay for that host when longer. A host that answers 429 or
	// 503 also gets a lower limit and a longer spacing of its own for a
	// while (rate.go).
	MaxCrawlDelay time.Duration
	// Retries is how many further attempts a timeout, connection error,
	// 408, 429 or 5xx gets (used as given: the command's default is 2).
	// RetryBackoff is the first wait (default DefaultRetryBackoff); each
	// later one doubles, and a site's Retry-After is honoured.
	Retries      int
	RetryBackoff time.Duration
	// HostFailures is how many failures in a row to reach a host (connect,
	// dns, tls, timeout: no HTTP answer) open its breaker: its URLs wait
	// while one goes as a probe after RetryBackoff, and if the probe fails
	// too, they are recorded as host_unreachable at once instead of each
	// being tried. 0 turns the breaker off (used as given: the command's
	// default is DefaultHostFailures).
	HostFailures int

	// Crawling: Depth > 0 follows links that many levels from the input,
	// within SameHost (the input's hosts) or AllowDomains when given, up to
	// MaxPages tasks in all (0: no cap).
	Depth        int
	SameHost     bool
	AllowDomains []string
	MaxPages     int
	// Sitemap seeds the run with the URLs of each input host's sitemaps
	// (sitemap.go), at most SitemapMax from one host (default
	// DefaultSitemapMax); their links are followed only with Depth > 0.
	Sitemap    bool
	SitemapMax int
	// Match and Exclude are regular expressions on the links a crawl finds
	// (not the input's URLs): one is followed when it matches one of Match,
	// if any are given, and none of Exclude.
	Match, Exclude []string
	// Session keeps the cookies sites set in one jar for the whole run,
	// held here and sent with each task (Fetch.Session).
	Session bool
	// Since is the output of an earlier run (JSON, JSON lines or CSV): its
	// pages are fetched again only if changed (since.go).
	Since string
	// RenderSlots is --render-slots: pages a node renders at a time with
	// --render (Fetch.Render); 0 lets each node size it by its memory.
	RenderSlots int

	// Logger, when set, receives the coordinator's log. Otherwise the run
	// logs at LogLevel to Stderr, through the progress bar while it is
	// drawn. LogLevel is passed on to the workers too ("DEBUG", "INFO",
	// "WARN"; default WARN).
	Logger   *slog.Logger
	LogLevel string
	// Progress shows the run as it goes on Stderr: a bar on a terminal,
	// a status line every ProgressInterval elsewhere.
	Progress         bool
	ProgressInterval time.Duration
}

// ErrNoWorkers is returned when no node could start a worker, or every
// worker was lost before the work was done.
var ErrNoWorkers = errors.New("no worker")

// StateInUseError is a new run's state directory that holds another run,
// and Force is not set.
type StateInUseError struct{ Dir string }

func (e *StateInUseError) Error() string { return e.Dir + " holds another run" }

// ErrOutputExists is a new run's output file that is there already, and
// Force is not set.
var ErrOutputExists = errors.New("exists")

// setDefaults validates c and fills in its defaults.
func (c *Config) setDefaults() error {
	if c.Input == nil && !c.Resume {
		return errors.New("no input")
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	if c.Hosts == nil {
		c.Hosts = []machinefile.Host{{Name: "localhost", Slots: runtime.NumCPU(), Line: 0}}
	} else if len(c.Hosts) == 0 && c.WaitWorkers <= 0 {
		return errors.New("no hosts to start workers on, and no time to wait for workers to join")
	}
	if len(c.SSH) == 0 {
		c.SSH = []string{"ssh"}
	}
	if c.LocalBin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find own binary: %w", err)
		}
		c.LocalBin = exe
	}
	if c.RemoteBin == "" {
		c.RemoteBin = c.LocalBin
	}
	if c.PushDir == "" {
		c.PushDir = filepath.Dir(c.LocalBin)
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
	if c.PerHost <= 0 {
		c.PerHost = DefaultPerHost
	}
	if c.MaxCrawlDelay <= 0 {
		c.MaxCrawlDelay = DefaultMaxCrawlDelay
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.Retries < 0 || c.Retries > MaxRetries {
		return fmt.Errorf("retries %d: want 0 to %d", c.Retries, MaxRetries)
	}
	if c.HostFailures < 0 {
		return fmt.Errorf("host failures %d: want 0 (no breaker) or more", c.HostFailures)
	}
	if c.SitemapMax < 0 {
		return fmt.Errorf("sitemap max %d: want 1 or more (0: the default, %d)", c.SitemapMax, DefaultSitemapMax)
	}
	if err := c.checkPerSlot(); err != nil {
		return err
	}
	if c.Window <= 0 {
		c.Window = max(64, 4*c.clusterFetches())
	}
	if c.Listen == "" && len(c.NATS) == 0 && c.WaitWorkers <= 0 && allLocal(c.Hosts) {
		// Nobody off this machine is expected: nobody off it can try.
		c.Listen = "127.0.0.1"
	}
	if _, _, err := splitListen(c.Listen); err != nil {
		return err
	}
	if err := c.Fetch.Validate(); err != nil {
		return err
	}
	if err := c.checkRender(); err != nil {
		return err
	}
	if _, err := CompilePatterns("match", c.Match); err != nil {
		return err
	}
	if _, err := CompilePatterns("exclude", c.Exclude); err != nil {
		return err
	}
	c.Fetch.Session = c.Session
	format, err := output.FormatFor(c.Output, c.Format)
	if err != nil {
		return err
	}
	if c.Warc != "" && format == output.WARC {
		return errors.New("the output is a WARC already: --warc is for one beside another output")
	}
	if c.Warc != "" && (c.Warc == output.Stdout || c.Warc == c.Output) {
		return fmt.Errorf("--warc %s: a file of its own, not the output", c.Warc)
	}
	// Bodies leave the workers only for an archive.
	c.Fetch.Archive = c.Warc != "" || format == output.WARC
	return nil
}

// ErrNoRenderer is a run with --render always and no node that can render.
// (--render auto goes on without one: render.go.)
var ErrNoRenderer = errors.New("no node can render")

// checkRender checks --render and refuses a run with --render always where
// the machinefile says no node may run a browser, unless it waits for
// workers to join, who may bring one. Whether a node has one is known from
// its hello (fleet.watch, render.go).
func (c *Config) checkRender() error {
	mode, err := scrape.ParseRenderMode(c.Fetch.Render)
	if err != nil {
		return err
	}
	c.Fetch.Render = mode
	if c.RenderSlots < 0 {
		return fmt.Errorf("--render-slots %d: want 1 or more (0: by each node's memory)", c.RenderSlots)
	}
	if mode != scrape.RenderAlways || len(c.Hosts) == 0 || c.WaitWorkers > 0 {
		return nil
	}
	for _, h := range c.Hosts {
		if h.Render != machinefile.RenderNo {
			return nil
		}
	}
	return fmt.Errorf("--render %s: %w: every machinefile node says render=no", mode, ErrNoRenderer)
}

// allLocal reports whether every host is this machine (and there is one).
func allLocal(hosts []machinefile.Host) bool {
	for _, h := range hosts {
		if !isLocal(h) {
			return false
		}
	}
	return len(hosts) > 0
}
