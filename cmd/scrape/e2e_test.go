package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/syncbuf"
	"github.com/scrape-cluster/scrape/internal/testbin"
	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/scrape"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// startSite serves a test site on loopback for the length of the test.
func startSite(t *testing.T, pages int) (*testsite.Site, string) {
	t.Helper()
	site := testsite.New(pages)
	srv := httptest.NewServer(site)
	t.Cleanup(func() {
		site.Close()
		srv.Close()
	})
	return site, srv.URL
}

// pagesPerNode counts the records of each node, and fails the test for each
// one that is an error: the runs that use it fetch pages that all work.
func pagesPerNode(t *testing.T, recs map[int]record) map[string]int {
	t.Helper()
	per := map[string]int{}
	for line, r := range recs {
		if r.Error != nil {
			t.Errorf("line %d: %+v", line, r.Error)
		}
		per[r.Node]++
	}
	return per
}

// record is the part of an output record the tests look at.
type record struct {
	scrape.Result
}

func readJSON(t *testing.T, path string) []record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []record
	if err := json.Unmarshal(data, &recs); err != nil {
		t.Fatalf("output is not a JSON array: %v\n%.500s", err, data)
	}
	return recs
}

func readJSONL(t *testing.T, data []byte) []record {
	t.Helper()
	var recs []record
	for i, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i+1, err, line)
		}
		recs = append(recs, r)
	}
	return recs
}

// byLine checks that every wanted input line has exactly one record and
// nothing else is there, and returns the records by line.
func byLine(t *testing.T, recs []record, want map[int]string) map[int]record {
	t.Helper()
	got := map[int]record{}
	for _, r := range recs {
		if prev, dup := got[r.Line]; dup {
			t.Errorf("line %d has two records: %q and %q", r.Line, prev.URL, r.URL)
		}
		got[r.Line] = r
		if w, ok := want[r.Line]; !ok {
			t.Errorf("record for line %d (%q) is not an input line", r.Line, r.URL)
		} else if w != r.URL {
			t.Errorf("line %d: url %q, want %q", r.Line, r.URL, w)
		}
	}
	for line, u := range want {
		if _, ok := got[line]; !ok {
			t.Errorf("line %d (%s) has no record", line, u)
		}
	}
	return got
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func scrapeCmd(t *testing.T, ctx context.Context, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, testbin.Path(t), args...)
	cmd.Dir = t.TempDir()
	return cmd
}

func TestRunLocalClusterExactlyOnce(t *testing.T) {
	const pages = 300
	site, base := startSite(t, pages)

	var urls strings.Builder
	want := map[int]string{}
	line := 0
	add := func(s string) {
		line++
		urls.WriteString(s + "\n")
		if s != "" && !strings.HasPrefix(s, "#") {
			want[line] = s
		}
	}
	add("# a comment line")
	for i := range pages {
		add(fmt.Sprintf("%s/page/%d", base, i))
	}
	add("")
	bad := map[string]string{ // url → error kind
		base + "/status/404":                     scrape.KindHTTPStatus,
		base + "/status/503":                     scrape.KindHTTPStatus,
		base + "/hang":                           scrape.KindTimeout,
		base + "/stall":                          scrape.KindTimeout,
		base + "/huge":                           scrape.KindTooLarge,
		base + "/loop/a":                         scrape.KindTooManyRedirects,
		base + "/binary":                         scrape.KindNotHTML,
		"http://" + testsite.ClosedPort(t) + "/": scrape.KindConnect,
		"not a url":                              scrape.KindInvalidURL,
		"ftp://example.com/file":                 scrape.KindInvalidURL,
	}
	for u := range bad {
		add(u)
	}
	add(base + "/redirect/3")

	dir := t.TempDir()
	urlsFile := writeFile(t, "urls.txt", urls.String())
	mf := writeFile(t, "machinefile", "# two workers on this machine\nlocalhost:4\n127.0.0.1:3\n")
	out := filepath.Join(dir, "results.json")

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := scrapeCmd(t, ctx, "run", "-f", mf, urlsFile, "-o", out, "--timeout", "2s", "--max-body", "256KiB")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scrape run: %v\n%s", err, stderr.String())
	}

	recs := readJSON(t, out)
	got := byLine(t, recs, want)
	if len(recs) != len(want) {
		t.Errorf("%d records for %d input lines", len(recs), len(want))
	}

	perNode := map[string]int{}
	for line, u := range want {
		r := got[line]
		if kind, isBad := bad[u]; isBad {
			if r.Error == nil || r.Error.Kind != kind {
				t.Errorf("%s: error %+v, want kind %s", u, r.Error, kind)
			}
			continue
		}
		if r.Node != "" {
			perNode[r.Node]++
		}
		if r.Error != nil {
			t.Errorf("%s: unexpected error %+v", u, r.Error)
			continue
		}
		if r.Status != 200 || r.Attempts != 1 || r.Worker == "" || r.FetchedAt.IsZero() || r.Bytes == 0 {
			t.Errorf("%s: incomplete record %+v", u, r.Result)
		}
		if strings.Contains(u, "/redirect/") {
			if r.FinalURL != base+"/page/0" {
				t.Errorf("%s: final_url %q, want %s/page/0", u, r.FinalURL, base)
			}
			continue
		}
		var n int
		fmt.Sscanf(u, base+"/page/%d", &n)
		if r.Title != testsite.Title(n) || r.Description != testsite.Description(n) {
			t.Errorf("%s: title %q description %q", u, r.Title, r.Description)
		}
		if !slices.Contains(r.Headings, fmt.Sprintf("Heading %d", n)) {
			t.Errorf("%s: headings %q", u, r.Headings)
		}
		for _, l := range site.Links(n) {
			if !slices.Contains(r.Links, base+l) {
				t.Errorf("%s: links %q lack %s", u, r.Links, base+l)
			}
		}
	}
	if perNode["localhost"] == 0 || perNode["127.0.0.1"] == 0 {
		t.Errorf("work per node %v: both nodes should have fetched pages", perNode)
	}
	for _, p := range []string{"/page/0", "/page/299"} {
		if h := site.Hits(p); h != 1+boolInt(p == "/page/0") {
			// /page/0 is also where /redirect/3 lands.
			t.Errorf("%s fetched %d times", p, h)
		}
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("%d records", len(want))) {
		t.Errorf("summary missing from stderr:\n%s", stderr.String())
	}
	if pids := testbin.Workers(testbin.Path(t)); len(pids) != 0 {
		t.Errorf("workers still running after the run: %v", pids)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestRunStdinToStdoutJSONLines(t *testing.T) {
	_, base := startSite(t, 10)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := scrapeCmd(t, ctx, "run", "-q")
	cmd.Stdin = strings.NewReader(base + "/page/1\n\n" + base + "/page/2\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scrape run: %v\n%s", err, stderr.String())
	}
	recs := readJSONL(t, stdout.Bytes())
	byLine(t, recs, map[int]string{1: base + "/page/1", 3: base + "/page/2"})
	if stderr.Len() != 0 {
		t.Errorf("-q run printed to stderr:\n%s", stderr.String())
	}
}

func TestRunRefusesBadSetup(t *testing.T) {
	urls := writeFile(t, "urls.txt", "http://127.0.0.1:1/\n")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"bad machinefile line", []string{"-f", writeFile(t, "mf", "node0\nnode1:x\n")}, exitFailed, `mf:2: "node1:x": invalid slot count`},
		{"missing machinefile", []string{"-f", "/nonexistent/mf"}, exitFailed, "/nonexistent/mf"},
		{"missing urls file", []string{"/nonexistent/urls.txt"}, exitFailed, "open urls"},
		{"output not writable", []string{"-o", "/nonexistent/dir/out.json"}, exitFailed, "create output"},
		{"unknown format", []string{"--format", "xml", "/nonexistent/urls.txt"}, exitUsage, `unknown format "xml"`},
		{"unknown flag", []string{"--no-such-flag"}, exitUsage, "unknown flag"},
		{"bad selector", []string{"--select", "x=[["}, exitUsage, `--select "x=[[": invalid CSS selector`},
		{"zero per-host", []string{"--per-host", "0"}, exitUsage, "--per-host must be 1 or more"},
		{"two url files", []string{urls, urls}, exitUsage, "at most 1 argument"},
		{"machinefile without hosts", []string{"-f", writeFile(t, "mf", "# nobody\n")}, exitFailed, "no hosts"},
		{"nobody joins", []string{"-f", writeFile(t, "mf", "# nobody\n"), "--wait-workers", "2s"}, exitFailed, "no worker joined within the wait of 2s"},
		{"no node reachable", []string{"-f", writeFile(t, "mf", "node.invalid\n"), "--ssh", "ssh -F /dev/null", "--connect-timeout", "3s"}, exitFailed, "node.invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			args := append([]string{"run"}, tt.args...)
			if !slices.Contains(tt.args, urls) && !slices.ContainsFunc(tt.args, func(a string) bool { return strings.HasPrefix(a, "/nonexistent/urls") }) {
				args = append(args, urls)
			}
			cmd := scrapeCmd(t, ctx, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tt.wantCode {
				t.Fatalf("exit %v, want code %d\n%s", err, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantErr, stderr.String())
			}
		})
	}
}

// Workers start while the queue is being set up. When the queue then cannot
// start, they go without a word: the one reason given is the queue's.
func TestRunWhoseQueueCannotStartLeavesNoWorker(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := scrapeCmd(t, ctx, "run", "-f", writeFile(t, "mf", "localhost:2\n127.0.0.1:2\n"),
		"--listen", taken.Addr().String(), writeFile(t, "urls.txt", "http://127.0.0.1:1/\n"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailed {
		t.Fatalf("exit %v, want code %d\n%s", err, exitFailed, stderr.String())
	}
	if !strings.Contains(stderr.String(), "start queue server") || !strings.Contains(stderr.String(), "address already in use") {
		t.Errorf("stderr does not say the queue could not listen:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "[localhost]") || strings.Contains(stderr.String(), "[127.0.0.1]") {
		t.Errorf("workers spoke of a run that never started:\n%s", stderr.String())
	}
	if pids := testbin.Workers(testbin.Path(t)); len(pids) != 0 {
		t.Errorf("workers still running after the run failed: %v", pids)
	}
}

// slowRun starts a run over pages that each take delay to serve, so that a
// test can act on it mid-run, and read its stderr meanwhile.
func slowRun(t *testing.T, pages int, delay time.Duration, mf string, extra ...string) (*exec.Cmd, string, map[int]string, *syncbuf.Buffer) {
	t.Helper()
	_, base := startSite(t, pages)
	var urls strings.Builder
	want := map[int]string{}
	for i := range pages {
		u := fmt.Sprintf("%s/slow/%d/%d", base, delay.Milliseconds(), i)
		urls.WriteString(u + "\n")
		want[i+1] = u
	}
	out := filepath.Join(t.TempDir(), "out.json")
	// --per-slot 1: a slot is one page in flight, so that the machinefile
	// sets how long the run lasts, as the callers count on.
	args := append([]string{"run", "-f", writeFile(t, "mf", mf), writeFile(t, "urls.txt", urls.String()), "-o", out, "--per-slot", "1"}, extra...)
	cmd := exec.Command(testbin.Path(t), args...)
	cmd.Dir = t.TempDir()
	return cmd, out, want, startKilledAtCleanup(t, cmd)
}

// startKilledAtCleanup starts cmd, its stderr kept in the buffer returned,
// and kills it when the test ends if it still runs.
func startKilledAtCleanup(t *testing.T, cmd *exec.Cmd) *syncbuf.Buffer {
	t.Helper()
	stderr := &syncbuf.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	return stderr
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func outputRecords(path string) int {
	data, _ := os.ReadFile(path)
	var recs []json.RawMessage
	if json.Unmarshal(data, &recs) != nil {
		return 0
	}
	return len(recs)
}

func TestRunInterruptKeepsOutputAndStopsWorkers(t *testing.T) {
	bin := testbin.Path(t)
	cmd, out, want, stderr := slowRun(t, 400, 200*time.Millisecond, "localhost:4\n127.0.0.1:4\n")
	waitFor(t, 30*time.Second, "first records in the output", func() bool { return outputRecords(out) >= 8 })

	start := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	took := time.Since(start)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit %v, want %d\n%s", err, exitInterrupted, stderr.String())
	}
	if took > 5*time.Second {
		t.Errorf("interrupted run took %s to stop", took)
	}
	if pids := testbin.Workers(bin); len(pids) != 0 {
		t.Errorf("workers left after interrupt: %v", pids)
	}
	recs := readJSON(t, out)
	if len(recs) == 0 || len(recs) >= len(want) {
		t.Errorf("%d records after interrupt, want some of %d", len(recs), len(want))
	}
	seen := map[int]bool{}
	for _, r := range recs {
		if seen[r.Line] || want[r.Line] != r.URL {
			t.Errorf("bad or duplicate record for line %d: %q", r.Line, r.URL)
		}
		seen[r.Line] = true
		if r.Error != nil {
			t.Errorf("interrupted fetch written as a record: %+v", r.Result)
		}
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say interrupted:\n%s", stderr.String())
	}
}

func TestWorkersExitWhenCoordinatorIsKilled(t *testing.T) {
	bin := testbin.Path(t)
	cmd, out, _, _ := slowRun(t, 400, 200*time.Millisecond, "localhost:4\n127.0.0.1:2\n")
	waitFor(t, 30*time.Second, "records in the output", func() bool { return outputRecords(out) >= 4 })
	if n := len(testbin.Workers(bin)); n != 2 {
		t.Fatalf("%d workers running, want 2", n)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = cmd.Process.Wait()
	waitFor(t, 30*time.Second, "workers to exit on their own", func() bool { return len(testbin.Workers(bin)) == 0 })
	// The array was complete at its last flush, so even a killed run
	// leaves valid JSON.
	if n := outputRecords(out); n < 4 {
		t.Errorf("output after kill -9 holds %d records (or is not valid JSON)", n)
	}
}

func TestKilledWorkersTasksAreRedelivered(t *testing.T) {
	bin := testbin.Path(t)
	cmd, out, want, stderr := slowRun(t, 120, 100*time.Millisecond, "localhost:4\n127.0.0.1:4\n", "--ack-wait", "2s")
	waitFor(t, 30*time.Second, "records in the output", func() bool { return outputRecords(out) >= 10 })
	pids := testbin.Workers(bin)
	if len(pids) != 2 {
		t.Fatalf("%d workers running, want 2", len(pids))
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run failed after a worker was killed: %v\n%s", err, stderr.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("run did not finish after a worker was killed\n%s", stderr.String())
	}
	recs := readJSON(t, out)
	got := byLine(t, recs, want)
	for line, r := range got {
		if r.Error != nil {
			t.Errorf("line %d: %+v", line, r.Error)
		}
	}
	if !strings.Contains(stderr.String(), "lost node") {
		t.Errorf("the lost node was not reported:\n%s", stderr.String())
	}
}

func readFileT(t *testing.T, path string) ([]byte, error) {
	t.Helper()
	return os.ReadFile(path)
}
