package remote

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseProbe(t *testing.T) {
	arrived := time.Unix(1_764_000_000, 0)
	for _, c := range []struct {
		name string
		out  string
		want Info
	}{
		{"linux", "time=1764000002.500000000\nuname=Linux aarch64\ncpus=4\nmemkb=3884096\ncache=/home/pi/.cache/scrape\ncached=0123456789abcdef 0123456789abcdef00\nbrowser=/usr/bin/chromium\nbin=/usr/local/bin/scrape\nbinhash=ab12\nbinexit=0\nbinversion=scrape version 1.2.3\n",
			Info{Uname: "Linux aarch64", Platform: Platform{"linux", "arm64", ""}, CPUs: 4, Memory: 3884096 << 10,
				Clock: time.Unix(1_764_000_002, 5e8), Offset: 2500 * time.Millisecond, Cache: "/home/pi/.cache/scrape",
				Cached: map[string]string{"0123456789abcdef": "0123456789abcdef00"}, Browser: "/usr/bin/chromium",
				Bin: &BinInfo{Path: "/usr/local/bin/scrape", Hash: "ab12", Exit: 0, Version: "scrape version 1.2.3"}}},
		{"macOS, BSD date", "time=1763999999.N\nuname=Darwin arm64\ncpus=8\nmembytes=17179869184\ncache=/Users/ann/.cache/scrape\n",
			Info{Uname: "Darwin arm64", Platform: Platform{"darwin", "arm64", ""}, CPUs: 8, Memory: 17179869184,
				Clock: time.Unix(1_763_999_999, 0), Offset: -time.Second, Cache: "/Users/ann/.cache/scrape"}},
		{"windows", "time=1764000000250ms\r\nuname=Windows AMD64\r\ncpus=16\r\nmembytes=34359738368\r\ncache=C:\\Users\\ann\\AppData\\Local\\scrape\r\nbin=C:\\tools\\scrape.exe\r\nbinhash=cd34\r\nbinexit=1\r\nbinversion=Error: unknown command\r\n",
			Info{Uname: "Windows AMD64", Platform: Platform{"windows", "amd64", ""}, CPUs: 16, Memory: 34359738368,
				Clock: time.UnixMilli(1_764_000_000_250), Offset: 250 * time.Millisecond, Cache: `C:\Users\ann\AppData\Local\scrape`,
				Bin: &BinInfo{Path: `C:\tools\scrape.exe`, Hash: "cd34", Exit: 1, Version: "Error: unknown command"}}},
		{"binary that would not run", "uname=Linux armv7l\ncpus=\nmemkb=\ncache=/root/.cache/scrape\nbin=/opt/scrape\nbinhash=ef\nbinexit=126\nbinversion=sh: 1: /opt/scrape: Exec format error\n",
			Info{Uname: "Linux armv7l", Platform: Platform{"linux", "arm", "7"}, Cache: "/root/.cache/scrape",
				Bin: &BinInfo{Path: "/opt/scrape", Hash: "ef", Exit: 126, Version: "sh: 1: /opt/scrape: Exec format error"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseProbe(c.out, arrived)
			if err != nil {
				t.Fatal(err)
			}
			if !equalInfo(got, c.want) {
				t.Errorf("ParseProbe:\n got %+v %+v\nwant %+v %+v", got, got.Bin, c.want, c.want.Bin)
			}
		})
	}
	for _, bad := range []string{"", "'uname' is not recognized as an internal or external command", "uname=\n", "Last login: today\n"} {
		if _, err := ParseProbe(bad, arrived); err == nil {
			t.Errorf("ParseProbe(%q) took it for an answer", bad)
		}
	}
}

func equalInfo(a, b Info) bool {
	if (a.Bin == nil) != (b.Bin == nil) || a.Bin != nil && *a.Bin != *b.Bin || len(a.Cached) != len(b.Cached) {
		return false
	}
	for k, v := range a.Cached {
		if b.Cached[k] != v {
			return false
		}
	}
	a.Bin, b.Bin, a.Cached, b.Cached = nil, nil, nil, nil
	return a.Uname == b.Uname && a.Platform == b.Platform && a.CPUs == b.CPUs && a.Memory == b.Memory &&
		a.Clock.Equal(b.Clock) && a.Offset == b.Offset && a.Cache == b.Cache
}

func TestBinInfoVersion(t *testing.T) {
	for _, c := range []struct {
		b    BinInfo
		want string
	}{
		{BinInfo{Exit: 0, Version: "scrape version 1.2.3"}, "1.2.3"},
		{BinInfo{Exit: 0, Version: "hello"}, ""},
		{BinInfo{Exit: 126, Version: "scrape version 1.2.3"}, ""},
	} {
		if got := c.b.ReportedVersion(); got != c.want {
			t.Errorf("%+v: version %q, want %q", c.b, got, c.want)
		}
	}
}

// The POSIX probe, run by this machine's own sh: what it answers about a
// cache entry and a binary that exist, and one that does not.
func TestProbePOSIXInLocalShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	home := t.TempDir()
	cache := filepath.Join(home, "cache")
	tag := "0123456789abcdef"
	if err := os.MkdirAll(filepath.Join(cache, "scrape", tag), 0o700); err != nil {
		t.Fatal(err)
	}
	cached := filepath.Join(cache, "scrape", tag, "scrape")
	if err := os.WriteFile(cached, []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(home, "my bin", "scrape")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'scrape version 9.9.9'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(req Request) Info {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), sh, "-c", ProbeCommand(POSIX, req))
		cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cache)
		before := time.Now()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		info, err := ParseProbe(string(out), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if info.Clock.Before(before.Truncate(time.Second)) || info.Clock.After(time.Now()) {
			t.Errorf("clock %v outside the probe's run (from %v)", info.Clock, before)
		}
		return info
	}
	info := run(Request{Tags: []string{tag, "fedcba9876543210"}, Bin: bin})
	if info.Platform != Own() || info.CPUs < 1 || info.Memory < 1<<20 || info.Cache != filepath.Join(cache, "scrape") {
		t.Errorf("probe of this machine: %+v", info)
	}
	if len(info.Cached) != 1 || len(info.Cached[tag]) != 64 {
		t.Errorf("cached %v, want %s alone with a SHA-256", info.Cached, tag)
	}
	if info.Bin == nil || info.Bin.Path != bin || len(info.Bin.Hash) != 64 || info.Bin.ReportedVersion() != "9.9.9" {
		t.Errorf("bin %+v, want %s at version 9.9.9", info.Bin, bin)
	}
	if info := run(Request{Bin: "/nonexistent/scrape"}); info.Bin != nil || len(info.Cached) != 0 {
		t.Errorf("a missing binary and no tags: bin %+v, cached %v", info.Bin, info.Cached)
	}
	// A quote in the path must not break the script out of its quoting.
	if info := run(Request{Bin: "/tmp/x'; echo cpus=999; '"}); info.CPUs == 999 {
		t.Errorf("a quote in --remote-bin ran code")
	}
}

func TestProbeCommandWindows(t *testing.T) {
	line := ProbeCommand(Cmd, Request{Tags: []string{"0123456789abcdef", "not hex; rm"}, Bin: `C:\tools\scrape.exe`})
	if !encoded.MatchString(line) {
		t.Fatalf("probe %q holds characters a shell would read", line)
	}
	script, err := DecodePowerShellCommand(line)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"foreach ($t in @('0123456789abcdef'))",
		`$b = 'C:\tools\scrape.exe'`,
		"'time=' + [DateTimeOffset]::UtcNow.ToUnixTimeMilliseconds() + 'ms'",
		"'uname=Windows ' + $a",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("Windows probe lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(script, "rm") {
		t.Errorf("a tag that is not hex reached the script:\n%s", script)
	}
}

func FuzzParseProbe(f *testing.F) {
	f.Add("time=1764000002.5\nuname=Linux aarch64\ncpus=4\nmemkb=3884096\ncache=/c\ncached=0a 0b\nbin=/b\nbinhash=ab\nbinexit=0\nbinversion=scrape version 1\n")
	f.Add("time=1764000000250ms\r\nuname=Windows AMD64\r\nmembytes=1\r\n")
	f.Add("uname=\x00 \xff\ntime=9999999999999999999.99999999999999\nmemkb=99999999999999999999\n")
	f.Fuzz(func(t *testing.T, out string) {
		info, err := ParseProbe(out, time.Unix(1_764_000_000, 0))
		if err != nil {
			return
		}
		if !info.Platform.Known() || info.Memory < 0 {
			t.Fatalf("accepted %q as %+v", out, info)
		}
		if info.Bin != nil && info.Bin.Runs() && info.Bin.ReportedVersion() == "" && strings.TrimSpace(strings.TrimPrefix(info.Bin.Version, "scrape version ")) != "" {
			t.Fatalf("a binary that runs with no version: %+v", info.Bin)
		}
	})
}
