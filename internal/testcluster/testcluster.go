// Package testcluster builds a throwaway cluster for end-to-end tests: each
// host is its own network namespace with its own address and its own OpenSSH
// sshd, all joined by one bridge whose address in the root namespace is where
// the coordinator under test listens. The namespaces share the filesystem, so
// a binary built by the test has the same path on every host.
//
// Everything a cluster creates carries a random per-cluster id in its name and
// is recorded in a marker file under MarkerDir, so that Sweep can remove what
// a killed test process left behind without touching live clusters.
package testcluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// SSHD is the sshd binary every host runs.
	SSHD = "/usr/sbin/sshd"
	// RequireEnv, set to "1", turns a skip for lack of privileges or tools into
	// a failure, so that CI cannot silently skip the tier.
	RequireEnv = "SCRAPE_REQUIRE_NETNS"
	// HostPrefix names the hosts: node1, node2, ...
	HostPrefix = "node"
	// MaxHosts bounds n: host addresses are .2 to .MaxHosts+1 of the cluster's
	// /24, and UnusedAddr is .254.
	MaxHosts = 200

	// SetupTimeout bounds New as a whole.
	SetupTimeout = 60 * time.Second
	// CommandTimeout bounds each ip, ssh-keygen or ssh call the package makes.
	CommandTimeout = 10 * time.Second
	// SSHReadyTimeout bounds the wait for a freshly started sshd to accept
	// a real login.
	SSHReadyTimeout = 15 * time.Second
	// KillTimeout bounds the wait for killed processes to disappear.
	KillTimeout = 5 * time.Second
)

// Cluster is a set of namespace hosts on one bridge.
type Cluster struct {
	Hosts []*Host
	// SSHConfig is an ssh_config file with one Host block per host; pass it
	// with -F so the user's own ~/.ssh files are neither read nor written.
	SSHConfig string
	// BridgeAddr is the root namespace's address on the bridge: a server the
	// hosts must reach listens there.
	BridgeAddr string
	// ID is the random suffix carried by every name the cluster creates.
	ID string
	// Bridge is the name of the bridge in the root namespace.
	Bridge string
	// Subnet is the cluster's /24.
	Subnet netip.Prefix

	dir        string // private keys, configs, logs
	clientKey  string
	knownHosts string
	marker     string
	lock       *os.File // held on marker while the cluster lives
	logf       func(format string, args ...any)

	closeOnce sync.Once
	closeErr  error
}

// Available reports why the tier cannot run here, or "" if it can.
func Available() string {
	if os.Geteuid() != 0 {
		return "testcluster: needs root (network namespaces, bridges, sshd)"
	}
	if missing := missingCaps(); missing != "" {
		return "testcluster: missing capabilities " + missing
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "testcluster: no ip (iproute2) on PATH"
	}
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "list").CombinedOutput(); err != nil {
		return fmt.Sprintf("testcluster: ip netns does not work: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if _, err := os.Stat(SSHD); err != nil {
		return "testcluster: no " + SSHD + " (apt-get install openssh-server)"
	}
	for _, tool := range []string{"ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "testcluster: no " + tool + " on PATH (apt-get install openssh-client)"
		}
	}
	return ""
}

// New creates n hosts named node1..nodeN, each answering ssh, and removes
// them when the test ends. It skips the test when Available reports a
// problem, or fails it if RequireEnv is set to 1.
func New(t testing.TB, n int) *Cluster {
	t.Helper()
	return NewHosts(t, make([]HostSpec, n)...)
}

// NewHosts is New with a spec per host: node1 is hosts[0], and so on. A host
// of a foreign Arch needs ForeignAvailable too; where it reports a problem,
// the test skips, or fails if RequireEnv is set to 1 and the rest of the
// tier can run.
func NewHosts(t testing.TB, hosts ...HostSpec) *Cluster {
	t.Helper()
	n := len(hosts)
	skip := func(why string) {
		t.Helper()
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s (and %s=1)", why, RequireEnv)
		}
		t.Skip(why)
	}
	if why := Available(); why != "" {
		skip(why)
	}
	for _, h := range hosts {
		if h.Arch == "" {
			continue
		}
		if why := ForeignAvailable(h.Arch); why != "" {
			skip(why)
		}
	}
	if err := Sweep(); err != nil {
		t.Logf("testcluster: sweeping leftovers: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), SetupTimeout)
	defer cancel()
	start := time.Now()
	c, err := create(ctx, hosts, t.TempDir(), t.Logf)
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.logSSHD()
		}
		if err := c.Close(); err != nil {
			t.Errorf("testcluster: close: %v", err)
		}
	})
	t.Logf("testcluster %s: %d hosts on %s (bridge %s, %s) ready in %v",
		c.ID, n, c.Subnet, c.Bridge, c.BridgeAddr, time.Since(start).Round(time.Millisecond))
	return c
}

// create builds the cluster in dir. On error, whatever was built is removed.
func create(ctx context.Context, hosts []HostSpec, dir string, logf func(string, ...any)) (_ *Cluster, err error) {
	n := len(hosts)
	if n < 1 || n > MaxHosts {
		return nil, fmt.Errorf("want 1 to %d hosts, got %d", MaxHosts, n)
	}
	c := &Cluster{dir: dir, logf: logf}
	if err := c.reserve(ctx); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Close())
		}
	}()
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%s%d", HostPrefix, i)
		c.Hosts = append(c.Hosts, &Host{
			Name:    name,
			Addr:    c.hostAddr(i).String(),
			Netns:   netnsName(c.ID, name),
			Veth:    vethName(c.ID, i),
			Arch:    hosts[i-1].Arch,
			cluster: c,
		})
	}
	if err := c.createNetwork(ctx); err != nil {
		return nil, err
	}
	if err := c.startSSH(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// SSHCommand is the ssh client command line that reaches the hosts by name.
func (c *Cluster) SSHCommand() []string {
	return []string{"ssh", "-F", c.SSHConfig}
}

// Host returns the host with the given name, or nil.
func (c *Cluster) Host(name string) *Host {
	for _, h := range c.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// UnusedAddr is an address on the cluster's subnet that no interface has:
// connecting to it times out rather than being refused.
func (c *Cluster) UnusedAddr() string {
	return c.hostAddr(253).String()
}

// hostAddr is the i-th address after the bridge's (.1).
func (c *Cluster) hostAddr(i int) netip.Addr {
	a := c.Subnet.Addr().As4()
	a[3] = byte(1 + i)
	return netip.AddrFrom4(a)
}

// Close kills every process in the cluster's namespaces and deletes the
// namespaces, links and marker. It is idempotent.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		var errs []error
		for _, h := range c.Hosts {
			h.killStarted()
			if err := h.StopSSH(); err != nil {
				errs = append(errs, err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*KillTimeout+CommandTimeout)
		defer cancel()
		if err := destroy(ctx, c.ID, c.marker); err != nil {
			errs = append(errs, err)
		}
		if c.lock != nil {
			c.lock.Close()
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// logSSHD writes each sshd's stderr to the test log.
func (c *Cluster) logSSHD() {
	for _, h := range c.Hosts {
		if out := h.sshdOutput(); out != "" {
			c.logf("sshd on %s (%s):\n%s", h.Name, h.Addr, out)
		}
	}
}
