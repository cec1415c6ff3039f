package remote

import (
	"strings"
	"testing"
)

// The stderr samples are OpenSSH's own words (9.x), as BatchMode logins
// print them; the namespace-host tests of scrape check meet the real ones.
func TestClassify(t *testing.T) {
	changed := `@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Offending ED25519 key in /home/me/.ssh/known_hosts:3
Host key for pi4 has changed and you have requested strict checking.
Host key verification failed.
`
	for _, c := range []struct {
		name, stderr string
		kind         Kind
		said         string
	}{
		{"key refused", "root@10.213.4.2: Permission denied (publickey).\r\n", KeyRefused, "root@10.213.4.2: Permission denied (publickey)."},
		{"key refused, passwords allowed", "me@pi: Permission denied (publickey,password).\n", KeyRefused, "me@pi: Permission denied (publickey,password)."},
		{"password only", "me@pi: Permission denied (password).\n", PasswordOnly, "me@pi: Permission denied (password)."},
		{"host key changed", changed, HostKeyChanged, "Host key for pi4 has changed and you have requested strict checking."},
		{"host key unknown", "No ED25519 host key is known for node1 and you have requested strict checking.\nHost key verification failed.\n",
			HostKeyUnknown, "No ED25519 host key is known for node1 and you have requested strict checking."},
		{"host key, last line only", "Host key verification failed.", HostKey, "Host key verification failed."},
		{"relayed lines", "Offending key in x; Host key for pi4 has changed and you have requested strict checking.; Host key verification failed.",
			HostKeyChanged, "Host key for pi4 has changed and you have requested strict checking."},
		{"refused", "ssh: connect to host 10.213.4.3 port 22: Connection refused\n", Refused, "ssh: connect to host 10.213.4.3 port 22: Connection refused"},
		{"timeout", "ssh: connect to host 10.213.4.254 port 22: Connection timed out\n", Timeout, "ssh: connect to host 10.213.4.254 port 22: Connection timed out"},
		{"macOS timeout", "ssh: connect to host pi port 22: Operation timed out\n", Timeout, "ssh: connect to host pi port 22: Operation timed out"},
		{"no route", "ssh: connect to host 10.0.0.9 port 22: No route to host\n", Unreachable, "ssh: connect to host 10.0.0.9 port 22: No route to host"},
		{"no name", "ssh: Could not resolve hostname nosuch.invalid: Name or service not known\n", NoSuchHost, "ssh: Could not resolve hostname nosuch.invalid: Name or service not known"},
		{"hung up", "kex_exchange_identification: read: Connection reset by peer\nConnection reset by 10.0.0.2 port 22\n", Closed, "kex_exchange_identification: read: Connection reset by peer"},
		{"keepalive", "Timeout, server node3 not responding.\n", Lost, "Timeout, server node3 not responding."},
		{"key file", "Load key \"/home/me/.ssh/id_ed25519\": bad permissions\nme@pi: Permission denied (publickey).\n", BadKeyFile, `Load key "/home/me/.ssh/id_ed25519": bad permissions`},
		{"too many keys", "Received disconnect from 10.0.0.2 port 22:2: Too many authentication failures\n", KeyRefused, "Received disconnect from 10.0.0.2 port 22:2: Too many authentication failures"},
		{"silent", "", Lost, "exit status 255 and no message"},
		{"something else", "ssh: some new complaint\n", OtherSSH, "ssh: some new complaint"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := Classify(c.stderr)
			if p.Kind != c.kind || p.Said != c.said {
				t.Errorf("Classify = %s %q, want %s %q", p.Kind, p.Said, c.kind, c.said)
			}
			if c.kind != OtherSSH && p.Fix == "" {
				t.Errorf("%s has no fix", p.Kind)
			}
			if !strings.HasPrefix(p.String(), p.Said) {
				t.Errorf("String() = %q does not start with ssh's words", p.String())
			}
		})
	}
}

func TestProblemFor(t *testing.T) {
	p := Classify("me@pi: Permission denied (publickey).\n").For("me@pi")
	if !strings.Contains(p.Fix, "ssh-copy-id me@pi") || strings.Contains(p.Fix, "HOST") {
		t.Errorf("key refused for me@pi: %q", p.Fix)
	}
	p = Classify("Host key verification failed.\n").For("me@pi")
	if !strings.Contains(p.Fix, "ssh-keygen -R pi ") {
		t.Errorf("host key for me@pi: %q", p.Fix)
	}
}
