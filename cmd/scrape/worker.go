package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/worker"
)

// workerOptions are scrape worker's flags, bound into the worker's Config
// and, for a worker that joins a run with --nats, how it finds the run.
type workerOptions struct {
	cfg     worker.Config   // Grace; with --nats, the bootstrap's Node and Slots
	find    worker.Find     // with --nats: Servers, Run and Wait
	auth    queue.AuthFiles // read into find.Auth
	verbose int

	stdin  io.Reader
	stderr io.Writer
}

func newWorkerCmd(runFn func(context.Context, *workerOptions) error) *cobra.Command {
	o := &workerOptions{}
	cmd := &cobra.Command{
		Use:   "worker [--nats URL --nkey FILE --slots N]",
		Short: "Run a worker for a scrape (started by scrape run, or joining a run with --nats)",
		Long: `Run one node's worker.

scrape run starts it on every node of its machinefile, over ssh or locally, and
writes the run's address and credentials as one line to its standard input.
That worker exits when its input closes (the coordinator or its ssh session is
gone), when the coordinator says stop, or when it has been cut off from the
queue for longer than --grace.

With --nats, the worker joins a run by itself, from any machine that reaches
the run's queue: the embedded queue of scrape run (its address, with the join
key <state dir>/worker.nk as --nkey and, for a run with --tls, its certificate
<state dir>/queue-cert.pem as --tls-ca), or the NATS that scrape run --nats
uses. NATS_URL, NATS_CREDS, NATS_NKEY, NATS_USER, NATS_PASSWORD and NATS_CA,
as the nats tool reads them, stand for the flags not given (unless standard
input is a pipe, as for a worker scrape run starts). Without --run it joins
the one active run there, waiting for one to start (up to --wait) and refusing
to guess between several. It leaves when the run
ends or on SIGTERM, handing back what it has not finished; a run started by
scrape run goes on with its other workers.`,
		Example: `  scrape worker --nats nats://coordinator:4222 --nkey run/worker.nk --slots 8
  scrape worker --nats tls://nats1:4222,tls://nats2:4222 --creds scrape.creds --tls-ca ca.pem --name rack2`,
		Args: cobraArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			// A worker scrape run starts reads its bootstrap from a pipe,
			// whatever NATS its environment names.
			if !fromPipe(cmd.InOrStdin()) {
				if _, err := natsFromEnv(cmd.Flags(), os.Getenv); err != nil {
					return &usageError{err}
				}
			}
			if err := o.check(cmd.Flags()); err != nil {
				return &usageError{err}
			}
			o.stdin, o.stderr = cmd.InOrStdin(), cmd.ErrOrStderr()
			return runFn(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	bindNATS(f, &o.find.Servers, &o.auth, "join a run on this NATS (`urls`, comma-separated) instead of reading a bootstrap from stdin")
	f.IntVar(&o.cfg.Slots, "slots", 0, "pages fetched at a time (default: the run's --per-slot for each CPU, 16 per CPU unless the run says otherwise)")
	f.StringVar(&o.cfg.Node, "name", "", "`node` name in the run's records and summary (default: this host's name)")
	f.StringVar(&o.find.Run, "run", "", "`ID` of the run to join (default: the one active run)")
	f.DurationVar(&o.find.Wait, "wait", 0, "give up after waiting this long for a run (default: wait until stopped)")
	f.DurationVar(&o.cfg.Grace, "grace", worker.DefaultGrace, "exit after being cut off from the coordinator this long")
	f.StringVar(&o.cfg.Browser, "browser", "", "render with this Chromium `path` (--render); default: chromium, chromium-browser or google-chrome on PATH")
	f.IntVar(&o.cfg.RenderSlots, "render-slots", 0, "pages rendered at a time here, in place of the run's --render-slots")
	f.Var((*byteSize)(&o.cfg.RenderMemory), "render-memory", "memory the browser here may take before it is replaced, in place of the run's --render-memory")
	f.CountVarP(&o.verbose, "verbose", "v", "with --nats: log every page")
	return cmd
}

// check refuses what cannot work, before the worker reads its bootstrap or
// any file: above all flags for joining a run by hand on a worker that the
// run starts, which would be ignored.
func (o *workerOptions) check(f *pflag.FlagSet) error {
	if err := checkNotNegative(f); err != nil {
		return err
	}
	const why = "is for a worker that joins a run with --nats"
	if err := checkNATS(f, o.find.Servers, o.auth, why); err != nil {
		return err
	}
	if len(o.find.Servers) == 0 {
		return needs(f, []string{"slots", "name", "run", "wait"}, why)
	}
	return nil
}

func runWorker(ctx context.Context, o *workerOptions) error {
	setGOGC(workerGOGC)
	setMemLimit(workerMemLimit)
	if len(o.find.Servers) > 0 {
		return joinRun(ctx, o)
	}
	stdin := o.stdin
	if isTerminal(stdin) {
		// A person started it: scrape run writes the bootstrap, not they.
		fmt.Fprintln(o.stderr, "scrape worker: reading the run's bootstrap from standard input, which scrape run writes when it starts a worker; to join a run yourself, give --nats (or set NATS_URL)")
		stdin = cancelable(ctx, stdin)
	}
	in := bufio.NewReader(stdin)
	boot, err := queue.ReadBootstrap(in)
	if err != nil {
		return err
	}
	var level slog.Level
	if level.UnmarshalText([]byte(boot.LogLevel)) != nil {
		level = slog.LevelWarn
	}
	cfg := o.cfg
	cfg.Bootstrap, cfg.Lifeline = boot, watchStdin(in)
	cfg.Logger = slog.New(slog.NewTextHandler(o.stderr, &slog.HandlerOptions{Level: level}))
	w, err := worker.New(cfg)
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// joinRun is scrape worker --nats: find the run, then work for it until it
// ends or we are stopped. Being stopped (SIGTERM) is how such a worker is
// meant to end, so it is not an error.
func joinRun(ctx context.Context, o *workerOptions) error {
	log := newLogger(o.stderr, o.verbose+1) // a worker on its own says what it does
	auth, err := o.auth.Load()
	if err != nil {
		return err
	}
	natsPassword(&auth, os.Getenv)
	find := o.find
	find.Auth, find.Logger = auth, log
	id, err := worker.FindRun(ctx, find)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	cfg := o.cfg
	cfg.Version, cfg.Servers, cfg.Auth, cfg.Run = queue.ProtocolVersion, find.Servers, auth, id
	cfg.Joined, cfg.Logger = true, log
	w, err := worker.New(cfg)
	if err != nil {
		return err
	}
	if err := w.Run(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	log.Info("left the run", "run", id)
	return nil
}

// watchStdin reads the rest of a started worker's stdin and returns a channel
// closed at its end: the coordinator, or the ssh session to it, is gone. The
// read lasts as long as the process, which exits once its worker's Run
// returns; a read of a pipe cannot be interrupted on every platform, so it
// is the process's, not the worker's.
func watchStdin(r io.Reader) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		_, _ = io.Copy(io.Discard, r)
	}()
	return gone
}
