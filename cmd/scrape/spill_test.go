package main

import (
	"bufio"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testsite"
)

// TestResumeSpilledCrawl kills (SIGKILL) a crawl of a site far bigger than
// the frontier's memory once it has pages waiting on disk, resumes it, and
// checks that every page within the depth has one record.
func TestResumeSpilledCrawl(t *testing.T) {
	site := testsite.New(1)
	site.Fanout = 20
	t.Cleanup(site.Close)
	base := serveHandler(t, "127.0.0.1", site)
	const pages = 1 + 20 + 20*20 + 20*20*20 // depth 3
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	state := filepath.Join(dir, "state")
	cmd := scrapeCmd(t, t.Context(), "run", "-f", writeFile(t, "mf", "localhost:8\n"), writeFile(t, "urls.txt", base+"/tree\n"),
		"-o", out, "--state", state, "--depth", "3", "--same-host", "--ignore-robots", "-q")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _, _ = cmd.Process.Wait(); close(exited) }()
	waitFor(t, 60*time.Second, "pages on disk and a quarter of the records", func() bool {
		select {
		case <-exited:
			t.Fatalf("the run ended before it was killed, with %d records", countRecords(out))
		default:
		}
		segs, _ := filepath.Glob(filepath.Join(state, "frontier", "*.seg"))
		return len(segs) > 0 && countRecords(out) >= pages/4
	})
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if msg, err := scrapeCmd(t, ctx, "run", "--resume", state, "-q").CombinedOutput(); err != nil {
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
	for u, n := range seen {
		if n != 1 {
			t.Errorf("%s: %d records", u, n)
		}
	}
	if len(seen) != pages {
		t.Errorf("%d pages with records, want %d", len(seen), pages)
	}
}

// TestLongSpill is the measurement of the README's "Crawling an endless
// site": a crawl of a site where every page links to 50 new ones, for
// SCRAPE_LONG_DURATION (default 10m), the coordinator's RSS and the state
// directory sampled every second; then it is killed (SIGKILL) and resumed,
// and the time and memory the resume takes to its first new page measured.
// Run it with
//
//	SCRAPE_LONG=1 go test ./cmd/scrape -run TestLongSpill -v -timeout 30m
func TestLongSpill(t *testing.T) {
	if os.Getenv("SCRAPE_LONG") == "" {
		t.Skip("a measurement of many minutes: set SCRAPE_LONG=1")
	}
	length := 10 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("SCRAPE_LONG_DURATION")); err == nil {
		length = d
	}
	site := testsite.New(1)
	t.Cleanup(site.Close)
	base := serveHandler(t, "127.0.0.1", site)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	state := filepath.Join(dir, "state")
	// As in issue #14: default slots (one per CPU), --depth 6.
	cmd := scrapeCmd(t, t.Context(), "run", writeFile(t, "urls.txt", base+"/tree\n"),
		"-o", out, "--state", state, "--depth", "6", "--same-host", "--ignore-robots", "-q")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _, _ = cmd.Process.Wait(); close(exited) }()
	start := time.Now()
	var peak int64
	for tick := 1; time.Since(start) < length; tick++ {
		select {
		case <-exited:
			t.Fatalf("the crawl ended after %s", time.Since(start))
		case <-time.After(time.Until(start.Add(time.Duration(tick) * time.Second))):
		}
		now := rss(cmd.Process.Pid)
		if tick > 5 { // the start-up's garbage is not the frontier's
			peak = max(peak, now)
		}
		if tick%30 == 0 || tick <= 10 && tick%5 == 0 {
			t.Logf("%4ds: coordinator RSS %3d MiB, state %4d MiB (frontier %4d MiB), %d pages written",
				tick, now>>20, dirSize(state)>>20, dirSize(filepath.Join(state, "frontier"))>>20, lines(out))
		}
	}
	written := lines(out)
	t.Logf("after %s: peak coordinator RSS %d MiB (from the 6th second), state %d MiB, %d pages written (%.0f/s)",
		length, peak>>20, dirSize(state)>>20, written, float64(written)/length.Seconds())
	if peak > 150<<20 {
		t.Errorf("coordinator RSS reached %d MiB, want under 150", peak>>20)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	// The resume cuts the output back to its last commit, then writes on:
	// its first new page is when the output grows past where the kill left
	// it (a little later, since what the cut dropped is written again).
	killed := fileSize(out)

	// The resume, to its first page written beyond what the killed run had.
	resume := scrapeCmd(t, t.Context(), "run", "--resume", state, "-q")
	resumeStart := time.Now()
	if err := resume.Start(); err != nil {
		t.Fatal(err)
	}
	var resumePeak int64
	var first time.Duration
	for first == 0 && time.Since(resumeStart) < 2*time.Minute {
		resumePeak = max(resumePeak, rss(resume.Process.Pid))
		if fileSize(out) > killed {
			first = time.Since(resumeStart)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for tick := 1; tick <= 200; tick++ {
		time.Sleep(100 * time.Millisecond)
		now := rss(resume.Process.Pid)
		resumePeak = max(resumePeak, now)
		if tick%10 == 0 {
			t.Logf("resume %3.0fs: RSS %3d MiB, output %d MiB", time.Since(resumeStart).Seconds(), now>>20, fileSize(out)>>20)
		}
	}
	t.Logf("resume: first new page after %s, peak RSS %d MiB (its first 20 s)", first.Round(time.Millisecond), resumePeak>>20)
	if first == 0 || first > 5*time.Second || resumePeak > 150<<20 {
		t.Errorf("resume: first new page after %s (0: none in 2 minutes), peak RSS %d MiB; want within 5 s, under 150 MiB", first, resumePeak>>20)
	}
	// Interrupted, it writes what it has; no page may have two records.
	_ = resume.Process.Signal(syscall.SIGINT)
	_ = resume.Wait()
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		// The URL is the record's first field: no need to decode millions.
		line := sc.Bytes()
		u, _, _ := bytes.Cut(bytes.TrimPrefix(line, []byte(`{"url":"`)), []byte(`"`))
		if seen[string(u)] {
			t.Errorf("%s: two records", u)
		}
		seen[string(u)] = true
	}
	t.Logf("%d records, each of its own page", len(seen))
}

// rss is a process's resident set size (0 once it is gone).
func rss(pid int) int64 {
	n, _ := vmRSS(pid)
	return n
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// dirSize is the bytes of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// lines counts the lines of a file being written.
func lines(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	buf := make([]byte, 1<<20)
	for {
		k, err := f.Read(buf)
		n += bytes.Count(buf[:k], []byte("\n"))
		if err != nil {
			return n
		}
	}
}
