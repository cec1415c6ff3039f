package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/scrape"
)

// TestExitCodes runs the program in-process, as main does, with the real
// commands: README's exit codes, and a usage error's hint naming the help of
// the command that was misused. None of these gets as far as a run.
func TestExitCodes(t *testing.T) {
	version := "scrape version " + scrape.Version + "\n"
	tests := []struct {
		args     []string
		code     int
		stdout   string // the whole of it, when set
		stderr   []string
		noStderr string // must not be in stderr
	}{
		{args: []string{"version"}, code: exitOK, stdout: version},
		{args: []string{"--version"}, code: exitOK, stdout: version},
		{args: []string{"help", "run"}, code: exitOK},
		{args: []string{"run", "--help"}, code: exitOK},
		{args: []string{"frobnicate"}, code: exitUsage, stderr: []string{`unknown command "frobnicate" for "scrape"`, "Run 'scrape --help' for usage."}},
		{args: []string{"rnu"}, code: exitUsage, stderr: []string{"Did you mean this?", "run"}},
		{args: []string{"--bogus"}, code: exitUsage, stderr: []string{"unknown flag: --bogus", "Run 'scrape --help' for usage."}},
		{args: []string{"version", "now"}, code: exitUsage, stderr: []string{"Run 'scrape version --help' for usage."}},
		{args: []string{"run", "--bogus", "/nonexistent/urls.txt"}, code: exitUsage,
			stderr: []string{"unknown flag: --bogus", "Run 'scrape run --help' for usage."}, noStderr: "open urls"},
		{args: []string{"run", "a.txt", "b.txt"}, code: exitUsage, stderr: []string{"at most 1 argument", "Run 'scrape run --help' for usage."}},
		{args: []string{"run", "--format", "xml", "/nonexistent/urls.txt"}, code: exitUsage,
			stderr: []string{`unknown format "xml"`, "Run 'scrape run --help' for usage."}, noStderr: "open urls"},
		{args: []string{"run", "-f", "/nonexistent/mf", "--per-host", "0", "/nonexistent/urls.txt"}, code: exitUsage,
			stderr: []string{"--per-host must be 1 or more"}, noStderr: "nonexistent"},
		{args: []string{"run", "--tls", "--nats", "nats://127.0.0.1:1", "--nkey", "/nonexistent/u.nk"}, code: exitUsage,
			stderr: []string{"--tls and --no-tls are for the embedded queue"}, noStderr: "nonexistent"},
		{args: []string{"run", "--listen", "localhost:http", "/nonexistent/urls.txt"}, code: exitUsage, stderr: []string{"invalid port"}},
		{args: []string{"run", "--resume", "/nonexistent/state", "--timeout", "1s"}, code: exitUsage,
			stderr: []string{"drop --timeout"}, noStderr: "no run to resume"},
		{args: []string{"worker", "--slots", "4"}, code: exitUsage, stderr: []string{"Run 'scrape worker --help' for usage."}},
		{args: []string{"worker", "--nats", "nats://127.0.0.1:1", "--wait", "-1s", "--creds", "/nonexistent/u.creds"}, code: exitUsage,
			stderr: []string{"--wait cannot be negative"}, noStderr: "nonexistent"},
		{args: []string{"status", "st"}, code: exitUsage, stderr: []string{"Run 'scrape status --help' for usage."}},
		{args: []string{"status", "--state", "/nonexistent/state"}, code: exitFailed, stderr: []string{"/nonexistent/state"}, noStderr: "--help"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(tt.args, strings.NewReader(""), &stdout, &stderr)
		if code != tt.code {
			t.Errorf("%q: exit %d, want %d\n%s", tt.args, code, tt.code, stderr.String())
			continue
		}
		if tt.stdout != "" && stdout.String() != tt.stdout {
			t.Errorf("%q: stdout %q, want %q", tt.args, stdout.String(), tt.stdout)
		}
		for _, want := range tt.stderr {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("%q: stderr lacks %q:\n%s", tt.args, want, stderr.String())
			}
		}
		if tt.noStderr != "" && strings.Contains(stderr.String(), tt.noStderr) {
			t.Errorf("%q: stderr has %q:\n%s", tt.args, tt.noStderr, stderr.String())
		}
	}
}

// The binary exits with what run returns.
func TestBinaryExitCode(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := scrapeCmd(t, ctx, "frobnicate").CombinedOutput()
	if code := exitCode(err); code != exitUsage || !strings.Contains(string(out), "Run 'scrape --help' for usage.") {
		t.Errorf("scrape frobnicate: exit %d, want %d\n%s", code, exitUsage, out)
	}
}

// A machinefile may list no host when workers are to join (--wait-workers),
// so whether a run on an existing NATS starts workers, which then need a
// login of their own, is known once it is read: a machinefile with a host
// is still a usage error, before any connection; one with none is not.
func TestRunNATSWorkersNeedLoginOnceMachinefileRead(t *testing.T) {
	_, seed := nkeyUser(t)
	key := writeFile(t, "c.nk", seed+"\n")
	closed := "nats://" + testsite.ClosedPort(t)
	for _, tt := range []struct {
		machinefile string
		code        int
		stderr      string
	}{
		{"node1\n", exitUsage, "the workers the run starts need credentials of their own"},
		{"# workers join\n", exitFailed, "connect to NATS " + closed},
	} {
		var stdout, stderr bytes.Buffer
		args := []string{"run", "-q", "-f", writeFile(t, "mf", tt.machinefile), "--wait-workers", "1s",
			"--nats", closed, "--nkey", key, "--state", filepath.Join(t.TempDir(), "st"), writeFile(t, "urls.txt", "http://127.0.0.1:1/\n")}
		code := run(args, strings.NewReader(""), &stdout, &stderr)
		if code != tt.code || !strings.Contains(stderr.String(), tt.stderr) {
			t.Errorf("machinefile %q: exit %d, want %d saying %q:\n%s", tt.machinefile, code, tt.code, tt.stderr, stderr.String())
		}
	}
}
