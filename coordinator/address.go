package coordinator

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/scrape-cluster/scrape/machinefile"
)

// IsLocal reports whether a machinefile host is this machine, whose worker a
// run starts as a child process rather than over SSH.
func IsLocal(h machinefile.Host) bool { return isLocal(h) }

// isLocal reports whether a machinefile host is this machine, so its worker
// runs as a child process rather than over SSH. A host written with a user
// or a port is taken as a request for SSH, even to this machine.
func isLocal(h machinefile.Host) bool {
	if h.User != "" || h.Port != 0 {
		return false
	}
	name := strings.ToLower(strings.TrimSuffix(h.Name, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	if self, err := os.Hostname(); err == nil && strings.EqualFold(name, self) {
		return true
	}
	if ip, err := netip.ParseAddr(name); err == nil {
		return ip.IsLoopback() || isOwnAddr(ip)
	}
	return false
}

func isOwnAddr(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == ip {
			return true
		}
	}
	return false
}

// sshHostName asks ssh what address it would really connect to for dest, so
// Host aliases and HostName lines in the user's ~/.ssh/config are honoured
// when picking the address a worker should dial back.
func sshHostName(ctx context.Context, sshCmd []string, dest string, port int) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	args := append([]string{}, sshCmd[1:]...)
	if port != 0 {
		args = append(args, "-p", strconv.Itoa(port))
	}
	args = append(args, "-G", dest)
	out, err := exec.CommandContext(ctx, sshCmd[0], args...).Output()
	if err != nil {
		return hostOf(dest)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "hostname "); ok {
			return strings.TrimSpace(v)
		}
	}
	return hostOf(dest)
}

func hostOf(dest string) string {
	if i := strings.LastIndexByte(dest, '@'); i >= 0 {
		return dest[i+1:]
	}
	return dest
}

// routeAddr is this machine's own address on the route to host: the address
// a worker on that host can reach us at. No packet is sent; connecting a UDP
// socket only asks the kernel to pick a route.
func routeAddr(ctx context.Context, host string) (string, error) {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "udp", net.JoinHostPort(host, "9"))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// ListenAddr splits a --listen value into the host and port the run's
// queue listens on: all interfaces by default, port 0 for a free one.
func ListenAddr(listen string) (host string, port int, err error) { return splitListen(listen) }
