package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/scrape-cluster/scrape/check"
	"github.com/scrape-cluster/scrape/coordinator"
	"github.com/scrape-cluster/scrape/machinefile"
	"github.com/scrape-cluster/scrape/output"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// runOptions are scrape run's flags. Most of them are the coordinator's
// Config itself; the rest name what runScrape reads into it, or say how to
// show the run.
type runOptions struct {
	cfg coordinator.Config

	machinefile string          // read into cfg.Hosts
	auth        queue.AuthFiles // read into cfg.NATSAuth
	workerAuth  queue.AuthFiles // read into cfg.WorkerAuth, with auth's CA
	selects     []string        // parsed into cfg.Fetch.Select
	req         requestFlags    // -H, --cookie, --cookies
	tls         bool            // --tls, which is the default now
	resume      string          // a state dir: the run there, with its own flags
	verbose     int
	preflight   bool   // --check
	config      string // --config: a file of flags
	quiet       bool
	stats       string

	// shown are the flags of shownFlags given, as arguments: a resume adds
	// them to the run's own.
	shown []string
	stdin io.Reader
	// fromEnv are the NATS variables that stood for flags not given
	// (natsFromEnv); warnings are flag values that work but are extreme.
	fromEnv  []string
	warnings []string
	// fromOutside are the SCRAPE_ variables and the config file that set
	// flags (flagsFromOutside).
	fromOutside []string
}

// shownFlags change how the run is shown, not what it does: they are not kept
// with the run, and may be given with --resume.
var shownFlags = map[string]bool{"verbose": true, "quiet": true, "stats": true, "progress-interval": true}

func newRunCmd(runFn func(context.Context, *runOptions) error) *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run [-f MACHINEFILE] [URLS_FILE | -] [-o OUTPUT]",
		Short: "Scrape the URLs in a file across the machinefile's nodes",
		Long: `Scrape every URL in URLS_FILE (one per line; blank lines and # comments
skipped; "-" or no file reads stdin) on the nodes of MACHINEFILE, and write one
record per input line to OUTPUT.

Without -f the run uses this machine alone, one slot per CPU. Each slot of a
node fetches --per-slot pages at a time (default 16): a node of 2 slots has 32
pages in flight, and --per-host keeps any one site to 8 of them. A node that is
this machine (localhost, 127.0.0.1, its own name or address) runs its worker
directly; every other node is reached with the system ssh client, which reads
your ~/.ssh/config. The run's queue credentials go to each worker over its
ssh session's stdin, never on a command line.

Every flag can also come from a variable SCRAPE_<FLAG> (SCRAPE_PER_SLOT=32,
SCRAPE_SAME_HOST=true; a repeatable flag takes one value per line) or from a
--config file of "name = value" lines (or SCRAPE_CONFIG=FILE). The command line
wins over both, and a variable over the file.`,
		Example: `  scrape run urls.txt -o results.json
  scrape run -f machinefile urls.txt -o results.jsonl
  cat urls.txt | scrape run -f hosts --timeout 10s > results.jsonl
  scrape run urls.txt -o prices.csv --select price=.price --select img=img.hero@src
  scrape run seeds.txt -o site.jsonl --depth 2 --same-host --per-host 4 --delay 250ms`,
		Args: cobraArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.stdin, o.cfg.Stdout, o.cfg.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			// A resume uses the flags it began with, NATS included.
			if !cmd.Flags().Changed("resume") {
				var err error
				if o.fromOutside, err = o.flagsFromOutside(cmd.Flags(), os.LookupEnv); err != nil {
					return &usageError{err}
				}
			}
			if err := o.complete(cmd.Flags(), args); err != nil {
				return err
			}
			return runFn(cmd.Context(), o)
		},
	}
	o.bind(cmd.Flags())
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{perSlotHint(err)} })
	return cmd
}

// concurrencyFlags are how other tools spell pages in flight: GNU parallel
// and make's -j, xargs' -P, curl's and wget2's -n, Open MPI's --slots.
var concurrencyFlags = []string{"--slots", "--jobs", "--concurrency", "--parallel", "-j", "-n", "-P", "-c"}

// perSlotHint points a flag that sets concurrency elsewhere at --per-slot.
func perSlotHint(err error) error {
	msg := err.Error()
	for _, f := range concurrencyFlags {
		long := "unknown flag: " + f
		short := fmt.Sprintf("unknown shorthand flag: '%s'", strings.TrimPrefix(f, "-"))
		if (msg == long || strings.HasPrefix(msg, long+" ")) || (len(f) == 2 && strings.HasPrefix(msg, short)) {
			return fmt.Errorf("%w (pages in flight: --per-slot N for each machinefile slot, or each CPU without -f; default %d)", err, coordinator.DefaultPerSlot)
		}
	}
	return err
}

// bind defines the flags of scrape run on f, each set straight into o.
func (o *runOptions) bind(f *pflag.FlagSet) {
	c := &o.cfg
	f.SortFlags = false
	f.StringVarP(&o.machinefile, "machinefile", "f", "", "`file` of nodes: host, host:N, host slots=N, user@host, host port=P")
	f.StringVarP(&c.Output, "output", "o", "-", "write records to `file` (.json array, .jsonl lines, .csv, or .warc.gz: pages archived with their records); - is stdout")
	f.StringVar(&c.Format, "format", "", "output `format`: json, jsonl, csv or warc (default: from the -o extension, else jsonl)")
	f.StringVar(&c.Warc, "warc", "", "also archive every page's request and response (bodies up to --max-body) to this WARC `file`, gzip per record, beside -o")
	f.DurationVar(&c.Fetch.Timeout, "timeout", scrape.DefaultTimeout, "give up on one page after this long")
	f.StringVar(&c.Fetch.UserAgent, "user-agent", scrape.DefaultUserAgent(), "User-Agent header sent with every request")
	c.Fetch.MaxBody = scrape.DefaultMaxBody
	f.Var((*byteSize)(&c.Fetch.MaxBody), "max-body", "largest page body read, e.g. 10MiB, 512KiB")
	c.Fetch.MaxRedirects = scrape.DefaultMaxRedirects
	f.Var((*redirects)(&c.Fetch.MaxRedirects), "max-redirects", "redirects followed before giving up")
	f.StringArrayVar(&o.selects, "select", nil, "extract `NAME=CSS` (text) or NAME=CSS@ATTR (attribute) into fields.NAME; repeatable")
	f.BoolVar(&c.Fetch.Text, "text", false, "record the page's visible text")
	f.BoolVar(&c.Fetch.Structured, "structured", false, "record the page's structured data as data: JSON-LD, OpenGraph, Twitter card and microdata")
	f.StringVar(&c.Fetch.Render, "render", scrape.RenderNever, "load pages in headless Chromium on the nodes that have it: never, always, or auto (fetch over HTTP, render the pages whose content scripts make)")
	f.StringVar(&c.Fetch.RenderMatch, "render-match", "", "with --render auto, also render the pages whose HTML matches this `regexp`")
	f.StringVar(&c.Fetch.WaitFor, "wait-for", "", "read a rendered page once this `CSS` selector matches (default: once its network is idle)")
	f.BoolVar(&c.Fetch.RenderResources, "render-resources", false, "let rendered pages load images, fonts and media (blocked by default)")
	f.IntVar(&c.RenderSlots, "render-slots", 0, "pages a node renders at a time (default: by its available memory, at least 1, at most 2 per CPU)")
	f.Var((*byteSize)(&c.Fetch.RenderMemory), "render-memory", "memory a node's browser may take before it is replaced by a fresh one, e.g. 2GiB (default: by its render slots)")
	f.IntVar(&c.PerSlot, "per-slot", coordinator.DefaultPerSlot, "pages a node fetches at a time for each of its machinefile slots (without -f: one slot per CPU)")
	f.IntVar(&c.PerHost, "per-host", coordinator.DefaultPerHost, "requests in flight to one host, across the whole cluster")
	f.DurationVar(&c.Delay, "delay", 0, "least time between the starts of two requests to one host, cluster-wide (plus up to half again as jitter)")
	f.BoolVar(&c.IgnoreRobots, "ignore-robots", false, "do not obey robots.txt")
	f.DurationVar(&c.MaxCrawlDelay, "max-crawl-delay", coordinator.DefaultMaxCrawlDelay, "longest robots.txt Crawl-delay obeyed: a host asking for more gets this")
	f.Var(allowPrivate{&c.Fetch}, "allow-private", "let pages, redirects and robots.txt reach private, loopback and CGNAT addresses the urls file does not list: all of them (link-local excepted), or =CIDR,... just those")
	f.Lookup("allow-private").NoOptDefVal = "all"
	f.IntVar(&c.Retries, "retries", coordinator.DefaultRetries, "further attempts after a timeout, connection error, 408, 429 or 5xx")
	f.DurationVar(&c.RetryBackoff, "retry-backoff", coordinator.DefaultRetryBackoff, "wait before the first retry; doubles each time, Retry-After honoured")
	f.IntVar(&c.HostFailures, "host-failures", coordinator.DefaultHostFailures, "failures to reach a host in a row (connect, dns, tls, timeout) after which its URLs wait for one probe, and are recorded as host_unreachable if that fails too (0: never)")
	f.IntVar(&c.Depth, "depth", 0, "follow links this many levels from the input (0: only the given URLs)")
	f.BoolVar(&c.SameHost, "same-host", false, "when crawling, stay on the input URLs' hosts")
	f.StringSliceVar(&c.AllowDomains, "allow-domain", nil, "when crawling, only follow links to these `domains` (and their subdomains); repeatable")
	f.IntVar(&c.MaxPages, "max-pages", 0, "when crawling, stop adding pages after this many in all (0: no cap)")
	f.BoolVar(&c.Sitemap, "sitemap", false, "also fetch the URLs of each input host's sitemaps (robots.txt Sitemap: lines, else /sitemap.xml); links are followed only with --depth")
	f.IntVar(&c.SitemapMax, "sitemap-max", coordinator.DefaultSitemapMax, "most URLs taken from one host's sitemaps")
	f.StringVar(&c.Since, "since", "", "an earlier run's output `file` (json, jsonl or csv): send its pages' ETag and Last-Modified, and record a page not modified as unchanged, with its earlier fields")
	o.bindRequest(f)
	// No default value: an unset Listen is what lets a run whose nodes are
	// all this machine listen on loopback only.
	f.StringVar(&c.Listen, "listen", "", "`host:port` the run's queue listens on (default: all interfaces, a free port; loopback only when every node is this machine and no worker is to join)")
	f.StringVar(&c.Advertise, "advertise", "", "`address` workers dial to reach the queue (default: ours on the route to each node)")
	c.SSH = []string{"ssh"}
	f.Var(fields(&c.SSH), "ssh", "ssh `command` used to reach nodes, with its own options, e.g. \"ssh -F cluster.conf\"")
	bindBinaryFlags(f, &c.RemoteBin, &c.Push, &c.PushDir)
	f.BoolVar(&o.preflight, "check", false, "check every node first, as scrape check does, and stop if one is not ready")
	f.StringVar(&c.StateDir, "state", "", "`dir` for the run's queue store and journal (default: a new directory under .scrape/, removed after success)")
	f.StringVar(&o.resume, "resume", "", "finish the run kept in `dir` (its --state), with the flags it began with")
	f.StringVar(&o.config, "config", "", "read flags from `file`: name = value lines (see Flags in README); flags given and SCRAPE_<FLAG> variables win")
	f.BoolVar(&c.Force, "force", false, "overwrite an existing output file, and a --state directory holding another run")
	bindNATS(f, &c.NATS, &o.auth, "use this NATS server or cluster (`urls`, comma-separated, with JetStream) instead of the embedded queue")
	bindWorkerAuth(f, &o.workerAuth)
	f.IntVar(&c.Replicas, "replicas", 1, "copies of the run's streams a NATS cluster keeps (--nats; 3 on a 3-node cluster)")
	f.BoolVar(&o.tls, "tls", false, "serve the embedded queue over TLS (the default; kept for old scripts)")
	_ = f.MarkHidden("tls")
	f.BoolVar(&c.Plaintext, "no-tls", false, "serve the embedded queue without TLS, to debug with tools that read the wire: tasks and results then cross the network in clear (logins stay NKey signatures)")
	f.DurationVar(&c.WaitWorkers, "wait-workers", 0, "while no worker runs, wait this long for one to join (scrape worker --nats) before failing; allows a machinefile with no hosts")
	f.DurationVar(&c.ConnectTimeout, "connect-timeout", coordinator.DefaultConnectTimeout, "ssh connect timeout per node")
	f.DurationVar(&c.AckWait, "ack-wait", coordinator.DefaultAckWait, "how long a silent task waits before another worker gets it")
	f.CountVarP(&o.verbose, "verbose", "v", "log more (-v progress, -vv debug)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "show no progress and print no summary")
	f.StringVar(&o.stats, "stats", "", "write the end-of-run summary to `file` as JSON")
	f.DurationVar(&c.ProgressInterval, "progress-interval", coordinator.DefaultProgressInterval, "how often to print a status line when stderr is not a terminal")
	// Tuning for tests and unusual clusters; the default suits both LANs and
	// slow sites because workers send heartbeats.
	_ = f.MarkHidden("ack-wait")
}

// complete checks the flags f bound into o and fills in the rest of the
// Config that follows from them alone. It reads no file: a mistake in the
// command line is reported as one, before anything is opened or made.
func (o *runOptions) complete(f *pflag.FlagSet, args []string) error {
	c := &o.cfg
	c.InputPath = "-"
	if len(args) == 1 {
		c.InputPath = args[0]
	}
	if err := o.check(f, args); err != nil {
		return &usageError{err}
	}
	if o.resume != "" {
		c.Resume, c.StateDir = true, o.resume
	} else if err := o.absPaths(); err != nil {
		return err
	}
	// A resume runs the run's own command line again, so a flag needs
	// nothing more to be kept with the run.
	kept := []string{}
	f.Visit(func(fl *pflag.Flag) {
		switch {
		case fl.Name == "resume", fl.Name == "config":
		case shownFlags[fl.Name]:
			o.shown = append(o.shown, flagArgs(fl)...)
		default:
			kept = append(kept, flagArgs(fl)...)
		}
	})
	if c.InputPath != "-" {
		kept = append(kept, "--", c.InputPath)
	}
	var err error
	if c.Saved, err = json.Marshal(kept); err != nil {
		return err
	}
	o.warnings = append(o.extremes(), o.requestWarnings()...)
	c.Progress = !o.quiet
	// The coordinator logs at this level to its stderr itself, so that its
	// log goes through the progress bar while one is drawn.
	c.LogLevel = levelFor(o.verbose).String()
	return nil
}

// check refuses values and combinations of flags that cannot work, or that
// the run would quietly ignore.
func (o *runOptions) check(f *pflag.FlagSet, args []string) error {
	c := &o.cfg
	if err := checkNotNegative(f); err != nil {
		return err
	}
	if o.resume != "" {
		var extra []string
		f.Visit(func(fl *pflag.Flag) {
			if fl.Name != "resume" && !shownFlags[fl.Name] {
				extra = append(extra, "--"+fl.Name)
			}
		})
		if len(args) > 0 || len(extra) > 0 {
			return fmt.Errorf("--resume runs with the flags the run began with; drop %s", strings.Join(append(args, extra...), " "))
		}
		return nil
	}
	if c.Format != "" {
		if _, err := output.FormatFor(c.Output, c.Format); err != nil {
			return err
		}
	}
	switch {
	case c.Since == "-":
		// Its records are read again during the run (a 304's fields).
		return errors.New("--since reads a file, not standard input: name the earlier run's output")
	case c.Since != "" && filepath.Clean(c.Since) == filepath.Clean(c.Output):
		return fmt.Errorf("--since %s is the output too: write the re-crawl to another file", c.Since)
	}
	// A zero would quietly mean the default; say so instead. Below these a
	// page or a node cannot answer at all.
	for _, d := range []struct {
		name     string
		v, least time.Duration
	}{
		{"timeout", c.Fetch.Timeout, 100 * time.Millisecond},
		{"connect-timeout", c.ConnectTimeout, time.Second},
		{"ack-wait", c.AckWait, time.Second},
	} {
		if f.Changed(d.name) && d.v < d.least {
			return fmt.Errorf("--%s %s: at least %s", d.name, d.v, d.least)
		}
	}
	if c.Retries > coordinator.MaxRetries {
		return fmt.Errorf("--retries %d: at most %d (with doubling waits, more keep a page for hours)", c.Retries, coordinator.MaxRetries)
	}
	if o.tls && c.Plaintext {
		return errors.New("--tls and --no-tls contradict each other")
	}
	if c.PerHost < 1 {
		return errors.New("--per-host must be 1 or more")
	}
	if c.PerSlot < 1 || c.PerSlot > coordinator.MaxPerSlot {
		return fmt.Errorf("--per-slot must be 1 to %d", coordinator.MaxPerSlot)
	}
	if c.MaxCrawlDelay <= 0 {
		return errors.New("--max-crawl-delay must be more than 0 (--ignore-robots ignores robots.txt, its Crawl-delay included)")
	}
	if c.Replicas < 1 || (c.Replicas > 1 && len(c.NATS) == 0) {
		return errors.New("--replicas must be 1 or more, and more than 1 only with --nats (a NATS cluster)")
	}
	if err := checkNATS(f, c.NATS, o.auth, "is for logging in to the NATS given with --nats"); err != nil {
		return err
	}
	if err := checkWorkerAuth(f, c.NATS, o.workerAuth); err != nil {
		return err
	}
	if len(c.NATS) > 0 {
		if o.tls || c.Plaintext {
			return errors.New("--tls and --no-tls are for the embedded queue; with --nats, use tls:// URLs and --tls-ca")
		}
		if err := needs(f, []string{"listen", "advertise"}, "is for the embedded queue; with --nats, workers dial the NATS servers"); err != nil {
			return err
		}
	}
	// A machinefile may list no host when workers are to join (with
	// --wait-workers): runScrape checks once it has read it.
	if err := o.checkWorkersLogIn(o.machinefile == "" || c.WaitWorkers == 0); err != nil {
		return err
	}
	if err := checkListen(c.Listen); err != nil {
		return err
	}
	if err := o.checkRequest(); err != nil {
		return err
	}
	for _, expr := range o.selects {
		sel, err := scrape.ParseSelector(expr)
		if err != nil {
			return selectFlag(err)
		}
		c.Fetch.Select = append(c.Fetch.Select, sel)
	}
	return selectFlag(c.Fetch.Validate())
}

// Beyond these, a flag's value works but is rarely what was meant: the run
// says so before it starts (extremes).
const (
	warnTimeout   = 5 * time.Minute
	warnRetryWait = 30 * time.Minute
	warnMaxBody   = 256 << 20
	warnDelay     = time.Minute
)

// extremes are warnings about values check lets through that can make a run
// far slower or bigger than its other figures suggest.
func (o *runOptions) extremes() []string {
	c := &o.cfg
	var w []string
	if c.Fetch.Timeout > warnTimeout {
		w = append(w, fmt.Sprintf("--timeout %s: a page that hangs holds one of a node's slots that long, each attempt", c.Fetch.Timeout))
	}
	if d := coordinator.LongestRetryWait(c.RetryBackoff, c.Retries); d > warnRetryWait {
		w = append(w, fmt.Sprintf("--retries %d --retry-backoff %s: a page that keeps failing waits up to %s between its attempts before its record is written (each wait doubles, up to 5m)",
			c.Retries, c.RetryBackoff, d.Round(time.Minute)))
	}
	if c.Fetch.MaxBody > warnMaxBody {
		w = append(w, fmt.Sprintf("--max-body %s: every slot of a node may hold a body that big in memory at once", (*byteSize)(&c.Fetch.MaxBody)))
	}
	if c.Delay > warnDelay {
		w = append(w, fmt.Sprintf("--delay %s: one request to a host every %s at most, so a host's 60 URLs take an hour or more", c.Delay, c.Delay))
	}
	return w
}

// selectFlag names the flag a selector came from.
func selectFlag(err error) error {
	if se, ok := errors.AsType[*scrape.SelectorError](err); ok {
		return fmt.Errorf("--select %q: %w", se.Expr, se.Err)
	}
	return err
}

// checkWorkersLogIn refuses a run on an existing NATS that logs in and
// would start workers with no login of their own: they never get the
// coordinator's (its rights are a coordinator's), so the NATS would turn
// them away as they dial. On a NATS without authorization, where the
// coordinator logs in with nothing, so do the workers.
func (o *runOptions) checkWorkersLogIn(startsWorkers bool) error {
	if len(o.cfg.NATS) == 0 || !startsWorkers || !logsIn(o.auth) || logsIn(o.workerAuth) {
		return nil
	}
	return errors.New("with --nats, the workers the run starts need credentials of their own, with only a worker's rights " +
		"(--worker-creds, --worker-nkey, --worker-user and --worker-password-file, or --worker-token-file): " +
		"they are never given the coordinator's")
}

// checkListen refuses a --listen the queue could not listen on: it is HOST,
// HOST:PORT or :PORT, with PORT a number.
func checkListen(listen string) error {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil // no port: all of it is the host
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("--listen %q: invalid port", listen)
	}
	return nil
}

// checkNotNegative refuses a negative number or duration for any flag given:
// none has a meaning below zero, and the packages below take one as "use
// the default" or "none" without a word.
func checkNotNegative(f *pflag.FlagSet) error {
	var err error
	f.Visit(func(fl *pflag.Flag) {
		negative := false
		switch fl.Value.Type() {
		case "int":
			n, e := strconv.Atoi(fl.Value.String())
			negative = e == nil && n < 0
		case "duration":
			d, e := time.ParseDuration(fl.Value.String())
			negative = e == nil && d < 0
		}
		if negative && err == nil {
			err = fmt.Errorf("--%s cannot be negative", fl.Name)
		}
	})
	return err
}

// runScrape is the run command's work: read the inputs, run, report.
func runScrape(ctx context.Context, o *runOptions) error {
	setStartupGC()
	if o.cfg.Resume {
		saved, err := coordinator.SavedOptions(o.cfg.StateDir)
		if err != nil {
			return err
		}
		if o, err = o.resumed(saved); err != nil {
			return err
		}
	}
	cfg := o.cfg
	if err := o.readCookies(&cfg); err != nil {
		return err
	}
	if o.machinefile != "" {
		hosts, err := machinefile.ParseFile(o.machinefile)
		if errors.Is(err, machinefile.ErrEmpty) && cfg.WaitWorkers > 0 {
			hosts, err = []machinefile.Host{}, nil // workers will join
		}
		if err != nil {
			return err
		}
		cfg.Hosts = hosts
		if err := o.checkWorkersLogIn(len(hosts) > 0); err != nil {
			return &usageError{err}
		}
	}
	for _, w := range o.warnings {
		fmt.Fprintf(cfg.Stderr, "scrape: warning: %s\n", w)
	}
	if len(o.fromOutside) > 0 && o.verbose > 0 {
		fmt.Fprintf(cfg.Stderr, "scrape: flags also from %s\n", strings.Join(o.fromOutside, ", "))
	}
	if slices.Contains(o.fromEnv, "NATS_URL") {
		fmt.Fprintf(cfg.Stderr, "scrape: the run's queue is on the NATS that NATS_URL names (%s), not its own\n", strings.Join(cfg.NATS, ","))
	}
	if o.preflight {
		if err := preflight(ctx, cfg); err != nil {
			return err
		}
	}
	switch {
	case cfg.Resume:
	case cfg.InputPath != "-":
		f, err := os.Open(cfg.InputPath)
		if err != nil {
			return fmt.Errorf("open urls: %w", err)
		}
		defer f.Close()
		cfg.Input = f
	default:
		// Ctrl-C stops the run even while it waits for a line.
		cfg.Input, cfg.TerminalInput = cancelable(ctx, o.stdin), isTerminal(o.stdin)
	}
	var err error
	if cfg.NATSAuth, err = o.auth.Load(); err != nil {
		return err
	}
	if len(cfg.NATS) > 0 {
		natsPassword(&cfg.NATSAuth, os.Getenv)
		// The workers check the servers' certificates as the coordinator
		// does: the CA is no secret.
		files := o.workerAuth
		files.CA = o.auth.CA
		if cfg.WorkerAuth, err = files.Load(); err != nil {
			return fmt.Errorf("workers' login: %w", err)
		}
	}
	c, err := coordinator.New(cfg)
	if err != nil {
		return err
	}
	sum, err := c.Run(ctx)

	// A run that could not begin has nothing to sum up; its error says all.
	begun := sum != nil && (err == nil || sum.Records > 0 || sum.Nodes > 0 || ctx.Err() != nil)
	if begun && !o.quiet {
		sum.Print(cfg.Stderr)
	}
	if sum != nil && o.stats != "" {
		if werr := sum.WriteFile(o.stats); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return err
}

// preflight is scrape run --check: the checks of scrape check on the run's
// nodes, with the run's flags, before anything else. The report goes to
// stderr; a node not ready stops the run.
func preflight(ctx context.Context, cfg coordinator.Config) error {
	hosts := cfg.Hosts
	if hosts == nil {
		hosts = []machinefile.Host{{Name: "localhost", Slots: 1}}
	}
	if len(hosts) == 0 {
		return nil // workers will join: no node to check
	}
	rep, err := check.Run(ctx, check.Config{
		Hosts: hosts, SSH: cfg.SSH, ConnectTimeout: cfg.ConnectTimeout,
		LocalBin: cfg.LocalBin, RemoteBin: cfg.RemoteBin, Push: cfg.Push, PushDir: cfg.PushDir,
		Listen: cfg.Listen, Advertise: cfg.Advertise, MaxBody: cfg.Fetch.MaxBody,
	})
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if err := rep.WriteTable(cfg.Stderr); err != nil {
		return err
	}
	if !rep.AllReady() {
		return fmt.Errorf("check: %s: fix the nodes above, or take them out of the machinefile", rep.Summary())
	}
	return nil
}
