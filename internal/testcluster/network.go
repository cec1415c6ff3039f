package testcluster

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

const (
	// DefaultRange is carved into one /24 per cluster. It must not be used
	// by anything else on the machine; New fails if a route or address
	// outside this package's bridges overlaps it.
	DefaultRange = "10.213.0.0/16"
	// RangeEnv overrides DefaultRange, for a machine where it clashes.
	RangeEnv = "SCRAPE_NETNS_RANGE"

	// namePrefix starts every bridge, veth and namespace name. An id of six
	// hex digits follows: bridge sct<id>b, root end of host i's veth
	// sct<id>h<i> (at most 15 bytes, the limit of a Linux interface name),
	// namespace sct<id>-<host>. Inside a namespace, the other end is eth0.
	namePrefix = "sct"
	// peerName is the host's end of its veth, inside its namespace.
	peerName = "eth0"
	netnsDir = "/run/netns"
	// etcDir holds, per namespace, files that ip netns exec mounts over
	// /etc for the processes it starts there (ip-netns(8)).
	etcDir = "/etc/netns"
)

var (
	linkRE  = regexp.MustCompile(`^` + namePrefix + `([0-9a-f]{6})(b|h[0-9]+)$`)
	netnsRE = regexp.MustCompile(`^` + namePrefix + `([0-9a-f]{6})-`)
)

func bridgeName(id string) string      { return namePrefix + id + "b" }
func vethName(id string, i int) string { return fmt.Sprintf("%s%sh%d", namePrefix, id, i) }
func netnsName(id, host string) string { return namePrefix + id + "-" + host }
func netnsPath(name string) string     { return netnsDir + "/" + name }

// ipCmd runs ip with args.
func ipCmd(ctx context.Context, args ...string) error {
	_, err := run(ctx, "ip", args...)
	return err
}

// idOf is the cluster id in a link or namespace name of ours, or "".
func idOf(name string) string {
	if m := linkRE.FindStringSubmatch(name); m != nil {
		return m[1]
	}
	if m := netnsRE.FindStringSubmatch(name); m != nil {
		return m[1]
	}
	return ""
}

// run runs a command with CommandTimeout and returns its output, or an error
// that includes the output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// newID is a random id of six hex digits.
func newID() string {
	var b [3]byte
	_, _ = rand.Read(b[:]) // never fails on Linux
	return fmt.Sprintf("%x", b)
}

// addrRange is the prefix clusters carve their /24s from.
func addrRange() (netip.Prefix, error) {
	s := DefaultRange
	if v := os.Getenv(RangeEnv); v != "" {
		s = v
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p.Bits() > 24 || p.Bits() < 8 {
		return netip.Prefix{}, fmt.Errorf("%s=%q: want an IPv4 prefix from /8 to /24", RangeEnv, s)
	}
	return p.Masked(), nil
}

// checkRange fails if a route or address of the root namespace that is not
// on one of our bridges overlaps rng: a cluster's routes would then shadow
// (or be shadowed by) something real. Default routes do not count.
func checkRange(ctx context.Context, rng netip.Prefix) error {
	out, err := run(ctx, "ip", "-j", "-4", "route", "show", "table", "all")
	if err != nil {
		return err
	}
	var routes []struct {
		Dst string `json:"dst"`
		Dev string `json:"dev"`
	}
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		return fmt.Errorf("parse ip route: %w", err)
	}
	var clashes []string
	for _, r := range routes {
		if r.Dst == "default" || idOf(r.Dev) != "" {
			continue
		}
		p, err := netip.ParsePrefix(r.Dst)
		if err != nil {
			a, err := netip.ParseAddr(r.Dst)
			if err != nil {
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Bits() > 0 && p.Overlaps(rng) {
			clashes = append(clashes, fmt.Sprintf("route %s dev %s", r.Dst, r.Dev))
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return err
	}
	for _, ifc := range ifaces {
		if idOf(ifc.Name) != "" {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(ipn.IP.To4()); ok && rng.Contains(ip) {
				clashes = append(clashes, fmt.Sprintf("address %s on %s", ipn, ifc.Name))
			}
		}
	}
	if len(clashes) > 0 {
		return fmt.Errorf("address range %s is already in use here (%s); set %s to a free private range",
			rng, strings.Join(clashes, "; "), RangeEnv)
	}
	return nil
}

// createNetwork builds the bridge and, for each host, its namespace and veth.
func (c *Cluster) createNetwork(ctx context.Context) error {
	mac := make([]byte, 6)
	_, _ = rand.Read(mac)
	mac[0] = mac[0]&0xfe | 0x02 // unicast, locally administered
	// A fixed address keeps the bridge's MAC from changing as ports join,
	// which would leave stale ARP entries on the hosts.
	steps := [][]string{
		{"link", "add", c.Bridge, "address", net.HardwareAddr(mac).String(), "type", "bridge"},
		{"addr", "add", c.BridgeAddr + "/24", "dev", c.Bridge},
		{"link", "set", c.Bridge, "up"},
	}
	for _, s := range steps {
		if err := ipCmd(ctx, s...); err != nil {
			return err
		}
	}
	for _, h := range c.Hosts {
		if err := ipCmd(ctx, "netns", "add", h.Netns); err != nil {
			return err
		}
		if err := c.writeAccount(h); err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
		ino, err := nsInode(netnsPath(h.Netns))
		if err != nil {
			return err
		}
		h.netnsIno = ino
		steps := [][]string{
			{"-n", h.Netns, "link", "set", "lo", "up"},
			{"link", "add", h.Veth, "type", "veth", "peer", "name", peerName, "netns", h.Netns},
			{"link", "set", h.Veth, "master", c.Bridge, "up"},
			{"-n", h.Netns, "addr", "add", h.Addr + "/24", "dev", peerName},
			{"-n", h.Netns, "link", "set", peerName, "up"},
		}
		for _, s := range steps {
			if err := ipCmd(ctx, s...); err != nil {
				return fmt.Errorf("host %s: %w", h.Name, err)
			}
		}
	}
	return nil
}

// writeAccount gives the host an account database of its own, in which the
// user the tests log in as has an empty home of its own. Without it, every
// session would run the shell start-up files of this machine's own account:
// whatever its owner put there (a pyenv init, say, whose rehash lock a
// session killed by a test leaves behind, stalling every later login for a
// minute). Separate machines have separate homes, too. A foreign host's user
// has its foreign shell (foreign.go).
func (c *Cluster) writeAccount(h *Host) error {
	h.Home = filepath.Join(c.dir, "home-"+h.Name)
	if err := os.Mkdir(h.Home, 0o700); err != nil {
		return err
	}
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return err
	}
	shell, err := c.loginShell(h)
	if err != nil {
		return err
	}
	uid := strconv.Itoa(os.Geteuid())
	var b strings.Builder
	for line := range strings.Lines(string(passwd)) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), ":")
		if len(f) == 7 && f[2] == uid {
			f[5] = h.Home
			if shell != "" {
				f[6] = shell
			}
			line = strings.Join(f, ":") + "\n"
		}
		b.WriteString(line)
	}
	dir := filepath.Join(etcDir, h.Netns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "passwd"), []byte(b.String()), 0o644)
}

// ourLinks lists the root namespace's links named by this package.
func ourLinks() []string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var names []string
	for _, ifc := range ifaces {
		if linkRE.MatchString(ifc.Name) {
			names = append(names, ifc.Name)
		}
	}
	return names
}

// ourNetns lists the named network namespaces made by this package.
func ourNetns() []string { return ourNames(netnsDir) }

// ourEtc lists the namespaces' /etc files made by this package.
func ourEtc() []string { return ourNames(etcDir) }

// ourNames lists the entries of dir named like this package's namespaces.
func ourNames(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if netnsRE.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names
}
