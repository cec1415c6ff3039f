package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/scrape-cluster/scrape/coordinator"
	"github.com/scrape-cluster/scrape/machinefile"
	"github.com/scrape-cluster/scrape/scrape"
)

type runOptions struct {
	Machinefile string
	URLs        string // path, or "-" for stdin
	Output      string
	Format      string

	Timeout      time.Duration
	UserAgent    string
	MaxBody      byteSize
	MaxRedirects int
	Select       []string
	Text         bool

	Listen         string
	Advertise      string
	SSH            string
	RemoteBin      string
	Push           bool
	State          string
	ConnectTimeout time.Duration
	AckWait        time.Duration

	PerHost      int
	Delay        time.Duration
	IgnoreRobots bool
	Retries      int
	RetryBackoff time.Duration

	Depth        int
	SameHost     bool
	AllowDomains []string
	MaxPages     int

	NATS        natsFlags
	Replicas    int
	TLS         bool
	NoTLS       bool
	WaitWorkers time.Duration

	// Not kept with the run: they say how to show this invocation of it.
	Resume           string        `json:"-"`
	Force            bool          `json:"-"`
	Verbose          int           `json:"-"`
	Quiet            bool          `json:"-"`
	Stats            string        `json:"-"`
	ProgressInterval time.Duration `json:"-"`

	Stdin          io.Reader `json:"-"`
	Stdout, Stderr io.Writer `json:"-"`
}

// resumeFlags may be given with --resume: they change how the run is shown,
// not what it does.
var resumeFlags = map[string]bool{"resume": true, "verbose": true, "quiet": true, "stats": true, "progress-interval": true}

func newRunCmd(runFn func(context.Context, *runOptions) error) *cobra.Command {
	o := &runOptions{MaxBody: scrape.DefaultMaxBody}
	cmd := &cobra.Command{
		Use:   "run [-f MACHINEFILE] [URLS_FILE | -] [-o OUTPUT]",
		Short: "Scrape the URLs in a file across the machinefile's nodes",
		Long: `Scrape every URL in URLS_FILE (one per line; blank lines and # comments
skipped; "-" or no file reads stdin) on the nodes of MACHINEFILE, and write one
record per input line to OUTPUT.

Without -f the run uses this machine alone, one slot per CPU. A node that is
this machine (localhost, 127.0.0.1, its own name or address) runs its worker
directly; every other node is reached with the system ssh client, which reads
your ~/.ssh/config. The run's queue credentials go to each worker over its
ssh session's stdin, never on a command line.`,
		Example: `  scrape run urls.txt -o results.json
  scrape run -f machinefile urls.txt -o results.jsonl
  cat urls.txt | scrape run -f hosts --timeout 10s > results.jsonl
  scrape run urls.txt -o prices.csv --select price=.price --select img=img.hero@src
  scrape run seeds.txt -o site.jsonl --depth 2 --same-host --per-host 4 --delay 250ms`,
		Args: cobraArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.URLs = "-"
			if len(args) == 1 {
				o.URLs = args[0]
			}
			if o.Resume != "" {
				var extra []string
				cmd.Flags().Visit(func(f *pflag.Flag) {
					if !resumeFlags[f.Name] {
						extra = append(extra, "--"+f.Name)
					}
				})
				if len(args) > 0 || len(extra) > 0 {
					return &usageError{fmt.Errorf("--resume runs with the flags the run began with; drop %s", strings.Join(append(args, extra...), " "))}
				}
			}
			o.Stdin, o.Stdout, o.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runFn(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.StringVarP(&o.Machinefile, "machinefile", "f", "", "`file` of nodes: host, host:N, host slots=N, user@host, host port=P")
	f.StringVarP(&o.Output, "output", "o", "-", "write records to `file` (.json array, .jsonl lines or .csv); - is stdout")
	f.StringVar(&o.Format, "format", "", "output `format`: json, jsonl or csv (default: from the -o extension, else jsonl)")
	f.DurationVar(&o.Timeout, "timeout", scrape.DefaultTimeout, "give up on one page after this long")
	f.StringVar(&o.UserAgent, "user-agent", scrape.DefaultUserAgent(), "User-Agent header sent with every request")
	f.Var(&o.MaxBody, "max-body", "largest page body read, e.g. 10MiB, 512KiB")
	f.IntVar(&o.MaxRedirects, "max-redirects", scrape.DefaultMaxRedirects, "redirects followed before giving up")
	f.StringArrayVar(&o.Select, "select", nil, "extract `NAME=CSS` (text) or NAME=CSS@ATTR (attribute) into fields.NAME; repeatable")
	f.BoolVar(&o.Text, "text", false, "record the page's visible text")
	f.IntVar(&o.PerHost, "per-host", coordinator.DefaultPerHost, "requests in flight to one host, across the whole cluster")
	f.DurationVar(&o.Delay, "delay", 0, "least time between the starts of two requests to one host, cluster-wide (plus up to half again as jitter)")
	f.BoolVar(&o.IgnoreRobots, "ignore-robots", false, "do not obey robots.txt")
	f.IntVar(&o.Retries, "retries", coordinator.DefaultRetries, "further attempts after a timeout, connection error, 408, 429 or 5xx")
	f.DurationVar(&o.RetryBackoff, "retry-backoff", coordinator.DefaultRetryBackoff, "wait before the first retry; doubles each time, Retry-After honoured")
	f.IntVar(&o.Depth, "depth", 0, "follow links this many levels from the input (0: only the given URLs)")
	f.BoolVar(&o.SameHost, "same-host", false, "when crawling, stay on the input URLs' hosts")
	f.StringSliceVar(&o.AllowDomains, "allow-domain", nil, "when crawling, only follow links to these `domains` (and their subdomains); repeatable")
	f.IntVar(&o.MaxPages, "max-pages", 0, "when crawling, stop adding pages after this many in all (0: no cap)")
	f.StringVar(&o.Listen, "listen", ":0", "`host:port` the run's queue listens on (default: all interfaces, a free port)")
	f.StringVar(&o.Advertise, "advertise", "", "`address` workers dial to reach the queue (default: ours on the route to each node)")
	f.StringVar(&o.SSH, "ssh", "ssh", "ssh `command` used to reach nodes, with its own options, e.g. \"ssh -F cluster.conf\"")
	f.StringVar(&o.RemoteBin, "remote-bin", "", "`path` of scrape on the nodes (default: this binary's path, as on a shared file system)")
	f.BoolVar(&o.Push, "push", false, "copy this binary to nodes that lack an identical copy (POSIX nodes of the same OS and CPU)")
	f.StringVar(&o.State, "state", "", "`dir` for the run's queue store and journal (default: a new directory under .scrape/, removed after success)")
	f.StringVar(&o.Resume, "resume", "", "finish the run kept in `dir` (its --state), with the flags it began with")
	f.BoolVar(&o.Force, "force", false, "overwrite an existing output file, and a --state directory holding another run")
	o.NATS.bind(f, "use this NATS server or cluster (`urls`, comma-separated, with JetStream) instead of the embedded queue")
	f.IntVar(&o.Replicas, "replicas", 1, "copies of the run's streams a NATS cluster keeps (--nats; 3 on a 3-node cluster)")
	f.BoolVar(&o.TLS, "tls", false, "serve the embedded queue over TLS (the default; kept for old scripts)")
	f.BoolVar(&o.NoTLS, "no-tls", false, "serve the embedded queue without TLS, for debugging: tasks and results cross the network in clear (logins stay NKey signatures)")
	_ = f.MarkHidden("tls")
	f.DurationVar(&o.WaitWorkers, "wait-workers", 0, "while no worker runs, wait this long for one to join (scrape worker --nats) before failing; allows a machinefile with no hosts")
	f.DurationVar(&o.ConnectTimeout, "connect-timeout", coordinator.DefaultConnectTimeout, "ssh connect timeout per node")
	f.DurationVar(&o.AckWait, "ack-wait", coordinator.DefaultAckWait, "how long a silent task waits before another worker gets it")
	f.CountVarP(&o.Verbose, "verbose", "v", "log more (-v progress, -vv debug)")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "show no progress and print no summary")
	f.StringVar(&o.Stats, "stats", "", "write the end-of-run summary to `file` as JSON")
	f.DurationVar(&o.ProgressInterval, "progress-interval", coordinator.DefaultProgressInterval, "how often to print a status line when stderr is not a terminal")
	// Tuning for tests and unusual clusters; the default suits both LANs and
	// slow sites because workers send heartbeats.
	_ = f.MarkHidden("ack-wait")
	return cmd
}

// runScrape is the run command's work: read the inputs, run, report.
func runScrape(ctx context.Context, o *runOptions) error {
	setStartupGC()
	if o.Resume != "" {
		saved, err := coordinator.SavedOptions(o.Resume)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(saved, o); err != nil {
			return fmt.Errorf("read the flags of the run in %s: %w", o.Resume, err)
		}
		o.State = o.Resume
	} else if err := o.absPaths(); err != nil {
		return err
	}
	var hosts []machinefile.Host
	if o.Machinefile != "" {
		var err error
		hosts, err = machinefile.ParseFile(o.Machinefile)
		if errors.Is(err, machinefile.ErrEmpty) && o.WaitWorkers > 0 {
			hosts, err = []machinefile.Host{}, nil // workers will join
		}
		if err != nil {
			return err
		}
	}
	in := o.Stdin
	if o.URLs != "-" && o.Resume == "" {
		f, err := os.Open(o.URLs)
		if err != nil {
			return fmt.Errorf("open urls: %w", err)
		}
		defer f.Close()
		in = f
	}
	auth, err := o.NATS.Load()
	if err != nil {
		return err
	}
	saved, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if o.Replicas < 1 || (o.Replicas > 1 && o.NATS.URLs == "") {
		return &usageError{errors.New("--replicas must be 1 or more, and more than 1 only with --nats (a NATS cluster)")}
	}
	if o.PerHost < 1 {
		return &usageError{errors.New("--per-host must be 1 or more")}
	}
	if o.Retries < 0 || o.Depth < 0 || o.MaxPages < 0 || o.Delay < 0 {
		return &usageError{errors.New("--retries, --depth, --max-pages and --delay cannot be negative")}
	}
	if o.WaitWorkers < 0 {
		return &usageError{errors.New("--wait-workers cannot be negative")}
	}
	if o.MaxRedirects < 0 {
		return &usageError{errors.New("--max-redirects must be 0 or more")}
	}
	var selectors []scrape.Selector
	for _, expr := range o.Select {
		sel, err := scrape.ParseSelector(expr)
		if err != nil {
			return &usageError{err}
		}
		selectors = append(selectors, sel)
	}
	maxRedirects := o.MaxRedirects
	if maxRedirects == 0 {
		maxRedirects = -1 // scrape.Config: negative means none followed
	}
	c, err := coordinator.New(coordinator.Config{
		Hosts:  hosts,
		Input:  in,
		Output: o.Output,
		Format: o.Format,
		Stdout: o.Stdout,
		Stderr: o.Stderr,
		Fetch: scrape.Config{
			Timeout:      o.Timeout,
			UserAgent:    o.UserAgent,
			MaxBody:      int64(o.MaxBody),
			MaxRedirects: maxRedirects,
			Select:       selectors,
			Text:         o.Text,
		},
		Listen:           o.Listen,
		Advertise:        o.Advertise,
		SSH:              strings.Fields(o.SSH),
		RemoteBin:        o.RemoteBin,
		Push:             o.Push,
		StateDir:         o.State,
		InputPath:        o.URLs,
		Resume:           o.Resume != "",
		Force:            o.Force,
		Saved:            saved,
		NATS:             o.NATS.servers(),
		NATSAuth:         auth,
		Replicas:         o.Replicas,
		Plaintext:        o.NoTLS,
		WaitWorkers:      o.WaitWorkers,
		ConnectTimeout:   o.ConnectTimeout,
		AckWait:          o.AckWait,
		PerHost:          o.PerHost,
		Delay:            o.Delay,
		IgnoreRobots:     o.IgnoreRobots,
		Retries:          o.Retries,
		RetryBackoff:     o.RetryBackoff,
		Depth:            o.Depth,
		SameHost:         o.SameHost,
		AllowDomains:     o.AllowDomains,
		MaxPages:         o.MaxPages,
		Progress:         !o.Quiet,
		ProgressInterval: o.ProgressInterval,
		Logger:           newLogger(o.Stderr, o.Verbose),
		LogLevel:         levelFor(o.Verbose).String(),
	})
	if err != nil {
		return err
	}
	sum, err := c.Run(ctx)
	// A run that could not begin has nothing to sum up; its error says all.
	begun := sum != nil && (err == nil || sum.Records > 0 || sum.Nodes > 0 || ctx.Err() != nil)
	if begun && !o.Quiet {
		sum.Print(o.Stderr)
	}
	if sum != nil && o.Stats != "" {
		if werr := sum.WriteFile(o.Stats); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return err
}

// absPaths makes the run's paths absolute, so that a resume started from
// another directory finds the same files.
func (o *runOptions) absPaths() error {
	n := &o.NATS.AuthFiles
	for _, p := range []*string{&o.Machinefile, &o.URLs, &o.Output, &o.State, &n.Creds, &n.NKey, &n.PasswordFile, &n.TokenFile, &n.CA} {
		if *p == "" || *p == "-" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	return nil
}
