package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Target is one node as ssh reaches it.
type Target struct {
	// SSH is the ssh command and its own options (default "ssh").
	SSH []string
	// Dest is user@host or host, as ssh takes it.
	Dest string
	// Port is the ssh port; 0 leaves it to ssh and its config.
	Port int
	// ConnectTimeout bounds ssh's connect; 0 leaves it to ssh.
	ConnectTimeout time.Duration
}

// Argv is the ssh command line that runs command on the node: BatchMode,
// so that a missing key fails instead of asking for a password nobody
// types, and no terminal, so that stdin is a clean pipe.
func (t Target) Argv(command string) []string {
	ssh := t.SSH
	if len(ssh) == 0 {
		ssh = []string{"ssh"}
	}
	args := append([]string{}, ssh...)
	args = append(args, "-T", "-o", "BatchMode=yes")
	if t.ConnectTimeout > 0 {
		args = append(args, "-o", "ConnectTimeout="+strconv.Itoa(max(1, int(t.ConnectTimeout.Seconds()))))
	}
	// Keepalives make a vanished node visible as an ssh exit within
	// about 15 s instead of a TCP timeout of minutes.
	args = append(args, "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3")
	if t.Port != 0 {
		args = append(args, "-p", strconv.Itoa(t.Port))
	}
	return append(args, t.Dest, command)
}

// sshFailed is the exit status of the ssh client when ssh itself failed
// (not the remote command).
const sshFailed = 255

// SSHError is ssh failing to run a command on the node: a login, a host
// key, a connection.
type SSHError struct {
	Problem Problem
}

func (e *SSHError) Error() string { return "ssh failed: " + e.Problem.String() }

// CommandError is a command that ssh ran on the node and that failed.
type CommandError struct {
	Exit   int
	Stderr string // its last lines
}

func (e *CommandError) Error() string {
	if e.Stderr == "" {
		return "exit status " + strconv.Itoa(e.Exit)
	}
	return fmt.Sprintf("exit status %d: %s", e.Exit, e.Stderr)
}

// Run runs command on the node, feeding it stdin (nil: none), and returns
// what it printed on stdout.
func (t Target) Run(ctx context.Context, command string, stdin io.Reader) (string, error) {
	var stdout bytes.Buffer
	err := t.RunTo(ctx, command, stdin, &stdout)
	return stdout.String(), err
}

// RunTo is Run writing the command's stdout to stdout as it arrives.
func (t Target) RunTo(ctx context.Context, command string, stdin io.Reader, stdout io.Writer) error {
	argv := t.Argv(command)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	// A remote process that keeps our pipes open must not hold us past
	// the context.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("no answer from %s: %w", t.Dest, ctx.Err())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("run %s: %w", argv[0], err)
	}
	if ee.ExitCode() == sshFailed {
		return &SSHError{Problem: Classify(stderr.String()).For(t.Dest)}
	}
	return &CommandError{Exit: ee.ExitCode(), Stderr: lastLines(stderr.String(), 3)}
}

// lastLines is the last n non-blank lines of s, joined by "; ".
func lastLines(s string, n int) string {
	var lines []string
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], "; ")
}
