package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/scrape-cluster/scrape/scrape"
)

// runners are what the commands call once their flags are bound; tests
// replace them to check flag parsing without running anything.
type runners struct {
	run    func(context.Context, *runOptions) error
	worker func(context.Context, *workerOptions) error
	status func(context.Context, *statusOptions) error
	check  func(context.Context, *checkCmdOptions) error
}

func defaultRunners() runners {
	return runners{run: runScrape, worker: runWorker, status: runStatus, check: runCheck}
}

func newRootCmd(r runners) *cobra.Command {
	root := &cobra.Command{
		Use:   "scrape",
		Short: "Scrape a list of URLs across a cluster of machines",
		Long: `scrape spreads a web scrape over the machines named in an MPI-style
machinefile. It starts a worker on each machine over ssh (or locally), hands
out URLs from a JetStream work queue as workers become free, and merges every
result into one output file: each input line exactly once.`,
		Version:       scrape.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(newRunCmd(r.run), newWorkerCmd(r.worker), newStatusCmd(r.status), newVersionCmd(),
		newCheckCmd(r.check), newReachCmd())
	return root
}

// newVersionCmd prints what scrape --version prints.
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of scrape",
		Args:  cobraArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s version %s\n", cmd.Root().Name(), scrape.Version)
			return err
		},
	}
}

// newLogger logs to w at the level -v asks for: warnings by default, -v
// progress, -vv everything.
func newLogger(w io.Writer, verbose int) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: levelFor(verbose)}))
}

func levelFor(verbose int) slog.Level {
	switch {
	case verbose >= 2:
		return slog.LevelDebug
	case verbose == 1:
		return slog.LevelInfo
	}
	return slog.LevelWarn
}

func cobraArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) > 0 && n == 0:
			return &usageError{fmt.Errorf("%s takes no arguments, got %q", cmd.Name(), args)}
		case len(args) > n:
			return &usageError{fmt.Errorf("%s takes at most %d argument(s), got %d", cmd.Name(), n, len(args))}
		}
		return nil
	}
}
