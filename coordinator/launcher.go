package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"time"

	"github.com/scrape-cluster/scrape/machinefile"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/remote"
)

// Node is one machinefile host as the run knows it.
type Node struct {
	Host  machinefile.Host
	Name  string // what records call the node; unique within a run
	Local bool   // this machine: its worker is a child process, not SSH
}

// Launcher starts the worker of one node. The run's launcher starts `scrape
// worker` processes, over the system ssh client or as children of this one;
// tests start workers in-process, where the race detector sees them.
type Launcher interface {
	// Start starts n's worker, which then waits for its bootstrap. It
	// returns once the worker is started, not once it is ready.
	Start(ctx context.Context, n Node) (Process, error)
}

// Process is one started worker.
type Process interface {
	// Hand gives the worker its bootstrap, with which it connects to the
	// run's queue. It does not wait for the worker to be ready.
	Hand(boot queue.Bootstrap) error
	// Stop is the worker's signal to hand back what it holds and exit.
	Stop()
	// Kill ends the worker at once.
	Kill()
	// Exited is closed once the worker has ended.
	Exited() <-chan struct{}
	// Reason explains an ended worker in the words of what failed (for a
	// node that could not be reached, ssh's own message); while it runs,
	// the last lines it printed.
	Reason() string
}

// processLauncher starts `scrape worker` processes: over ssh, after pushing
// the binary where asked, or as a child for this machine.
type processLauncher struct {
	cfg    *Config
	stderr io.Writer // worker output, prefixed with its node
	log    *slog.Logger
	builds *remote.BuildSet // what --push sends
}

func (l *processLauncher) Start(ctx context.Context, n Node) (Process, error) {
	argv := n.argv(l.cfg, l.cfg.RemoteBin)
	if l.cfg.Push && !n.Local {
		bin, sh, err := l.push(ctx, n)
		if err != nil {
			return nil, err
		}
		line, err := sh.Exec(bin, "worker")
		if err != nil {
			return nil, fmt.Errorf("launch worker on %s: %w", n.Name, err)
		}
		argv = n.sshArgv(l.cfg, line)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := spawn(n, argv, l.stderr)
	if err != nil {
		return nil, err // not a Process holding a nil *process
	}
	return p, nil
}

// argv is the command that starts this node's worker. The run's secret is
// never part of it: it goes to the process's stdin.
func (n Node) argv(cfg *Config, remoteBin string) []string {
	if n.Local {
		return []string{cfg.LocalBin, "worker"}
	}
	return n.sshArgv(cfg, remoteCommand(remoteBin))
}

// sshArgv runs command on the node through the system ssh client.
func (n Node) sshArgv(cfg *Config, command string) []string {
	return n.target(cfg).Argv(command)
}

// remoteCommand is the command line the node's shell runs. It stays free of
// quoting where it can, because the node's shell may be sh, PowerShell or
// cmd.exe, each of which quotes differently; where it cannot, it quotes for
// sh (a node known to be Windows is pushed to, and gets its own quoting).
func remoteCommand(bin string) string {
	return remote.ShQuote(bin) + " worker"
}

// process is a worker started as an OS process: `scrape worker` here, or the
// ssh client that runs it on its node. Its stdin is the worker's lifeline.
type process struct {
	name   string
	dest   string // user@host or host, as ssh is given it
	local  bool
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	tail   *lineRelay
	exited chan struct{} // closed once cmd has been waited for
	err    error         // why the process ended; read after exited
}

// spawn starts the worker process. It reads nothing until Hand gives it
// its bootstrap.
func spawn(n Node, argv []string, stderr io.Writer) (*process, error) {
	p := &process{name: n.Name, dest: n.Host.Destination(), local: n.Local, exited: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	setProcessGroup(p.cmd)
	p.tail = &lineRelay{prefix: "[" + n.Name + "] ", dst: stderr}
	p.cmd.Stdout = p.tail
	p.cmd.Stderr = p.tail
	// A worker's grandchildren could hold our pipes open; do not let that
	// hold up the run's end.
	p.cmd.WaitDelay = 2 * time.Second
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("launch worker on %s: %w", n.Name, err)
	}
	p.stdin = stdin
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("launch worker on %s: %w", n.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		p.tail.flush()
		close(p.exited)
	}()
	return p, nil
}

func (p *process) Hand(boot queue.Bootstrap) error {
	line, _ := json.Marshal(boot)
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		// Most often ssh gave up before reading anything: its own reason
		// says more than the broken pipe.
		select {
		case <-p.exited:
		case <-time.After(stopGrace):
			p.Kill()
			<-p.exited
		}
		return fmt.Errorf("%s: %s", p.name, p.Reason())
	}
	return nil
}

// Stop closes the worker's stdin, which it reads as the end of the run.
func (p *process) Stop() { _ = p.stdin.Close() }

// Kill ends the process group. Over SSH, killing the client closes the
// session, which the remote worker also reads as the end.
func (p *process) Kill() { killProcessGroup(p.cmd) }

func (p *process) Exited() <-chan struct{} { return p.exited }

func (p *process) Reason() string {
	select {
	case <-p.exited:
	default:
		return p.tail.last()
	}
	msg := p.tail.last()
	var ee *exec.ExitError
	switch {
	case errors.As(p.err, &ee) && !p.local && ee.ExitCode() == 255:
		// The same words and fixes as scrape check's.
		return (&remote.SSHError{Problem: remote.Classify(msg).For(p.dest)}).Error()
	case errors.As(p.err, &ee) && !p.local && ee.ExitCode() == 127:
		return fmt.Sprintf("worker binary not found on the node: %s", msg)
	case p.err != nil && msg != "":
		return fmt.Sprintf("%v: %s", p.err, msg)
	case p.err != nil:
		return p.err.Error()
	case msg != "":
		return "exited: " + msg
	}
	return "exited"
}
