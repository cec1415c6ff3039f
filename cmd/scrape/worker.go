package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/scrape-cluster/scrape/worker"
)

type workerOptions struct {
	Grace  time.Duration
	Stdin  io.Reader
	Stderr io.Writer
}

func newWorkerCmd(runFn func(context.Context, *workerOptions) error) *cobra.Command {
	o := &workerOptions{}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a worker for a scrape (started on each node by scrape run)",
		Long: `Run one node's worker. scrape run starts it on every node, over ssh or
locally, and writes the run's address and credentials as one line to its
standard input. The worker exits when that input closes (the coordinator or
its ssh session is gone), when the coordinator says stop, or when it has been
disconnected from the queue for longer than --grace.`,
		Args: cobraArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Stdin, o.Stderr = cmd.InOrStdin(), cmd.ErrOrStderr()
			return runFn(cmd.Context(), o)
		},
	}
	cmd.Flags().DurationVar(&o.Grace, "grace", worker.DefaultGrace, "exit after being cut off from the coordinator this long")
	return cmd
}

func runWorker(ctx context.Context, o *workerOptions) error {
	setGOGC(workerGOGC)
	in := bufio.NewReader(o.Stdin)
	boot, err := worker.ReadBootstrap(in)
	if err != nil {
		return err
	}
	var level slog.Level
	if level.UnmarshalText([]byte(boot.LogLevel)) != nil {
		level = slog.LevelWarn
	}
	w, err := worker.New(worker.Config{
		Bootstrap: boot,
		Lifeline:  in,
		Grace:     o.Grace,
		Logger:    slog.New(slog.NewTextHandler(o.Stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		return err
	}
	return w.Run(ctx)
}
