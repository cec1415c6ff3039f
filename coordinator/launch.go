package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scrape-cluster/scrape/machinefile"
	"github.com/scrape-cluster/scrape/queue"
)

// node is one machinefile host and the worker process the run started there.
type node struct {
	host       machinefile.Host
	name       string // what records call the node; unique within a run
	local      bool
	remoteBin  string    // the scrape binary on the node
	launchedAt time.Time // when its launch began

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	tail   *lineRelay
	exited chan struct{} // closed once cmd has been waited for
	err    error         // why the process ended; read after exited

	worker  string        // the worker's ID, from its hello
	gone    chan struct{} // closed when the worker says bye
	byeOnce sync.Once
	stopBy  time.Time // set by stop: when reap kills what is left
}

// argv is the command that starts this node's worker. The run's secret is
// never part of it: it goes to the process's stdin.
func (n *node) argv(cfg *Config) []string {
	if n.local {
		return []string{cfg.LocalBin, "worker"}
	}
	return n.sshArgv(cfg, remoteCommand(n.remoteBin))
}

// sshArgv runs command on the node through the system ssh client.
func (n *node) sshArgv(cfg *Config, command string) []string {
	args := append([]string{}, cfg.SSH...)
	args = append(args,
		"-T", // no terminal: stdin must be a clean pipe for the bootstrap
		"-o", "BatchMode=yes",
		"-o", "ConnectTimeout="+strconv.Itoa(int(cfg.ConnectTimeout.Seconds())),
		// Keepalives make a vanished node visible as an ssh exit within
		// about 15 s instead of a TCP timeout of minutes.
		"-o", "ServerAliveInterval=5",
		"-o", "ServerAliveCountMax=3",
	)
	if n.host.Port != 0 {
		args = append(args, "-p", strconv.Itoa(n.host.Port))
	}
	return append(args, n.host.Destination(), command)
}

// remoteCommand is the command line the node's shell runs. It stays free of
// quoting where it can, because the node's shell may be sh, PowerShell or
// cmd.exe, each of which quotes differently.
func remoteCommand(bin string) string {
	safe := func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("/._-:\\+=,", r)
	}
	if strings.IndexFunc(bin, func(r rune) bool { return !safe(r) }) < 0 {
		return bin + " worker"
	}
	return "'" + strings.ReplaceAll(bin, "'", `'\''`) + "' worker"
}

// spawn starts the worker process. It reads nothing until hand gives it
// its bootstrap.
func (n *node) spawn(cfg *Config, relay *syncWriter) error {
	argv := n.argv(cfg)
	n.cmd = exec.Command(argv[0], argv[1:]...)
	setProcessGroup(n.cmd)
	n.tail = &lineRelay{prefix: "[" + n.name + "] ", dst: relay}
	n.cmd.Stdout = n.tail
	n.cmd.Stderr = n.tail
	// A worker's grandchildren could hold our pipes open; do not let that
	// hold up the run's end.
	n.cmd.WaitDelay = 2 * time.Second
	stdin, err := n.cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("launch worker on %s: %w", n.name, err)
	}
	n.stdin = stdin
	if err := n.cmd.Start(); err != nil {
		return fmt.Errorf("launch worker on %s: %w", n.name, err)
	}
	n.exited = make(chan struct{})
	go func() {
		n.err = n.cmd.Wait()
		n.tail.flush()
		close(n.exited)
	}()
	return nil
}

// hand writes the bootstrap to the started worker. It does not wait for the
// worker to be ready; see awaitReady.
func (n *node) hand(boot queue.Bootstrap) error {
	line, _ := json.Marshal(boot)
	if _, err := n.stdin.Write(append(line, '\n')); err != nil {
		// Most often ssh gave up before reading anything: its own reason
		// says more than the broken pipe.
		select {
		case <-n.exited:
		case <-time.After(stopGrace):
			n.kill()
			<-n.exited
		}
		return fmt.Errorf("%s: %s", n.name, n.exitReason())
	}
	return nil
}

// awaitReady waits for the worker's hello, or for it to die trying.
func (n *node) awaitReady(ctx context.Context, ready <-chan queue.Hello, timeout time.Duration) (queue.Hello, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case h := <-ready:
		return h, nil
	case <-n.exited:
		return queue.Hello{}, fmt.Errorf("%s: %s", n.name, n.exitReason())
	case <-t.C:
		n.kill()
		return queue.Hello{}, fmt.Errorf("%s: worker not ready after %s (%s)", n.name, timeout, n.tail.last())
	case <-ctx.Done():
		n.kill()
		return queue.Hello{}, ctx.Err()
	}
}

// exitReason explains an ended process in the words of the program that
// failed: for a node that could not be reached, that is ssh's own message.
func (n *node) exitReason() string {
	msg := n.tail.last()
	var ee *exec.ExitError
	switch {
	case errors.As(n.err, &ee) && !n.local && ee.ExitCode() == 255:
		if msg == "" {
			// ssh says nothing when the remote worker was killed by a
			// signal, or, below LogLevel INFO, when the node stopped
			// answering its keepalives.
			msg = "exit status 255 and no message: the worker was killed or the connection lost"
		}
		return "ssh failed: " + msg
	case errors.As(n.err, &ee) && !n.local && ee.ExitCode() == 127:
		return fmt.Sprintf("worker binary not found on the node (--remote-bin): %s", msg)
	case n.err != nil && msg != "":
		return fmt.Sprintf("%v: %s", n.err, msg)
	case n.err != nil:
		return n.err.Error()
	case msg != "":
		return "exited: " + msg
	}
	return "exited"
}

// stop closes the worker's stdin, which is its signal to hand back what it
// holds and exit, and waits until it has said bye, has exited, or grace has
// passed. A worker that said bye holds nothing and has left the queue; its
// process ending is reap's business, so the run can close its output and
// queue meanwhile.
func (n *node) stop(grace time.Duration) {
	if n.exited == nil {
		return
	}
	n.stopBy = time.Now().Add(grace)
	_ = n.stdin.Close()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-n.exited:
	case <-n.gone:
	case <-t.C:
	}
}

// reap waits for the stopped worker's process to end, and kills it if it
// is still there when the grace stop gave it has passed. Over SSH, killing
// the client closes the session, which the remote worker also reads as the
// end.
func (n *node) reap() {
	if n.exited == nil {
		return
	}
	t := time.NewTimer(time.Until(n.stopBy))
	defer t.Stop()
	select {
	case <-n.exited:
		return
	case <-t.C:
	}
	n.kill()
	<-n.exited
}

// bye records the worker's goodbye.
func (n *node) bye() { n.byeOnce.Do(func() { close(n.gone) }) }

func (n *node) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		killProcessGroup(n.cmd)
	}
}

func (n *node) running() bool {
	select {
	case <-n.exited:
		return false
	default:
		return n.exited != nil
	}
}

// syncWriter serialises whole lines from many workers onto one stream.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) writeLine(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.w.Write(b)
}

// lineRelay prefixes each line a worker prints with its node, and keeps the
// last lines for error messages.
type lineRelay struct {
	prefix string
	dst    *syncWriter

	mu      sync.Mutex
	partial []byte
	recent  []string
}

const keepLines = 3

func (r *lineRelay) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.partial = append(r.partial, p...)
	for {
		i := bytes.IndexByte(r.partial, '\n')
		if i < 0 {
			break
		}
		r.emit(r.partial[:i])
		r.partial = r.partial[i+1:]
	}
	// A line that never ends must not grow without bound.
	if len(r.partial) > 64<<10 {
		r.emit(r.partial)
		r.partial = nil
	}
	return len(p), nil
}

func (r *lineRelay) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(line) == 0 {
		return
	}
	out := make([]byte, 0, len(r.prefix)+len(line)+1)
	out = append(append(append(out, r.prefix...), line...), '\n')
	r.dst.writeLine(out)
	r.recent = append(r.recent, string(line))
	if len(r.recent) > keepLines {
		r.recent = r.recent[1:]
	}
}

func (r *lineRelay) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.partial) > 0 {
		r.emit(r.partial)
		r.partial = nil
	}
}

func (r *lineRelay) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.recent, "; ")
}
