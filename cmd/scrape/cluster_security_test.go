package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/coordinator"
	"github.com/scrape-cluster/scrape/internal/testcluster"
	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/queue"
)

// TestClusterTrafficCarriesNoSecret records every byte between the
// coordinator and its workers on two namespace hosts, during a default run
// and during one with --no-tls. The queue listens on loopback and the
// workers are told to dial a tap on the bridge, which forwards to it: they
// can reach the queue no other way, so the tap sees all of their traffic.
// By default it holds no credential (no worker's key, nothing like a key,
// no password), and nothing of the run (no URL, no record field, no worker
// or run ID, no subject, no login): TLS from the first byte after INFO.
// With --no-tls it does read the run, which shows it would; and still no
// credential, as logins are signatures of the server's nonce.
func TestClusterTrafficCarriesNoSecret(t *testing.T) {
	c := testcluster.New(t, 3)
	base := serveSiteIn(t, c.Hosts[2], 100)
	for _, plain := range []bool{false, true} {
		name := map[bool]string{false: "default", true: "no-tls"}[plain]
		t.Run(name, func(t *testing.T) {
			l, err := net.Listen("tcp", net.JoinHostPort(c.BridgeAddr, "0"))
			if err != nil {
				t.Fatal(err)
			}
			_, port, _ := net.SplitHostPort(l.Addr().String())
			tap := tapOn(t, l, net.JoinHostPort("127.0.0.1", port))
			ssh, bootstraps := tapSSH(t, c)
			state := filepath.Join(t.TempDir(), "state")
			args := []string{"--listen", "127.0.0.1:" + port, "--advertise", c.BridgeAddr, "--state", state, "--ssh", ssh}
			if plain {
				args = append(args, "--no-tls")
			}
			urls := slowURLs(base, 20, 100)
			r := startClusterRun(t, c, "node1:2\nnode2:2\n", urls, args...)
			boots := bootstraps(2)
			joinSeed, err := os.ReadFile(filepath.Join(state, coordinator.JoinKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			if code := r.wait(t, time.Minute); code != 0 {
				t.Fatalf("exit %d\n%s", code, r.stderr)
			}
			perNode := map[string]int{}
			for _, rec := range r.checkComplete(t) {
				perNode[rec.Node]++
			}
			if perNode["node1"] == 0 || perNode["node2"] == 0 {
				t.Errorf("pages per node %v: both hosts' workers should have worked through the tap", perNode)
			}

			seen := tap.String()
			t.Logf("the tap saw %d bytes", len(seen))
			if !strings.HasPrefix(seen, "INFO {") || strings.Contains(seen, `"tls_required":true`) == plain {
				t.Fatalf("the tap saw no INFO, or one with tls_required %v: %.300q", !plain, seen)
			}
			secrets := map[string]string{
				"the join key": strings.TrimSpace(string(joinSeed)),
				"a password":   `"pass":`,
				"a token":      `"auth_token":`,
			}
			for _, b := range boots {
				secrets["the key of "+b.Node] = b.NKeySeed
			}
			for what, s := range secrets {
				if strings.Contains(seen, s) {
					t.Errorf("the tap read %s", what)
				}
			}
			if m := secretLike.FindString(seen); m != "" {
				t.Errorf("the tap read something like a key: %.8q...", m)
			}
			// What the run is about, which only TLS hides.
			run := queue.Run{ID: boots[0].Run}
			private := []string{
				urls[7], "/slow/20/", // an input URL, its path
				boots[0].Worker, boots[1].Worker, run.ID, // who works for which run
				"CONNECT {", queue.HeaderResults, run.TaskSubject(), // the protocol
			}
			for _, s := range private {
				if strings.Contains(seen, s) != plain {
					t.Errorf("with --no-tls=%v, the tap %s %q", plain, map[bool]string{true: "did not read", false: "read"}[plain], s)
				}
			}
			// A record's description: results travel compressed
			// (queue.Compress), so even --no-tls shows it only in part.
			if !plain && strings.Contains(seen, testsite.Description(7)) {
				t.Errorf("the tap read a record's description")
			}
		})
	}
}

// dialed matches the coordinator's -v line for a worker it started: the
// address of the queue the worker was told to dial.
var dialed = regexp.MustCompile(`msg="worker ready" .*dial=(?:tls|nats)://([^ \n]+)`)

// TestClusterQueueExposure: --no-tls with a node that is not this machine
// warns that the run crosses the network in clear, and a default run with
// the same node does not; a run on this machine alone listens on loopback
// only, so that neither this machine's other addresses nor a host of the
// cluster reach its queue, while loopback does.
func TestClusterQueueExposure(t *testing.T) {
	c := testcluster.New(t, 1)
	_, base := serveOn(t, c.BridgeAddr, 40)
	const warning = "warning: the queue serves without TLS"
	for _, tt := range []struct {
		name, mf string
		extra    []string
		warns    bool
	}{
		{"--no-tls with a remote node", "node1:2\n", []string{"--no-tls"}, true},
		{"default with a remote node", "node1:2\n", nil, false},
		{"--no-tls on this machine alone", "localhost:2\n", []string{"--no-tls"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := startClusterRun(t, c, tt.mf, slowURLs(base, 10, 10), tt.extra...)
			if code := r.wait(t, time.Minute); code != 0 {
				t.Fatalf("exit %d\n%s", code, r.stderr)
			}
			r.checkComplete(t)
			if got := strings.Contains(r.stderr.String(), warning); got != tt.warns {
				t.Errorf("warned %v, want %v:\n%s", got, tt.warns, r.stderr)
			}
		})
	}

	t.Run("this machine alone listens on loopback", func(t *testing.T) {
		// 40 pages of 200 ms on two slots: 4 s to look at the queue.
		r := startClusterRun(t, c, "localhost:2\n", slowURLs(base, 200, 40), "-v")
		var addr string
		waitFor(t, 30*time.Second, "the worker's dial address", func() bool {
			if m := dialed.FindStringSubmatch(r.stderr.String()); m != nil {
				addr = m[1]
			}
			return addr != ""
		})
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("the local worker dials %q, want 127.0.0.1", addr)
		}
		// Loopback reaches the queue: the port is the right one.
		if _, err := readInfo(addr); err != nil {
			t.Fatalf("the queue on %s: %v", addr, err)
		}
		others := []string{c.BridgeAddr}
		ifaddrs, err := net.InterfaceAddrs()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range ifaddrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() && !slices.Contains(others, ipn.IP.String()) {
				others = append(others, ipn.IP.String())
			}
		}
		for _, ip := range others {
			conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip, port), 2*time.Second)
			if err == nil {
				conn.Close()
				t.Errorf("the queue answers on %s", net.JoinHostPort(ip, port))
			}
		}
		// And from a host of the cluster, as another machine would try.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		probe := fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", c.BridgeAddr, port)
		if out, err := c.Hosts[0].Command(ctx, "bash", "-c", probe).CombinedOutput(); err == nil {
			t.Errorf("node1 connected to the queue on %s:%s", c.BridgeAddr, port)
		} else {
			t.Logf("node1 to %s:%s: %v %s", c.BridgeAddr, port, err, strings.TrimSpace(string(out)))
		}
		select {
		case <-r.done:
			t.Fatal("the run ended before the queue was looked at; nothing was proved")
		default:
		}
		if code := r.wait(t, time.Minute); code != 0 {
			t.Fatalf("exit %d\n%s", code, r.stderr)
		}
		r.checkComplete(t)
		t.Logf("queue on %s, refused on %v", addr, others)
	})
}
