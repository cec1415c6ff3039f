package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/scrape-cluster/scrape/check"
	"github.com/scrape-cluster/scrape/coordinator"
	"github.com/scrape-cluster/scrape/machinefile"
	"github.com/scrape-cluster/scrape/scrape"
)

// checkCmdOptions are scrape check's flags.
type checkCmdOptions struct {
	cfg         check.Config
	machinefile string
	json        bool

	stdout io.Writer
}

// errNotReady is a check that found a node not ready; the report has said
// why, so the exit status is all that is left to say.
var errNotReady = errors.New("not every node is ready")

func newCheckCmd(runFn func(context.Context, *checkCmdOptions) error) *cobra.Command {
	o := &checkCmdOptions{}
	cmd := &cobra.Command{
		Use:   "check -f MACHINEFILE",
		Short: "Check every node of a machinefile before a run: login, binary, the way back, clock",
		Long: `Check every node of MACHINEFILE, in parallel, the way scrape run would use it:

  login     ssh in BatchMode: ok, or ssh's reason and the likely fix
            (no key or key refused, unknown or changed host key, wrong user
            or port, host unreachable or refusing)
  platform  the node's OS, CPU, CPU count and memory
  scrape    the binary at --remote-bin: present, runnable, the same version
            and build as this one; or with --push, the build it would get
  way back  the node connects to this machine at the address and port the
            run's queue would use (--listen, --advertise)
  clock     how far the node's clock is off
  url       with --url, whether the node resolves and fetches it
  memory    a warning where slots × --max-body exceed the node's memory

It prints a table and what to fix, and exits 0 only when every node is
ready; the last line says how many are. scrape run --check runs the same
checks before a run.`,
		Example: `  scrape check -f machinefile
  scrape check -f machinefile --push --push-dir dist --listen :4222
  scrape check -f machinefile --remote-bin /opt/scrape/scrape --url https://example.com/ --json`,
		Args: cobraArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.complete(cmd.Flags()); err != nil {
				return &usageError{err}
			}
			o.stdout = cmd.OutOrStdout()
			return runFn(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	c := &o.cfg
	f.StringVarP(&o.machinefile, "machinefile", "f", "", "`file` of nodes to check (required)")
	c.SSH = []string{"ssh"}
	f.Var(fields(&c.SSH), "ssh", "ssh `command` used to reach nodes, with its own options")
	f.DurationVar(&c.ConnectTimeout, "connect-timeout", coordinator.DefaultConnectTimeout, "ssh connect timeout per node")
	f.DurationVar(&c.Timeout, "timeout", check.DefaultTimeout, "give up on a node after this long, all its checks together")
	bindBinaryFlags(f, &c.RemoteBin, &c.Push, &c.PushDir)
	f.StringVar(&c.Listen, "listen", "", "`host:port` the run's queue would listen on: the nodes connect back to it (default: all interfaces, a free port)")
	f.StringVar(&c.Advertise, "advertise", "", "`address` the run's workers would dial (default: ours on the route to each node)")
	f.StringVar(&c.URL, "url", "", "have every node fetch this `URL`")
	c.MaxBody = scrape.DefaultMaxBody
	f.Var((*byteSize)(&c.MaxBody), "max-body", "the run's --max-body, for the memory check")
	f.BoolVar(&o.json, "json", false, "print the report as JSON")
	return cmd
}

// bindBinaryFlags binds the flags that say which binary the nodes run, the
// same for scrape run and scrape check.
func bindBinaryFlags(f *pflag.FlagSet, remoteBin *string, push *bool, pushDir *string) {
	f.StringVar(remoteBin, "remote-bin", "", "`path` of scrape on the nodes (default: this binary's path, as on a shared file system)")
	f.BoolVar(push, "push", false, "copy each node the build for its OS and CPU (this binary, or scrape-<os>-<cpu>[.exe] from --push-dir) unless it has an identical copy")
	f.StringVar(pushDir, "push-dir", "", "`dir` of the per-platform builds --push sends (scripts/build-all DIR makes them; default: this binary's directory)")
}

func (o *checkCmdOptions) complete(f *pflag.FlagSet) error {
	if err := checkNotNegative(f); err != nil {
		return err
	}
	if o.machinefile == "" {
		return errors.New("give the nodes to check with -f MACHINEFILE")
	}
	if o.cfg.Push && f.Changed("remote-bin") {
		return errors.New("--push and --remote-bin contradict each other: a pushed binary runs from the node's cache")
	}
	if f.Changed("push-dir") && !o.cfg.Push {
		return errors.New("--push-dir is for --push")
	}
	if f.Changed("timeout") && o.cfg.Timeout < time.Second {
		return fmt.Errorf("--timeout %s: at least 1s", o.cfg.Timeout)
	}
	return checkListen(o.cfg.Listen)
}

// runCheck is scrape check's work.
func runCheck(ctx context.Context, o *checkCmdOptions) error {
	hosts, err := machinefile.ParseFile(o.machinefile)
	if err != nil {
		return err
	}
	o.cfg.Hosts = hosts
	rep, err := check.Run(ctx, o.cfg)
	if err != nil {
		return err
	}
	if o.json {
		err = rep.WriteJSON(o.stdout)
	} else {
		err = rep.WriteTable(o.stdout)
	}
	if err != nil {
		return err
	}
	if !rep.AllReady() {
		return errNotReady
	}
	return nil
}

// newReachCmd is the hidden command scrape check runs on a node: connect
// back to the check, or fetch a URL, with the node's own network.
func newReachCmd() *cobra.Command {
	var o check.ReachOptions
	cmd := &cobra.Command{
		Use:    "reach --tcp ADDR --token T | --url URL",
		Short:  "Connect to an address or fetch a URL from this machine (run by scrape check on each node)",
		Hidden: true,
		Args:   cobraArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return check.Reach(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.TCP, "tcp", "", "`host:port` to connect to")
	f.StringVar(&o.Token, "token", "", "what to say there")
	f.StringVar(&o.URL, "url", "", "`URL` to fetch")
	f.DurationVar(&o.Timeout, "timeout", 10*time.Second, "give up after this long")
	return cmd
}
