package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testbin"
	"github.com/scrape-cluster/scrape/internal/testcluster"
	"github.com/scrape-cluster/scrape/remote"
)

// TestClusterArm64NodeGetsItsOwnBuild runs over a node of this machine's CPU
// and a real arm64 node (its shell and everything it runs emulated by
// qemu-user): --push probes each for its platform and sends node1 this
// binary and node2 scrape-linux-arm64 from --push-dir, both fetch pages,
// and every input line is written once. TestClusterPushPerPlatformBuilds
// has an amd64 node pretend; here the arm64 build has to run.
func TestClusterArm64NodeGetsItsOwnBuild(t *testing.T) {
	c := testcluster.NewHosts(t, testcluster.HostSpec{}, testcluster.HostSpec{Arch: "arm64"}, testcluster.HostSpec{})
	arm64 := remote.Platform{OS: "linux", Arch: "arm64"}
	builds := t.TempDir()
	arm := filepath.Join(builds, arm64.BuildName())
	if err := os.Symlink(testbin.Cross(t, arm64), arm); err != nil {
		t.Fatal(err)
	}

	base := serveSiteIn(t, c.Hosts[2], 100)
	// Few pages, as emulation is slow, each slow enough that the arm64
	// worker, which takes a second or two to start under qemu, still finds
	// work when it asks. --remote-bin names nothing, so that a worker can
	// only be a pushed copy, not this binary through the shared file system.
	urls := slowURLs(base, 400, 24)
	r := startClusterRun(t, c, "node1\nnode2:2\n", urls, "--push", "--push-dir", builds, "--remote-bin", "/nonexistent/scrape")
	if code := r.wait(t, 3*time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s", code, r.stderr.String())
	}
	got := r.checkComplete(t)
	perNode := pagesPerNode(t, got)
	if perNode["node1"] == 0 || perNode["node2"] == 0 || len(perNode) != 2 {
		t.Errorf("pages per node %v, want some on node1 and node2 only", perNode)
	}

	// Each node's push cache holds its own build, under that build's hash,
	// and the run said which platform's build went where.
	stderr := r.stderr.String()
	for _, n := range []struct {
		host     *testcluster.Host
		build    string
		platform remote.Platform
	}{{c.Hosts[0], r.bin, remote.Own()}, {c.Hosts[1], arm, arm64}} {
		data, err := os.ReadFile(n.build)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		hash := hex.EncodeToString(sum[:])
		cached := filepath.Join(n.host.Home, ".cache", "scrape", hash[:16], "scrape")
		if on, err := os.ReadFile(cached); err != nil {
			t.Errorf("%s: no build in its cache: %v", n.host.Name, err)
		} else if sha256.Sum256(on) != sum {
			t.Errorf("%s: %s is not the build for %s", n.host.Name, cached, n.platform)
		}
		if want := "(" + n.platform.String() + ", " + hash[:12] + ") to " + n.host.Name + ":"; !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", "pushed ... "+want, stderr)
		}
	}
	t.Logf("%d pages in %s; per node %v", len(got), time.Since(r.start).Round(time.Millisecond), perNode)
}
