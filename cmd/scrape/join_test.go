package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/scrape-cluster/scrape/coordinator"
	"github.com/scrape-cluster/scrape/internal/syncbuf"
	"github.com/scrape-cluster/scrape/internal/testbin"
	"github.com/scrape-cluster/scrape/internal/testsite"
)

// process is a started command and the end of it.
type process struct {
	cmd    *exec.Cmd
	stderr *syncbuf.Buffer
	done   chan struct{}
	err    error
}

func start(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(testbin.Path(t), args...), stderr: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd.Dir = t.TempDir()
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to end and returns its exit code.
func (p *process) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("%s did not exit within %s\n%s", strings.Join(p.cmd.Args[1:], " "), within, p.stderr.String())
	}
	return exitCode(p.err)
}

// joinWorker starts scrape worker --nats against a run's embedded queue,
// listening on addr with its state in state: with the run's join key, and
// its certificate as the CA, as the run's join hint says.
func joinWorker(t *testing.T, addr, state, name string, slots int, extra ...string) *process {
	t.Helper()
	cert := filepath.Join(state, coordinator.CertFile)
	waitForFile(t, cert) // made after the join key
	args := append([]string{"worker", "--nats", "nats://" + addr, "--nkey", filepath.Join(state, coordinator.JoinKeyFile),
		"--tls-ca", cert, "--slots", fmt.Sprint(slots), "--name", name}, extra...)
	return start(t, args...)
}

// partialRecords reads the records a running scrape has flushed to a .json
// output so far.
func partialRecords(path string) []record {
	data, _ := os.ReadFile(path)
	var recs []record
	_ = json.Unmarshal(data, &recs)
	return recs
}

// waitForFile waits for a run to make a file, such as its join key.
func waitForFile(t *testing.T, path string) {
	t.Helper()
	waitFor(t, 30*time.Second, path, func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
}

func countNode(recs []record, node string) int {
	n := 0
	for _, r := range recs {
		if r.Node == node {
			n++
		}
	}
	return n
}

// TestWorkersJoinMidRun starts a run with one worker of 2 slots, then two
// workers join it by hand with 4 slots each. The joiners must get work and
// the run must end sooner than the lone worker could possibly have managed:
// each of its slots fetches at most one page per delay.
func TestWorkersJoinMidRun(t *testing.T) {
	const (
		pages = 80
		delay = 200 * time.Millisecond
		slots = 2
	)
	addr := testsite.ClosedPort(t)
	state := filepath.Join(t.TempDir(), "state")
	// The binary is built once per test process, by its first user: not
	// on the run's clock, where a busy machine's build made a 2.5 s run
	// look like 15 s.
	testbin.Path(t)
	began := time.Now()
	cmd, out, want, stderr := slowRun(t, pages, delay, fmt.Sprintf("localhost:%d\n", slots),
		"--listen", addr, "--state", state, "--per-host", "64")
	waitFor(t, 30*time.Second, "the first records", func() bool { return outputRecords(out) >= 4 })

	a := joinWorker(t, addr, state, "joiner-a", 4)
	b := joinWorker(t, addr, state, "joiner-b", 4)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v\n%s\njoiner-a:\n%s", err, stderr.String(), a.stderr.String())
	}
	took := time.Since(began)
	alone := time.Duration(pages/slots) * delay

	perNode := pagesPerNode(t, byLine(t, readJSON(t, out), want))
	joined := perNode["joiner-a"] + perNode["joiner-b"]
	t.Logf("%d pages of %s in %s (one worker of %d slots alone: at least %s); per node %v", pages, delay, took.Round(10*time.Millisecond), slots, alone, perNode)
	if perNode["joiner-a"] == 0 || perNode["joiner-b"] == 0 || joined < pages*2/5 {
		t.Errorf("the joined workers fetched %d of %d pages (%v), want at least 40%%", joined, pages, perNode)
	}
	if took > alone*3/4 {
		t.Errorf("run took %s; one worker alone needs at least %s", took, alone)
	}
	for _, s := range []string{"node joiner-a joined (4 slots)", "node joiner-b joined (4 slots)", "node joiner-a: ", "node joiner-b: ", "node localhost: "} {
		if !strings.Contains(stderr.String(), s) {
			t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
		}
	}
	// The run's end stops the joiners too, cleanly.
	for _, w := range []*process{a, b} {
		if code := w.wait(t, 10*time.Second); code != 0 {
			t.Errorf("joined worker exit %d:\n%s", code, w.stderr.String())
		}
	}
}

// TestJoinedWorkerLeaves runs on joined workers alone: a run with no host to
// start a worker on, waiting for workers to join. The first joiner is stopped
// with SIGTERM mid-run while it holds tasks; it must leave within seconds, the
// run must wait rather than fail, and a second joiner finishes the run with
// every URL exactly once.
func TestJoinedWorkerLeaves(t *testing.T) {
	const pages = 60
	addr := testsite.ClosedPort(t)
	state := filepath.Join(t.TempDir(), "state")
	cmd, out, want, stderr := slowRun(t, pages, 300*time.Millisecond, "# workers join by themselves\n",
		// A task of a worker that vanished waits --ack-wait before it is
		// handed on; one that a leaving worker hands back does not.
		"--listen", addr, "--state", state, "--wait-workers", "2m", "--per-host", "64", "--ack-wait", "2m")
	run := make(chan error, 1)
	go func() { run <- cmd.Wait() }()

	waitForFile(t, filepath.Join(state, coordinator.JoinKeyFile))
	first := joinWorker(t, addr, state, "first", 6)
	waitFor(t, 30*time.Second, "the first joiner's records", func() bool {
		if first.exited() {
			t.Fatalf("the joiner exited:\n%s", first.stderr.String())
		}
		return countNode(partialRecords(out), "first") >= 6
	})
	stopped := time.Now()
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := first.wait(t, 10*time.Second)
	left := time.Since(stopped)
	t.Logf("worker left %s after SIGTERM", left.Round(time.Millisecond))
	if code != 0 || left > 4*time.Second {
		t.Errorf("worker stopped with SIGTERM: exit %d after %s, want 0 within 4s\n%s", code, left, first.stderr.String())
	}
	before := len(partialRecords(out))
	if before >= pages {
		t.Fatalf("the run was done (%d records) before the worker left", before)
	}

	time.Sleep(time.Second)
	select {
	case err := <-run:
		t.Fatalf("run ended when its only worker left: %v\n%s", err, stderr.String())
	default:
	}
	second := joinWorker(t, addr, state, "second", 8)
	select {
	case err := <-run:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, stderr.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("run did not finish: were the leaving worker's tasks handed back?\n%s\nsecond:\n%s", stderr.String(), second.stderr.String())
	}
	got := byLine(t, readJSON(t, out), want)
	for line, r := range got {
		if r.Error != nil {
			t.Errorf("line %d: %+v", line, r.Error)
		}
		if r.Node != "first" && r.Node != "second" {
			t.Errorf("line %d fetched by node %q", line, r.Node)
		}
	}
	for _, s := range []string{"waiting up to 2m0s for workers to join: scrape worker --nats nats://" + addr, "node first joined (6 slots)", "node first left", "node second joined (8 slots)"} {
		if !strings.Contains(stderr.String(), s) {
			t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
		}
	}
	if code := second.wait(t, 10*time.Second); code != 0 {
		t.Errorf("second worker exit %d:\n%s", code, second.stderr.String())
	}
}

// TestJoinRefusals: a worker with a key the run does not know is refused at
// once and says why; one with no run to join gives up after --wait.
func TestJoinRefusals(t *testing.T) {
	addr := testsite.ClosedPort(t)
	state := filepath.Join(t.TempDir(), "state")
	cmd, _, _, stderr := slowRun(t, 40, 200*time.Millisecond, "localhost:1\n", "--listen", addr, "--state", state)
	waitForFile(t, filepath.Join(state, coordinator.JoinKeyFile))

	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	wrong := writeFile(t, "wrong.nk", string(seed)+"\n")
	// The run's certificate, so that the key is what is refused.
	cert := filepath.Join(state, coordinator.CertFile)
	waitForFile(t, cert)
	began := time.Now()
	w := start(t, "worker", "--nats", "nats://"+addr, "--nkey", wrong, "--tls-ca", cert, "--wait", "30s")
	if code := w.wait(t, 20*time.Second); code != exitFailed {
		t.Errorf("worker with a wrong key: exit %d, want %d", code, exitFailed)
	}
	msg := w.stderr.String()
	if !strings.Contains(msg, "refused our credentials") || !strings.Contains(strings.ToLower(msg), "authorization violation") {
		t.Errorf("worker with a wrong key says:\n%s", msg)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("refusal took %s", took)
	}

	// The run's own key, but not its certificate: no wait helps that.
	began = time.Now()
	w = start(t, "worker", "--nats", "nats://"+addr, "--nkey", filepath.Join(state, coordinator.JoinKeyFile), "--wait", "30s")
	if code := w.wait(t, 20*time.Second); code != exitFailed || !strings.Contains(w.stderr.String(), "certificate is not one we trust") ||
		!strings.Contains(w.stderr.String(), "--tls-ca") {
		t.Errorf("worker without the run's certificate: exit %d:\n%s", code, w.stderr.String())
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("refusing a certificate took %s", took)
	}

	// No run at all: nothing listens on the address.
	w = start(t, "worker", "--nats", "nats://"+testsite.ClosedPort(t), "--nkey", wrong, "--wait", "3s")
	if code := w.wait(t, 20*time.Second); code != exitFailed || !strings.Contains(w.stderr.String(), "no active run after 3s") ||
		!strings.Contains(w.stderr.String(), "waiting for a run") {
		t.Errorf("worker without a run: exit %d:\n%s", code, w.stderr.String())
	}

	if err := cmd.Wait(); err != nil {
		t.Errorf("run: %v\n%s", err, stderr.String())
	}
}
