package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/coordinator"
	"github.com/scrape-cluster/scrape/internal/syncbuf"
	"github.com/scrape-cluster/scrape/internal/testbin"
)

// timedLines collects the lines a reader gives, each with when it came.
type timedLines struct {
	mu    sync.Mutex
	lines []timedLine
	done  chan struct{}
}

type timedLine struct {
	at   time.Time
	text string
}

func readTimed(r io.Reader) *timedLines {
	tl := &timedLines{done: make(chan struct{})}
	go func() {
		defer close(tl.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			tl.mu.Lock()
			tl.lines = append(tl.lines, timedLine{time.Now(), sc.Text()})
			tl.mu.Unlock()
		}
	}()
	return tl
}

func (tl *timedLines) all() []timedLine {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]timedLine(nil), tl.lines...)
}

func (tl *timedLines) String() string {
	var b strings.Builder
	for _, l := range tl.all() {
		b.WriteString(l.text + "\n")
	}
	return b.String()
}

var etaLine = regexp.MustCompile(`^scrape: (\d+)/(\d+) done, [\d.]+ pages/s, elapsed \S+, ETA (\S+),`)

// A urls file's total is its lines from the first status line on, not what
// the frontier has read ahead; the ETA is what is really left at the pace
// the run goes.
func TestProgressTotalAndETAOfAFile(t *testing.T) {
	const pages = 500 // well beyond the frontier's read-ahead of 4 × 64 and the window of 64
	_, base := startSite(t, pages)
	var urls strings.Builder
	for i := range pages {
		fmt.Fprintf(&urls, "%s/slow/30/%d\n", base, i)
	}
	urls.WriteString("# a comment and a blank line are no records\n\n")
	dir := t.TempDir()
	cmd := exec.Command(testbin.Path(t), "run", "-f", writeFile(t, "mf", "localhost:4\n"), writeFile(t, "urls.txt", urls.String()),
		"-o", filepath.Join(dir, "out.jsonl"), "--progress-interval", "250ms")
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := readTimed(stderr)
	<-lines.done
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v\n%s", err, lines)
	}
	var end time.Time
	for _, l := range lines.all() {
		if strings.HasPrefix(l.text, fmt.Sprintf("scrape: %d records", pages)) {
			end = l.at
		}
	}
	if end.IsZero() {
		t.Fatalf("no summary of %d records:\n%s", pages, lines)
	}
	checked := 0
	for _, l := range lines.all() {
		m := etaLine.FindStringSubmatch(l.text)
		if m == nil {
			continue
		}
		done, _ := strconv.Atoi(m[1])
		total, _ := strconv.Atoi(m[2])
		if total != pages {
			t.Errorf("%q: the total is the file's %d records", l.text, pages)
		}
		if done < pages/4 || done > 3*pages/4 || m[3] == "?" {
			continue
		}
		// Mid-run, the ETA is the time the run really took to finish,
		// within what a shared machine's changing pace allows.
		eta, err := time.ParseDuration(m[3])
		if err != nil {
			t.Fatalf("%q: ETA: %v", l.text, err)
		}
		left := end.Sub(l.at)
		if eta < left/3-time.Second || eta > 3*left+time.Second {
			t.Errorf("%q: ETA %s, and the run took %s more", l.text, eta, left.Round(100*time.Millisecond))
		}
		checked++
	}
	if checked < 2 {
		t.Errorf("%d status lines mid-run with an ETA:\n%s", checked, lines)
	}
}

// stallSite is two sites on loopback: one whose /hang never answers and
// whose /503 fails, the other whose robots.txt never comes; heal makes them
// all answer.
type stallSite struct {
	a, b   string
	healed atomic.Bool
}

func newStallSite(t *testing.T) *stallSite {
	t.Helper()
	s := &stallSite{}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	wait := func(r *http.Request) {
		for !s.healed.Load() {
			select {
			case <-r.Context().Done():
				return
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	page := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<html><title>%s</title></html>", r.URL.Path)
	}
	s.a = serveHandler(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/robots.txt", "/gone":
			http.NotFound(w, r)
		case "/hang":
			wait(r)
			page(w, r)
		case "/503":
			if !s.healed.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			page(w, r)
		default:
			page(w, r)
		}
	}))
	s.b = serveHandler(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/robots.txt" {
			wait(r)
			http.NotFound(w, r)
			return
		}
		page(w, r)
	}))
	return s
}

// A run that seems stuck says what it waits on: a page in flight, a retry
// waiting for its time, a host's robots.txt; and its errors so far. Once
// interrupted, it says how many URLs have no record (of the whole file),
// scrape status says how to resume it, and the resumed run's summary is the
// whole run's.
func TestStalledRunSaysWhatItWaitsOn(t *testing.T) {
	s := newStallSite(t)
	urls := []string{s.a + "/hang", s.a + "/503", s.b + "/page", s.a + "/gone"}
	for i := range 5 {
		urls = append(urls, fmt.Sprintf("%s/ok/%d", s.a, i))
	}
	dir := t.TempDir()
	state, out, stats := filepath.Join(dir, "state"), filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "stats.json")
	urlsFile := writeFile(t, "urls.txt", strings.Join(urls, "\n")+"\n")
	mf := writeFile(t, "mf", "localhost:2\n")
	cmd := exec.Command(testbin.Path(t), "run", "-f", mf, urlsFile, "-o", out, "--state", state,
		"--timeout", "1m", "--retries", "3", "--retry-backoff", "1m", "--progress-interval", "200ms")
	cmd.Dir = dir
	stderr := &syncbuf.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	stalled := regexp.MustCompile(`(?m)^scrape: 6/9 done, .*, 1 in flight, 1 waiting to retry, 1 host waiting on robots\.txt, 1 errors \(http_status 1\)`)
	waitFor(t, 30*time.Second, "a status line saying what the run waits on", func() bool { return stalled.MatchString(stderr.String()) })

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); exitCode(err) != exitInterrupted {
		t.Fatalf("interrupted run: %v\n%s", err, stderr)
	}
	written := countRecords(out)
	if !strings.Contains(stderr.String(), fmt.Sprintf("  %d URLs have no record yet\n", len(urls)-written)) {
		t.Errorf("the output has %d of %d records; the summary says:\n%s", written, len(urls), stderr)
	}
	status, err := exec.Command(testbin.Path(t), "status", "--state", state).CombinedOutput()
	if want := fmt.Sprintf(": interrupted (resume with: scrape run --resume %s)\n", state); err != nil || !strings.Contains(string(status), want) {
		t.Errorf("scrape status of the interrupted run (%v):\n%s\nwant %q", err, status, want)
	}

	s.healed.Store(true)
	resumed := exec.Command(testbin.Path(t), "run", "--resume", state, "--stats", stats)
	resumed.Dir = dir
	summary, err := resumed.CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, summary)
	}
	recs := readAny(t, out)
	ok := 0
	for _, r := range recs {
		if r.Error == nil {
			ok++
		}
	}
	want := fmt.Sprintf("scrape: %d records (%d ok, %d errors), %d of them before the resume; this part: %d in ",
		len(urls), ok, len(urls)-ok, written, len(urls)-written)
	if len(recs) != len(urls) || !strings.Contains(string(summary), want) {
		t.Errorf("%d records in the output; the resumed run's summary:\n%s\nwant %q", len(recs), summary, want)
	}
	data, err := os.ReadFile(stats)
	if err != nil {
		t.Fatal(err)
	}
	var sum coordinator.Summary
	if err := json.Unmarshal(data, &sum); err != nil || sum.Records != len(urls) || sum.Earlier != written || sum.OK != ok {
		t.Errorf("--stats of the resumed run: %v\n%s", err, data)
	}
}
