package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/scrape"
)

// countRecords counts the records in a partly written output, torn or not,
// for deciding when to kill a run. It never fails.
func countRecords(path string) int {
	data, _ := os.ReadFile(path)
	switch filepath.Ext(path) {
	case ".csv":
		r := csv.NewReader(bytes.NewReader(data))
		n := -1 // the header
		for {
			if _, err := r.Read(); err != nil {
				return max(n, 0)
			}
			n++
		}
	case ".json":
		return bytes.Count(data, []byte("\n{"))
	}
	return bytes.Count(data, []byte("\n"))
}

// readAny reads a finished output of any format into records.
func readAny(t *testing.T, path string) []record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	switch filepath.Ext(path) {
	case ".json":
		return readJSON(t, path)
	case ".jsonl":
		return readJSONL(t, data)
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("output is not valid CSV: %v", err)
	}
	var recs []record
	for _, row := range rows[1:] {
		var r record
		r.URL = row[0]
		r.Line, _ = strconv.Atoi(row[1])
		r.Title = row[5]
		if row[17] != "" {
			r.Error = &scrape.Error{Kind: row[17], Message: row[18]}
		}
		recs = append(recs, r)
	}
	return recs
}

// TestResumeAfterCoordinatorKill kills the coordinator with SIGKILL at
// several points of a run, resumes it from its state directory, and checks
// that every input line has exactly one record: none lost, none twice,
// whatever was in flight.
func TestResumeAfterCoordinatorKill(t *testing.T) {
	const pages = 600
	site := testsite.New(pages)
	t.Cleanup(site.Close)
	base := serveHandler(t, "127.0.0.1", site)

	tests := []struct {
		name   string
		ext    string
		delay  time.Duration // per page
		killAt int           // records in the output
	}{
		{"early-json", "json", 40 * time.Millisecond, 5},
		{"middle-jsonl", "jsonl", 40 * time.Millisecond, pages / 2},
		{"middle-csv", "csv", 40 * time.Millisecond, pages / 2},
		// A short delay: records stream in fast (about 800 a second), so
		// the kill lands while the output is being written, yet the run
		// lasts long enough for the test to see a third of them (with no
		// delay at all, batched tasks finish 600 pages in a poll or two).
		{"writing-json", "json", 10 * time.Millisecond, pages / 3},
		{"writing-csv", "csv", 10 * time.Millisecond, pages / 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var urls strings.Builder
			want := map[int]string{}
			for i := range pages {
				u := fmt.Sprintf("%s/page/%d", base, i)
				if tt.delay > 0 {
					u = fmt.Sprintf("%s/slow/%d/%d", base, tt.delay.Milliseconds(), i)
				}
				if i%50 == 7 {
					u = "not a url " + strconv.Itoa(i) // answered by the coordinator itself
				}
				urls.WriteString(u + "\n")
				want[i+1] = u
			}
			dir := t.TempDir()
			out := filepath.Join(dir, "out."+tt.ext)
			state := filepath.Join(dir, "state")
			urlsFile := writeFile(t, "urls.txt", urls.String())

			// --per-slot 1: 8 pages in flight, the pace the kill points were
			// chosen for; at the default 128 the fast cases end before the
			// test sees a third of their records.
			cmd := scrapeCmd(t, t.Context(), "run", "-f", writeFile(t, "mf", "localhost:8\n"), urlsFile, "-o", out, "--state", state, "-q", "--per-slot", "1")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { _, _ = cmd.Process.Wait(); close(exited) }()
			waitFor(t, 60*time.Second, fmt.Sprintf("%d records", tt.killAt), func() bool {
				select {
				case <-exited:
					t.Fatalf("the run ended before it was killed, with %d records:\n%s", countRecords(out), stderr.String())
				default:
				}
				return countRecords(out) >= tt.killAt
			})
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-exited
			before := countRecords(out)
			if before >= pages {
				t.Fatalf("the run finished before it was killed (%d records)", before)
			}

			// From another directory: the run's paths were kept absolute.
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			resume := scrapeCmd(t, ctx, "run", "--resume", state, "-q")
			var rerr bytes.Buffer
			resume.Stderr = &rerr
			if err := resume.Run(); err != nil {
				t.Fatalf("resume: %v\n%s\nfirst run:\n%s", err, rerr.String(), stderr.String())
			}
			got := byLine(t, readAny(t, out), want)
			for line, r := range got {
				invalid := strings.HasPrefix(want[line], "not a url")
				if invalid != (r.Error != nil && r.Error.Kind == "invalid_url") || (!invalid && r.Title == "") {
					t.Errorf("line %d: %+v", line, r.Result)
				}
			}
			if !strings.Contains(rerr.String(), "resuming run") {
				t.Errorf("resume did not say what it resumed:\n%s", rerr.String())
			}
			// A finished run is not resumed twice.
			again := scrapeCmd(t, ctx, "run", "--resume", state)
			if msg, err := again.CombinedOutput(); err == nil || !strings.Contains(string(msg), "finished") {
				t.Errorf("second resume: %v: %s", err, msg)
			}
		})
	}
}

// TestResumeCrawl kills a crawl and resumes it: every page is fetched once
// in all, none twice, which needs the crawl's seen-set and its found pages
// to survive the kill.
func TestResumeCrawl(t *testing.T) {
	const pages = 800
	site := testsite.New(pages)
	t.Cleanup(site.Close)
	// 10 ms a page, 8 at a time: about a second in all, so the kill lands
	// mid-crawl (unslowed, the crawl ends between two polls of the output).
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond)
		site.ServeHTTP(w, r)
	})
	rec := &testsite.Recorder{Handler: slow}
	base := serveHandler(t, "127.0.0.1", rec)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	state := filepath.Join(dir, "state")
	args := []string{"run", "-f", writeFile(t, "mf", "localhost:8\n"), writeFile(t, "urls.txt", base+"/page/0\n"),
		"-o", out, "--state", state, "--depth", "50", "--same-host", "--per-host", "8", "-q"}
	cmd := scrapeCmd(t, t.Context(), args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "half the pages", func() bool { return countRecords(out) >= pages/2 })
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if n := countRecords(out); n >= pages {
		t.Fatalf("the crawl finished before it was killed (%d records)", n)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	resume := scrapeCmd(t, ctx, "run", "--resume", state, "-q")
	if msg, err := resume.CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, msg)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range readJSONL(t, data) {
		seen[r.URL]++
		if r.Error != nil {
			t.Errorf("%s: %+v", r.URL, r.Error)
		}
	}
	for n := range pages {
		u := fmt.Sprintf("%s/page/%d", base, n)
		if seen[u] != 1 {
			t.Errorf("%s: %d records, want 1", u, seen[u])
		}
	}
	if len(seen) != pages {
		t.Errorf("%d distinct URLs, want %d", len(seen), pages)
	}
}

// TestRunRefusesToClobber: an existing output or another run's state is
// kept unless --force says otherwise.
func TestRunRefusesToClobber(t *testing.T) {
	_, base := startSite(t, 3)
	dir := t.TempDir()
	urls := writeFile(t, "urls.txt", base+"/page/0\n"+base+"/page/1\n")
	out := filepath.Join(dir, "out.jsonl")
	state := filepath.Join(dir, "state")
	run := func(args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := scrapeCmd(t, ctx, append([]string{"run", "-f", writeFile(t, "mf", "localhost:2\n"), urls, "-q"}, args...)...)
		msg, err := cmd.CombinedOutput()
		return string(msg), err
	}
	if msg, err := run("-o", out, "--state", state); err != nil {
		t.Fatalf("first run: %v\n%s", err, msg)
	}
	first, _ := os.ReadFile(out)
	msg, err := run("-o", out)
	if code := exitCode(err); code != exitFailed || !strings.Contains(msg, "exists") || !strings.Contains(msg, "--force") {
		t.Errorf("run over an existing output: exit %d, %q", code, msg)
	}
	if now, _ := os.ReadFile(out); !bytes.Equal(now, first) {
		t.Errorf("refused run changed the output")
	}
	msg, err = run("-o", filepath.Join(dir, "other.jsonl"), "--state", state)
	if code := exitCode(err); code != exitFailed || !strings.Contains(msg, "holds another run") {
		t.Errorf("run in another run's state: exit %d, %q", code, msg)
	}
	if msg, err := run("-o", out, "--state", state, "--force"); err != nil {
		t.Errorf("--force: %v\n%s", err, msg)
	}
	if got := len(readAny(t, out)); got != 2 {
		t.Errorf("after --force: %d records, want 2", got)
	}

	// Flags other than how to show the run are the run's own.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	msg2, err := scrapeCmd(t, ctx, "run", "--resume", state, "--timeout", "1s").CombinedOutput()
	if code := exitCode(err); code != exitUsage || !strings.Contains(string(msg2), "--timeout") {
		t.Errorf("--resume with --timeout: exit %d, %q", code, msg2)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
