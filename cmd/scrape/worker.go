package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/worker"
)

type workerOptions struct {
	Grace time.Duration

	// Joining a run by hand, instead of reading a bootstrap from stdin.
	NATS    natsFlags
	Slots   int
	Name    string
	Run     string
	Wait    time.Duration
	Verbose int

	Stdin  io.Reader
	Stderr io.Writer
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
uses. Without --run it joins the one active run there, waiting for one to start
(up to --wait) and refusing to guess between several. It leaves when the run
ends or on SIGTERM, handing back what it has not finished; a run started by
scrape run goes on with its other workers.`,
		Example: `  scrape worker --nats nats://coordinator:4222 --nkey run/worker.nk --slots 8
  scrape worker --nats tls://nats1:4222,tls://nats2:4222 --creds scrape.creds --tls-ca ca.pem --name rack2`,
		Args: cobraArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.NATS.URLs == "" {
				for _, name := range []string{"slots", "name", "run", "wait", "creds", "nkey", "nats-user", "nats-password-file", "nats-token-file", "tls-ca"} {
					if cmd.Flags().Changed(name) {
						return &usageError{errors.New("--" + name + " is for a worker that joins a run with --nats")}
					}
				}
			}
			if o.Slots < 0 {
				return &usageError{errors.New("--slots cannot be negative")}
			}
			o.Stdin, o.Stderr = cmd.InOrStdin(), cmd.ErrOrStderr()
			return runFn(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	o.NATS.bind(f, "join a run on this NATS (`urls`, comma-separated) instead of reading a bootstrap from stdin")
	f.IntVar(&o.Slots, "slots", 0, "pages fetched at a time (default: one per CPU)")
	f.StringVar(&o.Name, "name", "", "`node` name in the run's records and summary (default: this host's name)")
	f.StringVar(&o.Run, "run", "", "`ID` of the run to join (default: the one active run)")
	f.DurationVar(&o.Wait, "wait", 0, "give up after waiting this long for a run (default: wait until stopped)")
	f.DurationVar(&o.Grace, "grace", worker.DefaultGrace, "exit after being cut off from the coordinator this long")
	f.CountVarP(&o.Verbose, "verbose", "v", "with --nats: log every page")
	return cmd
}

func runWorker(ctx context.Context, o *workerOptions) error {
	setGOGC(workerGOGC)
	setMemLimit(workerMemLimit)
	if o.NATS.URLs != "" {
		return joinRun(ctx, o)
	}
	in := bufio.NewReader(o.Stdin)
	boot, err := queue.ReadBootstrap(in)
	if err != nil {
		return err
	}
	var level slog.Level
	if level.UnmarshalText([]byte(boot.LogLevel)) != nil {
		level = slog.LevelWarn
	}
	w, err := worker.New(worker.Config{
		Bootstrap: boot,
		Lifeline:  watchStdin(in),
		Grace:     o.Grace,
		Logger:    slog.New(slog.NewTextHandler(o.Stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// joinRun is scrape worker --nats: find the run, then work for it until it
// ends or we are stopped. Being stopped (SIGTERM) is how such a worker is
// meant to end, so it is not an error.
func joinRun(ctx context.Context, o *workerOptions) error {
	log := newLogger(o.Stderr, o.Verbose+1) // a worker on its own says what it does
	auth, err := o.NATS.Load()
	if err != nil {
		return err
	}
	servers := o.NATS.servers()
	id, err := worker.FindRun(ctx, worker.Find{Servers: servers, Auth: auth, Run: o.Run, Wait: o.Wait, Logger: log})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	w, err := worker.New(worker.Config{
		Bootstrap: queue.Bootstrap{
			Version: queue.ProtocolVersion,
			Servers: servers,
			Auth:    auth,
			Run:     id,
			Node:    o.Name,
			Slots:   o.Slots,
		},
		Grace:  o.Grace,
		Joined: true,
		Logger: log,
	})
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
