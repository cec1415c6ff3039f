package remote

import "strings"

// Kind names what went wrong with ssh, for tests and --json.
type Kind string

const (
	KeyRefused     Kind = "key-refused"      // the node did not accept any key we offered
	PasswordOnly   Kind = "password-only"    // the node wants a password, which BatchMode never types
	HostKeyChanged Kind = "host-key-changed" // known_hosts holds another key for the node
	HostKeyUnknown Kind = "host-key-unknown" // known_hosts has no key for the node
	HostKey        Kind = "host-key"         // either of the two above; ssh did not say which
	BadKeyFile     Kind = "key-file"         // our own key or config file is unusable
	NoSuchHost     Kind = "no-such-host"     // the name does not resolve
	Refused        Kind = "refused"          // nothing listens on the ssh port
	Unreachable    Kind = "unreachable"      // no route to the host
	Timeout        Kind = "timeout"          // no answer: down, or a firewall drops ssh
	Closed         Kind = "closed"           // sshd hung up before a login
	Lost           Kind = "lost"             // an open session went silent or was cut
	OtherSSH       Kind = "ssh"              // none of the above
)

// Problem is why ssh failed, in ssh's own words, and the likely fix.
type Problem struct {
	Kind Kind   `json:"kind"`
	Said string `json:"ssh_said"` // the line of ssh's that tells
	Fix  string `json:"fix,omitempty"`
}

func (p Problem) String() string {
	if p.Fix == "" {
		return p.Said
	}
	return p.Said + " (" + p.Fix + ")"
}

// rules map a fragment of ssh's stderr to a problem. The first match wins,
// so the more telling fragments come first: a changed host key prints a
// banner before the "verification failed" line that every host key problem
// ends with.
var rules = []struct {
	frag string
	kind Kind
	fix  string
}{
	{"REMOTE HOST IDENTIFICATION HAS CHANGED", HostKeyChanged,
		"the node's host key is not the one in known_hosts: if the node was reinstalled, remove the old key with ssh-keygen -R HOST and log in once with ssh to check and accept the new one"},
	{"has changed and you have requested strict checking", HostKeyChanged,
		"the node's host key is not the one in known_hosts: if the node was reinstalled, remove the old key with ssh-keygen -R HOST and log in once with ssh to check and accept the new one"},
	{"host key is known for", HostKeyUnknown,
		"known_hosts has no key for the node: log in once with ssh to check and accept it, or add it with ssh-keyscan HOST >> ~/.ssh/known_hosts"},
	{"Host key verification failed", HostKey,
		"the node's host key is unknown or has changed: log in once with ssh to see which; ssh-keygen -R HOST removes an old key"},
	{"UNPROTECTED PRIVATE KEY FILE", BadKeyFile, "ssh ignores a private key others can read: chmod 600 it"},
	{"bad permissions", BadKeyFile, "ssh ignores a private key others can read: chmod 600 it"},
	{"Bad owner or permissions", BadKeyFile, "ssh refuses a config file others can write: chmod 600 it, owned by you"},
	{"Permission denied (password", PasswordOnly,
		"the node takes only passwords, which a batch login cannot type: install your public key there with ssh-copy-id USER@HOST"},
	{"Permission denied (keyboard-interactive", PasswordOnly,
		"the node takes only passwords, which a batch login cannot type: install your public key there with ssh-copy-id USER@HOST"},
	{"Permission denied", KeyRefused,
		"the node refused every key we offered: install your public key in its ~/.ssh/authorized_keys with ssh-copy-id USER@HOST, load it into ssh-agent if it has a passphrase, and check the user name, user@host in the machinefile"},
	{"Too many authentication failures", KeyRefused,
		"ssh offered too many keys before the right one: name it with IdentityFile and IdentitiesOnly yes in ~/.ssh/config"},
	{"Could not resolve hostname", NoSuchHost, "the name does not resolve: check the machinefile's host name, or give a HostName in ~/.ssh/config"},
	{"Name or service not known", NoSuchHost, "the name does not resolve: check the machinefile's host name, or give a HostName in ~/.ssh/config"},
	{"nodename nor servname", NoSuchHost, "the name does not resolve: check the machinefile's host name, or give a HostName in ~/.ssh/config"},
	{"Connection refused", Refused, "nothing listens for ssh there: is sshd running on the node, and is the port right? A machinefile line sets it with port=P"},
	{"No route to host", Unreachable, "the host is down or off this network: check its address and that it is up"},
	{"Network is unreachable", Unreachable, "no route to that network from here: check the address"},
	{"banner exchange", Timeout, "the host answered but sshd did not: it may be overloaded, or something else listens on the port"},
	{"Connection timed out", Timeout, "no answer: the host is down, or a firewall drops ssh on its port"},
	{"Operation timed out", Timeout, "no answer: the host is down, or a firewall drops ssh on its port"},
	{"kex_exchange_identification", Closed, "sshd hung up before the login: too many logins at once for sshd's MaxStartups, or the host's firewall or hosts.deny turns us away"},
	{"not responding", Lost, "the node stopped answering: it went down or off the network"},
	{"closed by remote host", Lost, "the node closed the session: sshd restarted, or the node is shutting down"},
	{"Connection reset", Lost, "the connection was cut: a firewall or the network dropped it"},
	{"Broken pipe", Lost, "the connection was cut: a firewall or the network dropped it"},
}

// For fills in the node's names in the fix: USER@HOST with dest as ssh was
// given it (host or user@host), HOST with its host part.
func (p Problem) For(dest string) Problem {
	host := dest
	if i := strings.LastIndexByte(dest, '@'); i >= 0 {
		host = dest[i+1:]
	}
	p.Fix = strings.ReplaceAll(strings.ReplaceAll(p.Fix, "USER@HOST", dest), "HOST", host)
	return p
}

// Classify reads ssh's stderr (all of it, or its last lines) after ssh
// failed, and says what the problem most likely is.
func Classify(stderr string) Problem {
	for _, r := range rules {
		if line := lineWith(stderr, r.frag); line != "" {
			said := line
			// The banner line of a changed key says less than the line
			// that names the host.
			if r.kind == HostKeyChanged {
				if l := lineWith(stderr, "Host key for"); l != "" {
					said = l
				}
			}
			return Problem{Kind: r.kind, Said: said, Fix: r.fix}
		}
	}
	said := lastLines(stderr, 1)
	if said == "" {
		// ssh says nothing when the remote command was killed by a
		// signal, or, below LogLevel INFO, when keepalives went unanswered.
		said = "exit status 255 and no message"
		return Problem{Kind: Lost, Said: said, Fix: "the remote command was killed, or the connection lost"}
	}
	return Problem{Kind: OtherSSH, Said: said}
}

// lineWith is the trimmed line of s that contains frag, or "". Lines may
// be joined by "; " (as relayed logs are) rather than newlines.
func lineWith(s, frag string) string {
	i := strings.Index(s, frag)
	if i < 0 {
		return ""
	}
	start, end := 0, len(s)
	if j := strings.LastIndexAny(s[:i], "\r\n"); j >= 0 {
		start = j + 1
	}
	if j := strings.LastIndex(s[:i], "; "); j >= 0 && j+2 > start {
		start = j + 2
	}
	if j := strings.IndexAny(s[i:], "\r\n"); j >= 0 {
		end = i + j
	}
	if j := strings.Index(s[i:end], "; "); j >= 0 {
		end = i + j
	}
	return strings.TrimSpace(s[start:end])
}
