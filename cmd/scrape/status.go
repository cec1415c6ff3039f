package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/scrape-cluster/scrape/coordinator"
)

type statusOptions struct {
	State  string
	JSON   bool
	Stdout io.Writer
}

func newStatusCmd(runFn func(context.Context, *statusOptions) error) *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status [--state DIR]",
		Short: "Show the live figures of a run, from another terminal",
		Long: `Show how a run is doing: records done of those known, errors, pages per
second, ETA and pages per node. It reads the status the run keeps in its state
directory (updated every second); without --state it picks the most recently
updated run under .scrape/ in the current directory.`,
		Args: cobraArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Stdout = cmd.OutOrStdout()
			return runFn(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.State, "state", "", "the run's state `dir` (as given to scrape run --state)")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the status as JSON")
	return cmd
}

func runStatus(_ context.Context, o *statusOptions) error {
	st, dir, err := coordinator.ReadStatus(o.State)
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(o.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(o.Stdout, "run %s in %s: %s\n%s\n", st.Run, dir, runState(st, dir, time.Now()), st.Line())
	return nil
}

// runState says in words where the run of st stands.
func runState(st *coordinator.Status, dir string, now time.Time) string {
	resume := st.Resume
	if resume == "" {
		resume = "scrape run --resume " + dir
	}
	switch {
	case st.Running && now.Sub(st.Updated) > 10*time.Second:
		return fmt.Sprintf("not updated for %s: the coordinator (pid %d) may be gone (if so, resume with: %s)", now.Sub(st.Updated).Round(time.Second), st.PID, resume)
	case st.Running:
		return "running"
	case st.Outcome == coordinator.OutcomeInterrupted, st.Outcome == coordinator.OutcomeFailed:
		if st.Resume == "" {
			return st.Outcome + " (it wrote to stdout: it cannot be resumed)"
		}
		return fmt.Sprintf("%s (resume with: %s)", st.Outcome, st.Resume)
	}
	return "finished"
}
