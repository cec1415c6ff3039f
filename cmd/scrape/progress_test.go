package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/coordinator"
	"github.com/scrape-cluster/scrape/internal/testbin"
	"github.com/scrape-cluster/scrape/internal/testsite"
)

// The summary's figures are counted from the records written, so they must
// agree with the output file exactly.
func TestStatsMatchTheOutput(t *testing.T) {
	site := testsite.New(50)
	t.Cleanup(site.Close)
	base := serveHandler(t, "127.0.0.1", site)
	var urls []string
	for i := range 40 {
		urls = append(urls, fmt.Sprintf("%s/page/%d", base, i))
	}
	urls = append(urls, base+"/status/404", base+"/status/410", base+"/binary", "nope", base+"/loop/a")
	stats := filepath.Join(t.TempDir(), "stats.json")
	got, _ := scrapeRecords(t, urls, "localhost:3\n127.0.0.1:2\n", "--stats", stats, "--retries", "0")

	data, err := os.ReadFile(stats)
	if err != nil {
		t.Fatal(err)
	}
	var sum coordinator.Summary
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatalf("stats file: %v\n%s", err, data)
	}
	ok, bytes := 0, int64(0)
	kinds, nodes, pages := map[string]int{}, map[string]int{}, map[string]int{}
	for _, r := range got {
		bytes += r.Bytes
		if r.Node != "" {
			nodes[r.Node]++
			if r.Error == nil {
				pages[r.Node]++
			}
		}
		if r.Error == nil {
			ok++
		} else {
			kinds[r.Error.Kind]++
		}
	}
	if sum.Records != len(got) || sum.OK != ok || sum.Bytes != bytes {
		t.Errorf("stats say %d records, %d ok, %d bytes; output has %d, %d, %d", sum.Records, sum.OK, sum.Bytes, len(got), ok, bytes)
	}
	if fmt.Sprint(sum.Errors) != fmt.Sprint(kinds) {
		t.Errorf("errors by kind %v, output has %v", sum.Errors, kinds)
	}
	if fmt.Sprint(sum.PerNode) != fmt.Sprint(nodes) {
		t.Errorf("pages per node %v, output has %v", sum.PerNode, nodes)
	}
	// A node's pages are its records that are no error, and its pace is
	// theirs over its time at work, which is within the run's.
	share := 0.0
	for n, r := range sum.NodeRates {
		share += r.Share
		if r.Records != nodes[n] || r.Pages != pages[n] || r.ActiveSeconds < 0 || r.ActiveSeconds > sum.ElapsedSeconds {
			t.Errorf("node %s: %+v; the output has %d records, %d pages", n, r, nodes[n], pages[n])
		}
		want := 0.0 // a burst under a second has no pace
		if r.ActiveSeconds >= 1 {
			want = float64(r.Pages) / r.ActiveSeconds
		}
		if r.PagesPerSecond < want*0.999 || r.PagesPerSecond > want*1.001 {
			t.Errorf("node %s: %.1f pages/s, want %d pages over %.3fs", n, r.PagesPerSecond, r.Pages, r.ActiveSeconds)
		}
	}
	if share < 0.9999 || share > 1.0001 {
		t.Errorf("node shares of the pages add up to %.3f", share)
	}
	if sum.ElapsedSeconds <= 0 || sum.PagesPerSecond <= 0 {
		t.Errorf("elapsed %.3f s, %.1f pages/s", sum.ElapsedSeconds, sum.PagesPerSecond)
	}
}

var statusLine = regexp.MustCompile(`(?m)^scrape: (\d+)/(\d+) done, [\d.]+ pages/s, elapsed \S+, ETA \S+(, \d+ in flight)?, \d+ errors`)

func TestPlainStatusLinesOffATerminal(t *testing.T) {
	site := testsite.New(100)
	t.Cleanup(site.Close)
	base := serveHandler(t, "127.0.0.1", site)
	var urls []string
	for i := range 60 {
		urls = append(urls, fmt.Sprintf("%s/slow/100/%d", base, i))
	}
	_, stderr := scrapeRecords(t, urls, "localhost:2", "--progress-interval", "300ms")
	lines := statusLine.FindAllStringSubmatch(stderr, -1)
	if len(lines) < 3 {
		t.Fatalf("%d status lines in a 3 s run with a 300ms interval:\n%s", len(lines), stderr)
	}
	prev := -1
	for _, l := range lines {
		var done, total int
		fmt.Sscan(l[1], &done)
		fmt.Sscan(l[2], &total)
		if done < prev || total != 60 { // the file is counted ahead of the run
			t.Errorf("status line %q after %d done", l[0], prev)
		}
		prev = done
	}
	_, stderr = scrapeRecords(t, urls[:10], "localhost:2", "--progress-interval", "100ms", "-q")
	if stderr != "" {
		t.Errorf("-q printed:\n%s", stderr)
	}
}

// On a terminal the bar is redrawn in place; the worker log lines relayed
// meanwhile must come out whole, above it.
func TestProgressBarKeepsRelayedLinesWhole(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("needs script(1) for a pseudo-terminal")
	}
	site := testsite.New(100)
	t.Cleanup(site.Close)
	base := serveHandler(t, "127.0.0.1", site)
	var urls strings.Builder
	for i := range 40 {
		fmt.Fprintf(&urls, "%s/slow/50/%d\n", base, i)
	}
	dir := t.TempDir()
	urlsFile := writeFile(t, "urls.txt", urls.String())
	out := filepath.Join(dir, "out.jsonl")
	// -vv makes every worker log each task, so lines arrive while the bar
	// is being drawn.
	run := fmt.Sprintf("stty cols 160 rows 40; %s run -f %s %s -o %s -vv", testbin.Path(t), writeFile(t, "mf", "localhost:2\n127.0.0.1:2\n"), urlsFile, out)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "script", "-qfec", run, "/dev/null")
	cmd.Dir = dir
	var term bytes.Buffer
	cmd.Stdout = &term
	if err := cmd.Run(); err != nil {
		t.Fatalf("scrape run on a terminal: %v\n%s", err, term.String())
	}
	screen := term.String()
	if !strings.Contains(screen, "\x1b[") {
		t.Errorf("no bar was drawn (no terminal control sequences):\n%q", screen)
	}
	// What a person sees is the screen after the bar's redraws, which move
	// up and clear: a line written past the bar would be wiped. Render it.
	rendered := render(screen)
	relayed := regexp.MustCompile(`^\[(localhost|127\.0\.0\.1)\] time=\S+ level=\w+ msg=`)
	fetched := 0
	for _, line := range rendered {
		if !strings.Contains(line, "] time=") {
			continue
		}
		if !relayed.MatchString(line) {
			t.Errorf("a worker line was broken up: %q", line)
		}
		if strings.Contains(line, "msg=fetched") {
			fetched++
		}
	}
	if fetched != 40 {
		t.Errorf("%d of 40 per-URL worker lines are on the screen:\n%s", fetched, strings.Join(rendered, "\n"))
	}
	if !strings.Contains(screen, "40 records") {
		t.Errorf("no summary after the bar:\n%q", screen)
	}
}

func TestStatusCommandReadsALiveRun(t *testing.T) {
	site := testsite.New(100)
	t.Cleanup(site.Close)
	base := serveHandler(t, "127.0.0.1", site)
	var urls strings.Builder
	for i := range 60 {
		fmt.Fprintf(&urls, "%s/slow/100/%d\n", base, i)
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	cmd := exec.Command(testbin.Path(t), "run", "-f", writeFile(t, "mf", "localhost:2"), writeFile(t, "urls.txt", urls.String()),
		"-o", filepath.Join(dir, "out.json"), "--state", state, "-q", "--per-slot", "1") // 2 pages at a time: 3 s
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	status := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(testbin.Path(t), append([]string{"status", "--state", state}, args...)...).CombinedOutput()
		if err != nil {
			return ""
		}
		return string(out)
	}
	live := regexp.MustCompile(`: running\n(\d+)/60 done`)
	var seen string
	waitFor(t, 20*time.Second, "scrape status to show a running run with progress", func() bool {
		seen = status()
		m := live.FindStringSubmatch(seen)
		return m != nil && m[1] != "0"
	})
	var st coordinator.Status
	if err := json.Unmarshal([]byte(status("--json")), &st); err != nil || !st.Running || st.PID != cmd.Process.Pid {
		t.Errorf("status --json: %+v, %v", st, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	final := status()
	if !strings.Contains(final, ": finished\n60/60 done") {
		t.Errorf("after the run, status says:\n%s", final)
	}
}

// render plays terminal output onto a screen of lines, understanding what a
// progress bar uses: carriage return, newline, cursor up (CSI n A), clear to
// the end of the screen (CSI J) or line (CSI K). Other sequences are skipped.
func render(out string) []string {
	lines := []string{""}
	row, col := 0, 0
	put := func(r rune) {
		line := []rune(lines[row])
		for len(line) < col {
			line = append(line, ' ')
		}
		if col < len(line) {
			line[col] = r
		} else {
			line = append(line, r)
		}
		lines[row] = string(line)
		col++
	}
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; {
		case r == '\r':
			col = 0
		case r == '\n':
			row++
			col = 0
			if row == len(lines) {
				lines = append(lines, "")
			}
		case r == 0x1b && i+1 < len(rs) && rs[i+1] == '[':
			j := i + 2
			n := 0
			for j < len(rs) && (rs[j] >= '0' && rs[j] <= '9' || rs[j] == ';' || rs[j] == '?') {
				if rs[j] >= '0' && rs[j] <= '9' {
					n = n*10 + int(rs[j]-'0')
				}
				j++
			}
			if j == len(rs) {
				return lines
			}
			switch rs[j] {
			case 'A':
				row = max(0, row-max(n, 1))
			case 'J':
				lines = lines[:row+1]
				lines[row] = string([]rune(lines[row])[:min(col, len([]rune(lines[row])))])
			case 'K':
				lines[row] = string([]rune(lines[row])[:min(col, len([]rune(lines[row])))])
			}
			i = j
		case r < ' ':
		default:
			put(r)
		}
	}
	return lines
}
