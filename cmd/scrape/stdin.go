package main

import (
	"context"
	"io"
	"os"

	"golang.org/x/term"
)

// isTerminal reports whether r is a terminal: a person typing, not a file
// or a pipe.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// fromPipe reports whether r is a pipe or a socket: how scrape run gives a
// worker it starts its bootstrap, locally or through ssh.
func fromPipe(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) != 0
}

// cancelable returns r as a reader whose Read returns ctx's error once ctx
// is done, even while a read of r is blocked: a terminal waiting for a line,
// or a pipe whose writer stalls. Without it, Ctrl-C would wait for Ctrl-D.
//
// The read of r goes on in a goroutine of its own, which cannot be woken on
// every platform: it ends with r (at its end or error) or with the process,
// which exits soon after a cancelled run. It belongs to the process, as
// stdin does, not to the run.
func cancelable(ctx context.Context, r io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, r)
		pw.CloseWithError(err) // nil: io.EOF for the reader
	}()
	context.AfterFunc(ctx, func() { pw.CloseWithError(context.Cause(ctx)) })
	return pr
}
