package machinefile

import (
	"net/netip"
	"strconv"
	"strings"
)

// Host is one machine of the cluster.
type Host struct {
	Name  string // host name or IP address as written, IPv6 without brackets: "node1", "10.0.0.5", "::1"
	User  string // "" when not given
	Port  int    // ssh port; 0 when not given, leaving it to ssh and ~/.ssh/config
	Slots int    // concurrent workers, 1 to MaxSlots
	Line  int    // line of the host's first appearance, 1-based
	// Proxies are the node's own proxy pool (proxy=URL, repeatable), in
	// place of the run's --proxy on that node.
	Proxies []string
	// Render is render=yes or render=no ("" when not given): whether the
	// node renders pages in a browser (--render). Unset, its worker
	// renders if it finds Chromium.
	Render string
}

// Values of Host.Render.
const (
	RenderYes = "yes"
	RenderNo  = "no"
)

// String returns the host in machinefile syntax, leaving out the slots:
// "node1", "bob@node1", "[::1]", "bob@node1 port=2222". Parsing it gives back
// the same Name, User and Port, so a host can be quoted in a message and
// pasted into a file.
func (h Host) String() string {
	var b strings.Builder
	if h.User != "" {
		b.WriteString(h.User)
		b.WriteByte('@')
	}
	if strings.Contains(h.Name, ":") {
		b.WriteByte('[')
		b.WriteString(h.Name)
		b.WriteByte(']')
	} else {
		b.WriteString(h.Name)
	}
	if h.Port != 0 {
		b.WriteString(" port=")
		b.WriteString(strconv.Itoa(h.Port))
	}
	return b.String()
}

// Destination is the argument to give ssh: "user@name" or "name". ssh wants
// IPv6 addresses without brackets here, and takes the port from -p, which the
// caller adds when Port is not 0.
func (h Host) Destination() string {
	if h.User == "" {
		return h.Name
	}
	return h.User + "@" + h.Name
}

// hostKey is what makes two lines the same host.
type hostKey struct {
	user, name string
	port       int
}

func (h Host) key() hostKey {
	// DNS names ignore case and IP addresses have many spellings; without
	// this, "Node1" and "node1" would get workers as if they were two
	// machines.
	name := strings.ToLower(h.Name)
	if a, err := netip.ParseAddr(h.Name); err == nil {
		name = a.String()
	}
	return hostKey{user: h.User, name: name, port: h.Port}
}
