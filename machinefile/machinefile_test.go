package machinefile

import (
	"errors"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// parseCases is also the seed corpus of FuzzParse.
var parseCases = []struct {
	name string
	in   string
	want []Host
	// On failure: the sentinel, and the ParseError's Line and Text.
	err  error
	line int
	text string
}{
	// MPICH
	{name: "bare name", in: "node1\n",
		want: []Host{{Name: "node1", Slots: 1, Line: 1}}},
	{name: "name with slots", in: "node1:4\n",
		want: []Host{{Name: "node1", Slots: 4, Line: 1}}},
	{name: "no final newline", in: "node1:4",
		want: []Host{{Name: "node1", Slots: 4, Line: 1}}},
	{name: "slot count with leading zero", in: "node1:04",
		want: []Host{{Name: "node1", Slots: 4, Line: 1}}},
	{name: "most slots", in: "node1:1000000",
		want: []Host{{Name: "node1", Slots: MaxSlots, Line: 1}}},
	{name: "fully qualified name", in: "node-1.rack_2.example.org.",
		want: []Host{{Name: "node-1.rack_2.example.org.", Slots: 1, Line: 1}}},
	{name: "digits in labels", in: "1node.example.org:2",
		want: []Host{{Name: "1node.example.org", Slots: 2, Line: 1}}},
	{name: "IPv4", in: "10.0.0.5:2",
		want: []Host{{Name: "10.0.0.5", Slots: 2, Line: 1}}},
	{name: "IPv6 in brackets", in: "[::1]",
		want: []Host{{Name: "::1", Slots: 1, Line: 1}}},
	{name: "IPv6 in brackets with slots", in: "[::1]:2",
		want: []Host{{Name: "::1", Slots: 2, Line: 1}}},
	{name: "IPv6 with zone", in: "[fe80::1%eth0]:3",
		want: []Host{{Name: "fe80::1%eth0", Slots: 3, Line: 1}}},
	{name: "bare IPv6", in: "fe80::1",
		want: []Host{{Name: "fe80::1", Slots: 1, Line: 1}}},
	{name: "bare IPv6 is all address", in: "::1:4",
		want: []Host{{Name: "::1:4", Slots: 1, Line: 1}}},
	{name: "comments blanks and spaces", in: "# cluster\n\n  node1:2   # rack 1\n\t\n#node2\nnode3 #x#y\n",
		want: []Host{{Name: "node1", Slots: 2, Line: 3}, {Name: "node3", Slots: 1, Line: 6}}},
	{name: "CRLF and byte order mark", in: "\uFEFFnode1:2\r\nnode2\r\n",
		want: []Host{{Name: "node1", Slots: 2, Line: 1}, {Name: "node2", Slots: 1, Line: 2}}},
	{name: "zero slots", in: "node1:0", err: ErrSlots, line: 1, text: "node1:0"},
	{name: "negative slots", in: "node1:-1", err: ErrSlots, line: 1, text: "node1:-1"},
	{name: "signed slots", in: "node1:+1", err: ErrSlots, line: 1, text: "node1:+1"},
	{name: "non-numeric slots", in: "node1\nnode1:x", err: ErrSlots, line: 2, text: "node1:x"},
	{name: "empty slots", in: "node1:", err: ErrSlots, line: 1, text: "node1:"},
	{name: "too many slots", in: "node1:1000001", err: ErrSlots, line: 1, text: "node1:1000001"},
	{name: "huge slots", in: "node1:99999999999999999999999", err: ErrSlots, line: 1, text: "node1:99999999999999999999999"},
	{name: "space in name", in: "no de", err: ErrOption, line: 1, text: "de"},
	{name: "slash in name", in: "a/b", err: ErrHost, line: 1, text: "a/b"},
	{name: "leading dash", in: "-x", err: ErrHost, line: 1, text: "-x"},
	{name: "option as name", in: "-oProxyCommand=sh", err: ErrHost, line: 1, text: "-oProxyCommand=sh"},
	{name: "label ends in dash", in: "node-.example.org", err: ErrHost, line: 1, text: "node-.example.org"},
	{name: "empty label", in: "node1..org", err: ErrHost, line: 1, text: "node1..org"},
	{name: "long label", in: strings.Repeat("a", 64), err: ErrHost, line: 1, text: strings.Repeat("a", 64)},
	{name: "non-ASCII name", in: "nöde", err: ErrHost, line: 1, text: "nöde"},
	{name: "short IPv4", in: "10.1", err: ErrHost, line: 1, text: "10.1"},
	{name: "IPv4 out of range", in: "10.0.0.256", err: ErrHost, line: 1, text: "10.0.0.256"},
	{name: "IPv4 in brackets", in: "[10.0.0.1]", err: ErrHost, line: 1, text: "[10.0.0.1]"},
	{name: "unclosed bracket", in: "[::1:2", err: ErrHost, line: 1, text: "[::1:2"},
	{name: "text after bracket", in: "[::1]x", err: ErrHost, line: 1, text: "[::1]x"},
	{name: "bad IPv6 slots", in: "[::1]:0", err: ErrSlots, line: 1, text: "[::1]:0"},
	{name: "bad zone", in: "[fe80::1%a/b]", err: ErrHost, line: 1, text: "[fe80::1%a/b]"},
	{name: "bare IPv6 with slots", in: "fe80::1:x", err: ErrHost, line: 1, text: "fe80::1:x"},
	{name: "only a colon in a name", in: ":4", err: ErrHost, line: 1, text: ":4"},

	// Open MPI
	{name: "slots option", in: "node1 slots=4",
		want: []Host{{Name: "node1", Slots: 4, Line: 1}}},
	{name: "max_slots ignored", in: "node1 slots=2 max_slots=8",
		want: []Host{{Name: "node1", Slots: 2, Line: 1}}},
	{name: "max_slots alone", in: "node1 max_slots=0",
		want: []Host{{Name: "node1", Slots: 1, Line: 1}}},
	{name: "IPv6 with slots option", in: "fe80::1 slots=2",
		want: []Host{{Name: "fe80::1", Slots: 2, Line: 1}}},
	{name: "slots twice", in: "node1:2 slots=4", err: ErrSlots, line: 1, text: "slots=4"},
	{name: "slots option twice", in: "node1 slots=2 slots=2", err: ErrSlots, line: 1, text: "slots=2"},
	{name: "bad slots option", in: "node1 slots=four", err: ErrSlots, line: 1, text: "slots=four"},
	{name: "zero slots option", in: "node1 slots=0", err: ErrSlots, line: 1, text: "slots=0"},
	{name: "bad max_slots", in: "node1 max_slots=x", err: ErrSlots, line: 1, text: "max_slots=x"},
	{name: "max_slots twice", in: "node1 max_slots=2 max_slots=3", err: ErrOption, line: 1, text: "max_slots=3"},
	{name: "unknown option", in: "node1 cpus=4", err: ErrOption, line: 1, text: "cpus=4"},
	{name: "option keys are lower case", in: "node1 Slots=4", err: ErrOption, line: 1, text: "Slots=4"},
	{name: "stray word", in: "node1 node2", err: ErrOption, line: 1, text: "node2"},
	{name: "option without host", in: "slots=4", err: ErrHost, line: 1, text: "slots=4"},

	// users
	{name: "user", in: "bob@node1",
		want: []Host{{Name: "node1", User: "bob", Slots: 1, Line: 1}}},
	{name: "user with slots", in: "bob@node1:2",
		want: []Host{{Name: "node1", User: "bob", Slots: 2, Line: 1}}},
	{name: "user with IPv6", in: "bob@[::1]:2",
		want: []Host{{Name: "::1", User: "bob", Slots: 2, Line: 1}}},
	{name: "user with bare IPv6", in: "b.o_b-1@::1",
		want: []Host{{Name: "::1", User: "b.o_b-1", Slots: 1, Line: 1}}},
	{name: "empty user", in: "@node1", err: ErrUser, line: 1, text: "@node1"},
	{name: "user leading dash", in: "-l@node1", err: ErrUser, line: 1, text: "-l@node1"},
	{name: "two at signs", in: "a@b@node1", err: ErrUser, line: 1, text: "a@b@node1"},
	{name: "user without host", in: "bob@", err: ErrHost, line: 1, text: "bob@"},
	{name: "user on local machine", in: "bob@:", err: ErrHost, line: 1, text: "bob@:"},

	// ports
	{name: "port option", in: "node1 port=2222",
		want: []Host{{Name: "node1", Port: 2222, Slots: 1, Line: 1}}},
	{name: "port option with everything", in: "bob@node1:3 port=2222 max_slots=4",
		want: []Host{{Name: "node1", User: "bob", Port: 2222, Slots: 3, Line: 1}}},
	{name: "ssh URL", in: "ssh://node1",
		want: []Host{{Name: "node1", Slots: 1, Line: 1}}},
	{name: "ssh URL with port", in: "ssh://bob@node1:2222 slots=3",
		want: []Host{{Name: "node1", User: "bob", Port: 2222, Slots: 3, Line: 1}}},
	{name: "ssh URL with IPv6", in: "ssh://[::1]:22",
		want: []Host{{Name: "::1", Port: 22, Slots: 1, Line: 1}}},
	{name: "ssh URL with jobs", in: "4/ssh://bob@[fe80::1%eth0]",
		want: []Host{{Name: "fe80::1%eth0", User: "bob", Slots: 4, Line: 1}}},
	{name: "ssh URL scheme in capitals", in: "SSH://node1:22",
		want: []Host{{Name: "node1", Port: 22, Slots: 1, Line: 1}}},
	{name: "port zero", in: "node1 port=0", err: ErrPort, line: 1, text: "port=0"},
	{name: "port too large", in: "node1 port=65536", err: ErrPort, line: 1, text: "port=65536"},
	{name: "port twice", in: "node1 port=22 port=22", err: ErrPort, line: 1, text: "port=22"},
	{name: "two colons", in: "bob@node1:22:4", err: ErrPort, line: 1, text: "bob@node1:22:4"},
	{name: "ssh URL port and option", in: "ssh://node1:22 port=2222", err: ErrPort, line: 1, text: "port=2222"},
	{name: "ssh URL bad port", in: "ssh://node1:ssh", err: ErrPort, line: 1, text: "ssh://node1:ssh"},
	{name: "ssh URL empty port", in: "ssh://node1:", err: ErrPort, line: 1, text: "ssh://node1:"},
	{name: "ssh URL port and slots", in: "ssh://node1:22:4", err: ErrPort, line: 1, text: "ssh://node1:22:4"},
	{name: "ssh URL bare IPv6", in: "ssh://fe80::1", err: ErrHost, line: 1, text: "ssh://fe80::1"},
	{name: "ssh URL path", in: "ssh://node1/", err: ErrHost, line: 1, text: "ssh://node1/"},
	{name: "ssh URL without host", in: "ssh://", err: ErrHost, line: 1, text: "ssh://"},
	{name: "ssh URL password", in: "ssh://bob:pw@node1", err: ErrUser, line: 1, text: "ssh://bob:pw@node1"},
	{name: "ssh URL text after bracket", in: "ssh://[::1]x", err: ErrHost, line: 1, text: "ssh://[::1]x"},

	// GNU parallel
	{name: "jobs", in: "8/node1",
		want: []Host{{Name: "node1", Slots: 8, Line: 1}}},
	{name: "jobs with user", in: "8/bob@node1",
		want: []Host{{Name: "node1", User: "bob", Slots: 8, Line: 1}}},
	{name: "local machine", in: ":",
		want: []Host{{Name: "localhost", Slots: 1, Line: 1}}},
	{name: "local machine with jobs", in: "4/:",
		want: []Host{{Name: "localhost", Slots: 4, Line: 1}}},
	{name: "local machine with port", in: ": port=2222",
		want: []Host{{Name: "localhost", Port: 2222, Slots: 1, Line: 1}}},
	{name: "zero jobs", in: "0/node1", err: ErrSlots, line: 1, text: "0/node1"},
	{name: "negative jobs", in: "-1/node1", err: ErrSlots, line: 1, text: "-1/node1"},
	{name: "jobs without host", in: "4/", err: ErrHost, line: 1, text: "4/"},
	{name: "jobs twice", in: "4/4/node1", err: ErrHost, line: 1, text: "4/4/node1"},
	{name: "jobs and MPICH slots", in: "4/node1:2", err: ErrSlots, line: 1, text: "4/node1:2"},
	{name: "jobs and slots option", in: "4/node1 slots=2", err: ErrSlots, line: 1, text: "slots=2"},

	// repeats
	{name: "repeats add up", in: "node1:2\nnode2\nnode1 slots=3\n4/node1",
		want: []Host{{Name: "node1", Slots: 9, Line: 1}, {Name: "node2", Slots: 1, Line: 2}}},
	{name: "repeats ignore case", in: "Node1\nnode1",
		want: []Host{{Name: "Node1", Slots: 2, Line: 1}}},
	{name: "repeats compare addresses", in: "[::0:1]\n::1:2\n::1",
		want: []Host{{Name: "::0:1", Slots: 2, Line: 1}, {Name: "::1:2", Slots: 1, Line: 2}}},
	{name: "local machine repeats localhost", in: "localhost:2\n:",
		want: []Host{{Name: "localhost", Slots: 3, Line: 1}}},
	{name: "user and port tell hosts apart", in: "node1\nbob@node1\nnode1 port=22\nalice@node1\nbob@node1",
		want: []Host{
			{Name: "node1", Slots: 1, Line: 1},
			{Name: "node1", User: "bob", Slots: 2, Line: 2},
			{Name: "node1", Port: 22, Slots: 1, Line: 3},
			{Name: "node1", User: "alice", Slots: 1, Line: 4},
		}},
	{name: "repeats too many slots", in: "node1:1000000\nnode1", err: ErrSlots, line: 2, text: "node1"},

	// files as a whole
	{name: "empty", in: "", err: ErrEmpty},
	{name: "only comments", in: "# none yet\n\n   \r\n", err: ErrEmpty},
	{name: "byte order mark only at the start", in: "node1\n\uFEFFnode2", err: ErrHost, line: 2, text: "\uFEFFnode2"},
	{name: "lone CR splits no lines", in: "node1\rnode2\r", err: ErrOption, line: 1, text: "node2"},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse("hosts.txt", strings.NewReader(tc.in))
			if tc.err == nil {
				if err != nil {
					t.Fatalf("Parse(%q): %v", tc.in, err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("Parse(%q)\n got %#v\nwant %#v", tc.in, got, tc.want)
				}
				return
			}
			checkParseError(t, err, tc.err, tc.line, tc.text)
			if got != nil {
				t.Errorf("Parse(%q) returned hosts %#v along with its error", tc.in, got)
			}
		})
	}
}

func checkParseError(t *testing.T, err, want error, line int, text string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ParseError", err, err)
	}
	if pe.File != "hosts.txt" || pe.Line != line || pe.Text != text {
		t.Errorf("error at %s:%d %q, want hosts.txt:%d %q", pe.File, pe.Line, pe.Text, line, text)
	}
}

func TestParseErrorMessage(t *testing.T) {
	_, err := Parse("hosts.txt", strings.NewReader("node0\n\nnode1:x\n"))
	const want = `hosts.txt:3: "node1:x": invalid slot count`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
}

func TestParseLineLength(t *testing.T) {
	// A comment pads the line, so that its length alone decides.
	line := func(n int) string {
		t.Helper()
		const host = "node1 #"
		return host + strings.Repeat("x", n-len(host))
	}
	for _, tc := range []struct {
		name string
		in   string
		err  bool
	}{
		{name: "longest line", in: "node0\n" + line(MaxLineLength) + "\n"},
		{name: "longest line CRLF", in: "node0\r\n" + line(MaxLineLength) + "\r\n"},
		{name: "longest line at end", in: "node0\n" + line(MaxLineLength)},
		{name: "one byte over", in: "node0\n" + line(MaxLineLength+1) + "\n", err: true},
		{name: "one byte over at end", in: "node0\n" + line(MaxLineLength+1), err: true},
		{name: "far over", in: "node0\n" + line(10*MaxLineLength) + "\nnode2\n", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse("hosts.txt", strings.NewReader(tc.in))
			if !tc.err {
				want := []Host{{Name: "node0", Slots: 1, Line: 1}, {Name: "node1", Slots: 1, Line: 2}}
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("got %#v, %v; want %#v", got, err, want)
				}
				return
			}
			checkParseError(t, err, ErrLineTooLong, 2, "node1 #"+strings.Repeat("x", 25)+"...")
		})
	}
}

func TestParseReadError(t *testing.T) {
	broken := errors.New("disk on fire")
	_, err := Parse("hosts.txt", iotest.DataErrReader(iotest.ErrReader(broken)))
	if !errors.Is(err, broken) {
		t.Fatalf("error %v, want one wrapping %v", err, broken)
	}
	var pe *ParseError
	if errors.As(err, &pe) {
		t.Errorf("read error %v reported as a syntax error", err)
	}
}

func TestParseFile(t *testing.T) {
	got, err := ParseFile("testdata/cluster.machinefile")
	if err != nil {
		t.Fatal(err)
	}
	want := []Host{
		{Name: "localhost", Slots: 2, Line: 2},
		{Name: "node1", Slots: 9, Line: 3},
		{Name: "node2", User: "scrape", Slots: 4, Line: 4},
		{Name: "node3", Port: 2222, Slots: 4, Line: 5},
		{Name: "10.0.0.7", Slots: 1, Line: 6},
		{Name: "fd00::7", Slots: 2, Line: 7},
		{Name: "node4", User: "scrape", Port: 2200, Slots: 16, Line: 8},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}

	_, err = ParseFile("testdata/missing")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: error %v, want fs.ErrNotExist", err)
	}
}

func TestHostString(t *testing.T) {
	for _, tc := range []struct {
		host      Host
		str, dest string
	}{
		{Host{Name: "node1"}, "node1", "node1"},
		{Host{Name: "node1", User: "bob", Slots: 4}, "bob@node1", "bob@node1"},
		{Host{Name: "::1"}, "[::1]", "::1"},
		{Host{Name: "fe80::1%eth0", User: "bob", Port: 2222}, "bob@[fe80::1%eth0] port=2222", "bob@fe80::1%eth0"},
		{Host{Name: "10.0.0.5", Port: 22}, "10.0.0.5 port=22", "10.0.0.5"},
	} {
		if got := tc.host.String(); got != tc.str {
			t.Errorf("%#v.String() = %q, want %q", tc.host, got, tc.str)
		}
		if got := tc.host.Destination(); got != tc.dest {
			t.Errorf("%#v.Destination() = %q, want %q", tc.host, got, tc.dest)
		}
	}
}

func TestParseProxies(t *testing.T) {
	hosts, err := Parse("mf", strings.NewReader("node1 proxy=http://p1:3128 proxy=socks5://u:pw@p2:1080\nnode2:2\nnode1 proxy=https://p3\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://p1:3128", "socks5://u:pw@p2:1080", "https://p3"}
	if len(hosts) != 2 || !slices.Equal(hosts[0].Proxies, want) || hosts[1].Proxies != nil || hosts[0].Slots != 2 {
		t.Errorf("hosts %+v: want node1 with 2 slots and proxies %v, node2 without", hosts, want)
	}
	for _, bad := range []string{"node1 proxy=ftp://p", "node1 proxy=p:3128", "node1 proxy=http://", "node1 proxy=gopher://u:s3cret@p"} {
		_, err := Parse("mf", strings.NewReader(bad+"\n"))
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != 1 || !errors.Is(err, ErrOption) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: error %v, want an invalid option on line 1 without the password", bad, err)
		}
	}
}

func TestParseRender(t *testing.T) {
	hosts, err := Parse("mf", strings.NewReader("desk:4 render=yes\npi1 render=no\npi2\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{RenderYes, RenderNo, ""}
	for i, h := range hosts {
		if h.Render != want[i] {
			t.Errorf("%s: render %q, want %q", h.Name, h.Render, want[i])
		}
	}
	for _, bad := range []string{"node1 render=maybe", "node1 render=", "node1 render=yes render=no"} {
		_, err := Parse("mf", strings.NewReader(bad+"\n"))
		if !errors.Is(err, ErrOption) {
			t.Errorf("%q: error %v, want an invalid option", bad, err)
		}
	}
}
