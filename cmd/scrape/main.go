// Command scrape runs a web scrape across a cluster named in a machinefile.
// The same binary is the coordinator (scrape run) and the worker started on
// every node (scrape worker).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

// Exit codes, as a shell script sees them.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInterrupted = 130
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// run is the program as main runs it, given its arguments (without the
// program's name) and streams, so that tests can run it in-process. It
// returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(defaultRunners())
	// cobra reads os.Args for nil arguments.
	root.SetArgs(append([]string{}, args...))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	command := "scrape"
	if len(args) > 0 {
		command = filepath.Base(args[0])
	}
	stopProfile := startProfile(command, stderr)
	cmd, err := root.ExecuteContextC(ctx)
	stopProfile()
	err = hint(err)
	switch {
	case err == nil:
		return exitOK
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "scrape: interrupted")
		return exitInterrupted
	// The root command runs nothing itself: what it fails is finding the
	// command asked for.
	case errors.As(err, new(*usageError)) || cmd == root:
		fmt.Fprintf(stderr, "scrape: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return exitUsage
	case errors.Is(err, errNotReady):
		// The report said why, and its last line how many nodes are ready.
		return exitFailed
	default:
		fmt.Fprintf(stderr, "scrape: %v\n", err)
		return exitFailed
	}
}

// usageError is a mistake in how scrape was called, as opposed to a run
// that failed.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }
