// Command scrape runs a web scrape across a cluster named in a machinefile.
// The same binary is the coordinator (scrape run) and the worker started on
// every node (scrape worker).
package main

import (
	"context"
	"errors"
	"fmt"
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

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(defaultRunners())
	command := "scrape"
	if len(os.Args) > 1 {
		command = filepath.Base(os.Args[1])
	}
	stopProfile := startProfile(command)
	err := root.ExecuteContext(ctx)
	stopProfile()
	switch {
	case err == nil:
		return exitOK
	case ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "scrape: interrupted")
		return exitInterrupted
	case errors.As(err, new(*usageError)):
		fmt.Fprintf(os.Stderr, "scrape: %v\nRun 'scrape --help' for usage.\n", err)
		return exitUsage
	default:
		fmt.Fprintf(os.Stderr, "scrape: %v\n", err)
		return exitFailed
	}
}

// usageError is a mistake in how scrape was called, as opposed to a run
// that failed.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }
