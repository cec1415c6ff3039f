package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testbin"
	"github.com/scrape-cluster/scrape/internal/testcluster"
)

// BenchmarkClusterLatency is the latency-bound workload of bench/ (2,000
// pages, 100 ms of added latency each, 64 in flight) spread over three
// namespace hosts reached over real ssh: node1:22, node2:21 and node3:21, with
// the site on a fourth host. The harness in bench/ cannot build this case
// itself (internal/testcluster is internal to this module), so it lives here;
// it needs root, iproute2 and openssh-server, and skips without them.
//
//	go test ./cmd/scrape -run '^$' -bench ClusterLatency -benchtime 3x
//
// Each iteration is one whole run, start-up and shutdown included. It
// reports pages/s and the share of the ideal, 64 slots / 100 ms = 640
// pages/s.
func BenchmarkClusterLatency(b *testing.B) {
	const (
		pages   = 2000
		latency = 100 * time.Millisecond
		slots   = 64
	)
	c := testcluster.New(b, 4) // node4 only serves the site
	base := serveSiteInB(b, c.Hosts[3], pages)
	urls := slowURLs(base, int(latency/time.Millisecond), pages)
	dir := b.TempDir()
	mf := filepath.Join(dir, "machinefile")
	in := filepath.Join(dir, "urls.txt")
	if err := os.WriteFile(mf, []byte("node1:22\nnode2:21\nnode3:21\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(in, []byte(strings.Join(urls, "\n")+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	bin := testbin.Path(b)
	ideal := float64(slots) / latency.Seconds()

	var total time.Duration
	b.ResetTimer()
	for i := range b.N {
		out := filepath.Join(dir, fmt.Sprintf("out-%d.jsonl", i))
		start := time.Now()
		// As in bench/: a per-host limit above the slots, so that the
		// slots, not the politeness limit, bound the requests in flight.
		took, err := runOnce(b, c, bin, mf, in, out, 2*slots)
		if err != nil {
			b.Fatal(err)
		}
		n, first, last, err := summarize(out)
		if err != nil || n != pages {
			b.Fatalf("run %d: %d of %d pages ok (%v)", i+1, n, pages, err)
		}
		total += took
		var starts []string
		for _, node := range []string{"node1", "node2", "node3"} {
			starts = append(starts, fmt.Sprintf("%s %dms", node, first[node].Sub(start).Milliseconds()))
		}
		b.Logf("run %d: %d pages in %s, %.0f pages/s (%.0f%% of %.0f); first fetch: %s; last fetch done at %dms",
			i+1, pages, took.Round(time.Millisecond), pages/took.Seconds(), 100*pages/took.Seconds()/ideal, ideal,
			strings.Join(starts, ", "), last.Sub(start).Milliseconds())
	}
	b.StopTimer()
	rate := float64(b.N*pages) / total.Seconds()
	b.ReportMetric(rate, "pages/s")
	b.ReportMetric(100*rate/ideal, "%ideal")
}

// runOnce runs scrape run over the cluster's ssh and returns its wall time.
// A run still going after two minutes is killed, with its ssh clients.
func runOnce(b *testing.B, c *testcluster.Cluster, bin, mf, in, out string, perHost int) (time.Duration, error) {
	// --per-slot 1: each slot is one page in flight, as the baseline's
	// goroutines are, so that the ideal is slots / latency.
	cmd := exec.Command(bin, "run", "-f", mf, "-o", out, "-q", "--per-slot", "1",
		"--per-host", fmt.Sprint(perHost), "--ignore-robots", "--ssh", strings.Join(c.SSHCommand(), " "), in)
	cmd.Dir = b.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill() // ours, not yet reaped
		<-done
		for _, pid := range sshClients(c) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		err = errors.New("killed after 2m")
	}
	took := time.Since(start)
	if err != nil {
		return took, fmt.Errorf("scrape run: %v\n%s", err, stderr.String())
	}
	return took, nil
}

// serveSiteInB is serveSiteIn for a benchmark.
func serveSiteInB(b *testing.B, h *testcluster.Host, pages int) string {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	addr := net.JoinHostPort(h.Addr, sitePort)
	h.Start(b, exe, "-test.run=^TestHelperServeSite$", "-test.timeout=0", "--", helperServeSite, addr, fmt.Sprint(pages), os.DevNull)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			conn.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			b.Fatalf("the site on %s did not come up", h.Name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// summarize reads a JSON-lines output: the records without an error, the
// first fetch on each node, and when the last fetch ended.
func summarize(path string) (ok int, first map[string]time.Time, last time.Time, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, nil, last, err
	}
	first = map[string]time.Time{}
	for line := range bytes.Lines(data) {
		var r struct {
			Node       string          `json:"node"`
			FetchedAt  time.Time       `json:"fetched_at"`
			DurationMS int64           `json:"duration_ms"`
			Error      json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			return ok, first, last, err
		}
		if r.Error == nil {
			ok++
		}
		if f, seen := first[r.Node]; !seen || r.FetchedAt.Before(f) {
			first[r.Node] = r.FetchedAt
		}
		if end := r.FetchedAt.Add(time.Duration(r.DurationMS) * time.Millisecond); end.After(last) {
			last = end
		}
	}
	return ok, first, last, nil
}
