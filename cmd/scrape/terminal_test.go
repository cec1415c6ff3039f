//go:build unix

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/scrape-cluster/scrape/internal/testbin"
)

// onTerminal is a command run on a pseudo-terminal of its own, as a person
// runs it: stdin, stdout and stderr are the terminal, which is its session's
// controlling one, so a ^C typed into it is SIGINT.
type onTerminal struct {
	t      *testing.T
	cmd    *exec.Cmd
	master *os.File
	mu     sync.Mutex
	screen bytes.Buffer
	exited chan error
}

func startOnTerminal(t *testing.T, cols uint16, dir string, args ...string) *onTerminal {
	t.Helper()
	cmd := exec.Command(testbin.Path(t), args...)
	cmd.Dir = dir
	// The run's own queue, whatever this environment names.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NATS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	master, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: cols})
	if err != nil {
		t.Fatalf("start on a pseudo-terminal: %v", err)
	}
	ot := &onTerminal{t: t, cmd: cmd, master: master, exited: make(chan error, 1)}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			ot.mu.Lock()
			ot.screen.Write(buf[:n])
			ot.mu.Unlock()
			if err != nil {
				return // EIO once the last process holding the terminal is gone
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		<-copied
		ot.exited <- err
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		master.Close()
	})
	return ot
}

// output is all the terminal showed so far, control sequences included.
func (ot *onTerminal) output() string {
	ot.mu.Lock()
	defer ot.mu.Unlock()
	return ot.screen.String()
}

func (ot *onTerminal) waitFor(what string, within time.Duration) {
	ot.t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(ot.output(), what) {
		if time.Now().After(deadline) {
			ot.t.Fatalf("no %q on the terminal after %s; it shows %q", what, within, ot.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (ot *onTerminal) typeIn(s string) {
	ot.t.Helper()
	if _, err := io.WriteString(ot.master, s); err != nil {
		ot.t.Fatalf("type %q: %v", s, err)
	}
}

// wait returns the exit code, failing the test if the command takes longer
// than within.
func (ot *onTerminal) wait(within time.Duration) int {
	ot.t.Helper()
	select {
	case err := <-ot.exited:
		return exitCode(err)
	case <-time.After(within):
		ot.t.Fatalf("still running after %s; the terminal shows:\n%s", within, ot.output())
		return -1
	}
}

// scrape run with no urls file on a terminal says it reads them from there;
// ^C stops it while it waits for a line, and ^D ends the list.
func TestRunReadsURLsTypedOnATerminal(t *testing.T) {
	_, base := startSite(t, 10)
	for _, tt := range []struct {
		name   string
		end    string // typed after the URLs
		exit   int
		report string
	}{
		{"ctrl-c", "\x03", exitInterrupted, "scrape: interrupted"},
		{"ctrl-d", "\x04", exitOK, "scrape: 2 records (2 ok, 0 errors)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.jsonl")
			ot := startOnTerminal(t, 120, dir, "run", "-f", writeFile(t, "mf", "localhost:2\n"), "-o", out, "--progress-interval", "200ms")
			ot.waitFor("scrape: reading URLs from standard input (Ctrl-D to end)", 30*time.Second)
			ot.typeIn(base + "/page/1\n" + base + "/page/2\n")
			// No bar to draw over what is typed: status lines, with no
			// total until the list ends.
			ot.waitFor("scrape: 2/? done", 30*time.Second)
			start := time.Now()
			ot.typeIn(tt.end)
			if code := ot.wait(10 * time.Second); code != tt.exit {
				t.Fatalf("exit %d, want %d; the terminal shows:\n%s", code, tt.exit, ot.output())
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("the run took %s to end after %q", took, tt.end)
			}
			if !strings.Contains(ot.output(), tt.report) {
				t.Errorf("the terminal does not say %q:\n%s", tt.report, ot.output())
			}
			if n := countRecords(out); n != 2 {
				t.Errorf("%d records for the 2 URLs typed", n)
			}
		})
	}
}

// A worker started by hand with no --nats says where its bootstrap would
// come from, and ^C stops it.
func TestWorkerOnATerminal(t *testing.T) {
	ot := startOnTerminal(t, 120, t.TempDir(), "worker")
	ot.waitFor("to join a run yourself, give --nats (or set NATS_URL)", 30*time.Second)
	ot.typeIn("\x03")
	if code := ot.wait(10 * time.Second); code != exitInterrupted {
		t.Fatalf("exit %d, want %d; the terminal shows:\n%s", code, exitInterrupted, ot.output())
	}
}

// On a terminal the bar says what a stalled run waits on, keeps within the
// terminal's width as it changes, and its last frame is the run's end, above
// the summary.
func TestBarShowsTheTailAndTheEnd(t *testing.T) {
	s := newStallSite(t)
	urls := []string{s.a + "/hang", s.a + "/503", s.b + "/page", s.a + "/gone"}
	for i := range 5 {
		urls = append(urls, fmt.Sprintf("%s/ok/%d", s.a, i))
	}
	dir := t.TempDir()
	ot := startOnTerminal(t, 200, dir, "run", "-f", writeFile(t, "mf", "localhost:2\n"), writeFile(t, "urls.txt", strings.Join(urls, "\n")+"\n"),
		"-o", filepath.Join(dir, "out.jsonl"), "--timeout", "1m", "--retries", "3", "--retry-backoff", "2s")
	ot.waitFor("6/9 [", 30*time.Second)
	ot.waitFor("ETA ? · no record for 5s · 1 in flight · 1 waiting to retry · 1 host waiting on robots.txt · 1 errors (http_status 1) [localhost 6]", 30*time.Second)

	// A narrower terminal gets shorter lines, cut where they would wrap.
	const cols = 60
	if err := pty.Setsize(ot.master, &pty.Winsize{Rows: 40, Cols: cols}); err != nil {
		t.Fatal(err)
	}
	narrowed := len(ot.output())
	waitFor(t, 10*time.Second, "frames on the narrower terminal", func() bool { return strings.Count(ot.output()[narrowed:], "\x1b[J") >= 3 })
	s.healed.Store(true)
	if code := ot.wait(30 * time.Second); code != exitOK {
		t.Fatalf("exit %d; the terminal shows:\n%s", code, ot.output())
	}
	after := ot.output()[narrowed:]
	after = after[strings.Index(after, "\x1b[J")+len("\x1b[J"):] // from the first whole frame
	for _, frame := range strings.Split(after, "\x1b[1A\x1b[J") {
		bar, _, _ := strings.Cut(frame, "\r\n")
		if n := len([]rune(bar)); n > cols || !regexp.MustCompile(`^\d/9 `).MatchString(bar) {
			t.Errorf("a frame of %d columns on a terminal of %d: %q", n, cols, bar)
		}
	}
	screen := render(ot.output())
	summary := -1
	for i, line := range screen {
		if strings.HasPrefix(line, "scrape: 9 records") {
			summary = i
		}
	}
	if summary < 1 || !strings.HasPrefix(screen[summary-1], "9/9 [") {
		t.Errorf("the bar's last frame is not the run's end, above its summary:\n%s", strings.Join(screen, "\n"))
	}
}
