package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/coordinator"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
	"github.com/scrape-cluster/scrape/worker"
)

// parsed is what a command line would have run, had it been run.
type parsed struct {
	run    *runOptions
	worker *workerOptions
	status *statusOptions
}

// parse runs args through the real command tree, with runners that only
// keep the options they are called with.
func parse(t *testing.T, args ...string) (parsed, error) {
	t.Helper()
	return parseIn(t, nil, args...)
}

// parseIn is parse with stdin as the command's standard input (nil: the
// test's own).
func parseIn(t *testing.T, stdin io.Reader, args ...string) (parsed, error) {
	t.Helper()
	var p parsed
	root := newRootCmd(runners{
		run:    func(_ context.Context, o *runOptions) error { p.run = o; return nil },
		worker: func(_ context.Context, o *workerOptions) error { p.worker = o; return nil },
		status: func(_ context.Context, o *statusOptions) error { p.status = o; return nil },
	})
	root.SetArgs(args)
	if stdin != nil {
		root.SetIn(stdin)
	}
	err := root.Execute()
	return p, err
}

func mustParseRun(t *testing.T, args ...string) *runOptions {
	t.Helper()
	p, err := parse(t, args...)
	if err != nil || p.run == nil {
		t.Fatalf("%q: %v", args, err)
	}
	return p.run
}

func abs(t *testing.T, path string) string {
	t.Helper()
	p, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// bare is o without what differs between any two parses (the logger) or
// says where output goes, for comparing.
func bare(o *runOptions) runOptions {
	b := *o
	b.cfg.Logger, b.cfg.Stdout, b.cfg.Stderr, b.stdin = nil, nil, nil, nil
	return b
}

// diff names the fields, nested ones by their path, in which got and want
// differ.
func diff(path string, got, want reflect.Value) []string {
	if got.Kind() == reflect.Struct {
		var out []string
		for i := range got.NumField() {
			out = append(out, diff(path+"."+got.Type().Field(i).Name, got.Field(i), want.Field(i))...)
		}
		return out
	}
	if g, w := fmt.Sprintf("%#v", got), fmt.Sprintf("%#v", want); g != w {
		return []string{fmt.Sprintf("%s = %s, want %s", path, g, w)}
	}
	return nil
}

func checkOptions(t *testing.T, what string, got, want runOptions) {
	t.Helper()
	for _, d := range diff("options", reflect.ValueOf(got), reflect.ValueOf(want)) {
		t.Errorf("%s: %s", what, d)
	}
}

// The defaults are what README documents, spelled out.
func TestRunFlagDefaults(t *testing.T) {
	got := bare(mustParseRun(t, "run"))
	want := runOptions{cfg: coordinator.Config{
		Output:    "-",
		InputPath: "-",
		Fetch: scrape.Config{
			Timeout:      scrape.DefaultTimeout,
			UserAgent:    scrape.DefaultUserAgent(),
			MaxBody:      scrape.DefaultMaxBody,
			MaxRedirects: scrape.DefaultMaxRedirects,
			Render:       scrape.RenderNever,
		},
		// Unset: the coordinator listens on all interfaces, or on
		// loopback alone when every node is this machine.
		Listen:           "",
		SSH:              []string{"ssh"},
		Saved:            []byte("[]"),
		Replicas:         1,
		ConnectTimeout:   coordinator.DefaultConnectTimeout,
		AckWait:          coordinator.DefaultAckWait,
		PerHost:          coordinator.DefaultPerHost,
		PerSlot:          coordinator.DefaultPerSlot,
		MaxCrawlDelay:    coordinator.DefaultMaxCrawlDelay,
		Retries:          coordinator.DefaultRetries,
		RetryBackoff:     coordinator.DefaultRetryBackoff,
		HostFailures:     coordinator.DefaultHostFailures,
		SitemapMax:       coordinator.DefaultSitemapMax,
		LogLevel:         "WARN",
		Progress:         true,
		ProgressInterval: coordinator.DefaultProgressInterval,
	}}
	checkOptions(t, "run", got, want)
}

// Each command line gives the defaults but for what its row changes; every
// other field is compared too, so a flag that lands in the wrong place fails.
func TestRunFlags(t *testing.T) {
	tests := []struct {
		args []string
		want func(o *runOptions, c *coordinator.Config)
	}{
		{[]string{"-f", "hosts", "urls.txt", "-o", "out.json"}, func(o *runOptions, c *coordinator.Config) {
			o.machinefile, c.InputPath, c.Output = abs(t, "hosts"), abs(t, "urls.txt"), abs(t, "out.json")
		}},
		{[]string{"-", "--format", "json", "--timeout", "5s", "--max-body", "2MiB", "--max-redirects", "3", "--user-agent", "bot/1"}, func(o *runOptions, c *coordinator.Config) {
			c.Format = "json"
			c.Fetch.Timeout, c.Fetch.MaxBody, c.Fetch.MaxRedirects, c.Fetch.UserAgent = 5*time.Second, 2<<20, 3, "bot/1"
		}},
		{[]string{"-o", "out.jsonl", "--warc", "pages.warc.gz"}, func(o *runOptions, c *coordinator.Config) {
			// Absolute, so that a resume from another directory finds it.
			c.Output, c.Warc = abs(t, "out.jsonl"), abs(t, "pages.warc.gz")
		}},
		{[]string{"--allow-private"}, func(o *runOptions, c *coordinator.Config) {
			c.Fetch.AllowPrivateAll = true
		}},
		{[]string{"--allow-private=10.0.0.0/8, fd00::/8", "--allow-private=169.254.169.254"}, func(o *runOptions, c *coordinator.Config) {
			c.Fetch.AllowPrivate = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("169.254.169.254/32")}
		}},
		{[]string{"--max-body", "512KB", "--max-redirects", "0"}, func(o *runOptions, c *coordinator.Config) {
			c.Fetch.MaxBody = 512000
			c.Fetch.MaxRedirects = -1 // none, as scrape.Config says it
		}},
		{[]string{"--select", "a=h1", "--select", "b=a[rel=next]@href", "--text"}, func(o *runOptions, c *coordinator.Config) {
			o.selects = []string{"a=h1", "b=a[rel=next]@href"}
			c.Fetch.Select = []scrape.Selector{{Name: "a", CSS: "h1"}, {Name: "b", CSS: "a[rel=next]", Attr: "href"}}
			c.Fetch.Text = true
		}},
		{[]string{"--since", "old.jsonl", "-o", "new.jsonl"}, func(o *runOptions, c *coordinator.Config) {
			c.Since, c.Output = abs(t, "old.jsonl"), abs(t, "new.jsonl")
		}},
		{[]string{"--structured", "--sitemap", "--sitemap-max", "1000"}, func(o *runOptions, c *coordinator.Config) {
			c.Fetch.Structured, c.Sitemap, c.SitemapMax = true, true, 1000
		}},
		{[]string{"--per-host", "2", "--delay", "50ms", "--ignore-robots", "--retries", "0", "--retry-backoff", "2s"}, func(o *runOptions, c *coordinator.Config) {
			c.PerHost, c.Delay, c.IgnoreRobots, c.Retries, c.RetryBackoff = 2, 50*time.Millisecond, true, 0, 2*time.Second
		}},
		{[]string{"--render", "auto", "--render-match", `id="__next"`, "--wait-for", "#price", "--render-resources", "--render-slots", "3", "--render-memory", "2GiB"}, func(o *runOptions, c *coordinator.Config) {
			c.Fetch.Render, c.Fetch.RenderMatch, c.Fetch.WaitFor, c.Fetch.RenderResources, c.RenderSlots = scrape.RenderAuto, `id="__next"`, "#price", true, 3
			c.Fetch.RenderMemory = 2 << 30
		}},
		{[]string{"--per-slot", "4"}, func(o *runOptions, c *coordinator.Config) {
			c.PerSlot = 4
		}},
		{[]string{"--per-slot", "1", "-f", "hosts"}, func(o *runOptions, c *coordinator.Config) {
			o.machinefile, c.PerSlot = abs(t, "hosts"), 1
		}},
		{[]string{"--max-crawl-delay", "5s"}, func(o *runOptions, c *coordinator.Config) {
			c.MaxCrawlDelay = 5 * time.Second
		}},
		{[]string{"--host-failures", "5"}, func(o *runOptions, c *coordinator.Config) {
			c.HostFailures = 5
		}},
		{[]string{"--host-failures", "0"}, func(o *runOptions, c *coordinator.Config) {
			c.HostFailures = 0 // the breaker off
		}},
		{[]string{"--depth", "3", "--same-host", "--allow-domain", "a.com,b.org", "--allow-domain", "c.net", "--max-pages", "100"}, func(o *runOptions, c *coordinator.Config) {
			c.Depth, c.SameHost, c.AllowDomains, c.MaxPages = 3, true, []string{"a.com", "b.org", "c.net"}, 100
		}},
		{[]string{"--listen", "0.0.0.0:4222", "--advertise", "10.0.0.1", "--ssh", " ssh  -F cfg", "--remote-bin", "/opt/scrape", "--push"}, func(o *runOptions, c *coordinator.Config) {
			c.Listen, c.Advertise, c.SSH, c.RemoteBin, c.Push = "0.0.0.0:4222", "10.0.0.1", []string{"ssh", "-F", "cfg"}, "/opt/scrape", true
		}},
		{[]string{"--state", "st", "--force", "--connect-timeout", "3s", "--ack-wait", "2m", "--no-tls", "--wait-workers", "5m"}, func(o *runOptions, c *coordinator.Config) {
			c.StateDir, c.Force, c.ConnectTimeout, c.AckWait, c.Plaintext, c.WaitWorkers = abs(t, "st"), true, 3*time.Second, 2*time.Minute, true, 5*time.Minute
		}},
		{[]string{"--nats", "nats://h1:4222, nats://h2:4222,,", "--replicas", "3", "--creds", "u.creds", "--nkey", "u.nk",
			"--nats-user", "bob", "--nats-password-file", "pw", "--nats-token-file", "tok", "--tls-ca", "ca.pem", "--worker-nkey", "w.nk"}, func(o *runOptions, c *coordinator.Config) {
			c.NATS, c.Replicas = []string{"nats://h1:4222", "nats://h2:4222"}, 3
			// Absolute, so that a resume from another directory finds them.
			o.auth = queue.AuthFiles{Creds: abs(t, "u.creds"), NKey: abs(t, "u.nk"), User: "bob",
				PasswordFile: abs(t, "pw"), TokenFile: abs(t, "tok"), CA: abs(t, "ca.pem")}
			o.workerAuth = queue.AuthFiles{NKey: abs(t, "w.nk")}
		}},
		// No login of the coordinator's: a NATS without authorization,
		// where workers log in with nothing too. And a machinefile that may
		// list no host (workers join): runScrape checks once it is read.
		{[]string{"--nats", "nats://h1:4222"}, func(o *runOptions, c *coordinator.Config) { c.NATS = []string{"nats://h1:4222"} }},
		{[]string{"--nats", "nats://h1:4222", "--nkey", "c.nk", "-f", "hosts", "--wait-workers", "1m"}, func(o *runOptions, c *coordinator.Config) {
			c.NATS, c.WaitWorkers, o.machinefile = []string{"nats://h1:4222"}, time.Minute, abs(t, "hosts")
			o.auth = queue.AuthFiles{NKey: abs(t, "c.nk")}
		}},
		{[]string{"--nats", "nats://h1:4222", "--nkey", "c.nk", "--worker-creds", "w.creds", "--worker-nkey", "w.nk",
			"--worker-user", "w", "--worker-password-file", "wpw", "--worker-token-file", "wtok"}, func(o *runOptions, c *coordinator.Config) {
			c.NATS = []string{"nats://h1:4222"}
			o.auth = queue.AuthFiles{NKey: abs(t, "c.nk")}
			// The workers' own login, apart from the coordinator's; the CA
			// is --tls-ca's, added when the files are read.
			o.workerAuth = queue.AuthFiles{Creds: abs(t, "w.creds"), NKey: abs(t, "w.nk"), User: "w",
				PasswordFile: abs(t, "wpw"), TokenFile: abs(t, "wtok")}
		}},
		{[]string{"-vv", "-q", "--stats", "s.json", "--progress-interval", "1s"}, func(o *runOptions, c *coordinator.Config) {
			o.verbose, o.quiet, o.stats = 2, true, "s.json"
			o.shown = []string{"--verbose=2", "--quiet=true", "--stats=s.json", "--progress-interval=1s"}
			c.LogLevel, c.Progress, c.ProgressInterval = "DEBUG", false, time.Second
		}},
		{[]string{"--resume", "st", "-v"}, func(o *runOptions, c *coordinator.Config) {
			o.resume, o.verbose, o.shown = "st", 1, []string{"--verbose=1"}
			c.Resume, c.StateDir, c.LogLevel = true, "st", "INFO"
		}},
	}
	for _, tt := range tests {
		args := append([]string{"run"}, tt.args...)
		got := bare(mustParseRun(t, args...))
		want := bare(mustParseRun(t, "run"))
		tt.want(&want, &want.cfg)
		got.cfg.Saved, want.cfg.Saved = nil, nil // TestRunResumeKeepsFlags
		checkOptions(t, fmt.Sprintf("%q", args), got, want)
	}
}

// A resume runs with the flags the run began with, whatever their kind,
// and shows the run as the resume's own flags say.
func TestRunResumeKeepsFlags(t *testing.T) {
	for _, args := range [][]string{
		{"run"},
		{"run", "-f", "hosts", "urls.txt", "-o", "out.csv", "--format", "jsonl", "--state", "st", "--force"},
		{"run", "--timeout", "1m30s", "--max-body", "1500", "--max-redirects", "0", "--user-agent", "a bot/1 (+x)"},
		{"run", "--host-failures", "0", "--retries", "4"},
		{"run", "--select", "a=h1", "--select", "b=a[rel=next]@href", "--text", "--allow-domain", "a.com,b.org", "--depth", "2"},
		{"run", "--ssh", "ssh -F cfg -o BatchMode=yes", "--push", "--listen", "127.0.0.1:0", "--ack-wait", "1s", "--tls"},
		{"run", "--nats", "nats://h1:4222,nats://h2:4222", "--replicas", "3", "--nkey", "u.nk", "--nats-user", "bob", "--nats-password-file", "pw",
			"--worker-nkey", "w.nk", "--worker-user", "w", "--worker-password-file", "wpw"},
	} {
		began := mustParseRun(t, args...)
		resume := mustParseRun(t, "run", "--resume", "st", "-v", "--stats", "s.json")
		got, err := resume.resumed(began.cfg.Saved)
		if err != nil {
			t.Errorf("%q: %v", args, err)
			continue
		}
		want := bare(began)
		want.cfg.Resume, want.cfg.StateDir = true, "st"
		want.verbose, want.stats, want.shown, want.cfg.LogLevel = 1, "s.json", resume.shown, "INFO"
		checkOptions(t, fmt.Sprintf("resume of %q", args), bare(got), want)
	}
}

// Each of these is a mistake in the command line, refused as one before the
// run is called: the urls file named is never looked at.
func TestRunFlagErrors(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--format", "xml", "/nonexistent/urls.txt"}, `unknown format "xml"`},
		{[]string{"--since", "-"}, "--since reads a file"},
		{[]string{"--since", "out.jsonl", "-o", "out.jsonl"}, "--since out.jsonl is the output"},
		{[]string{"a.txt", "b.txt"}, "at most 1 argument"},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"--ssh"}, "flag needs an argument"},
		{[]string{"--max-body", "lots"}, `"lots" is not a size`},
		{[]string{"--max-body", "-1"}, "is not a size"},
		{[]string{"--timeout", "soon"}, `invalid argument "soon"`},
		{[]string{"--timeout", "-1s"}, "--timeout cannot be negative"},
		{[]string{"--timeout", "0"}, "--timeout 0s: at least 100ms"},
		{[]string{"--timeout", "1ns"}, "--timeout 1ns: at least 100ms"},
		{[]string{"--connect-timeout", "0"}, "--connect-timeout 0s: at least 1s"},
		{[]string{"--ack-wait", "10ms"}, "--ack-wait 10ms: at least 1s"},
		{[]string{"--per-host", "x"}, `invalid argument "x"`},
		{[]string{"--per-host", "0"}, "--per-host must be 1 or more"},
		{[]string{"--per-slot", "0"}, "--per-slot must be 1 to 10000"},
		{[]string{"--per-slot", "10001"}, "--per-slot must be 1 to 10000"},
		{[]string{"--per-slot", "-2"}, "--per-slot cannot be negative"},
		{[]string{"-j", "32"}, "unknown shorthand flag: 'j' in -j (pages in flight: --per-slot N"},
		{[]string{"--slots", "4"}, "unknown flag: --slots (pages in flight: --per-slot N"},
		{[]string{"-n8"}, "unknown shorthand flag: 'n' in -n8 (pages in flight: --per-slot N"},
		{[]string{"--retries", "-1"}, "--retries cannot be negative"},
		{[]string{"--host-failures", "-1"}, "--host-failures cannot be negative"},
		{[]string{"--depth", "-1"}, "--depth cannot be negative"},
		{[]string{"--max-pages", "-1"}, "--max-pages cannot be negative"},
		{[]string{"--delay", "-1ms"}, "--delay cannot be negative"},
		{[]string{"--max-crawl-delay", "-1s"}, "--max-crawl-delay cannot be negative"},
		{[]string{"--max-crawl-delay", "0s"}, "--max-crawl-delay must be more than 0"},
		{[]string{"--wait-workers", "-1m"}, "--wait-workers cannot be negative"},
		{[]string{"--max-redirects", "-1"}, "must be 0 or more"},
		{[]string{"--select", "x=[["}, `--select "x=[["`},
		{[]string{"--select", "a=h1", "--select", "a=h2"}, `duplicate name "a"`},
		{[]string{"--listen", "localhost:http"}, `--listen "localhost:http": invalid port`},
		{[]string{"--listen", ":70000"}, "invalid port"},
		{[]string{"--replicas", "0", "--nats", "nats://a:4222"}, "--replicas must be 1 or more"},
		{[]string{"--replicas", "3"}, "more than 1 only with --nats"},
		{[]string{"--tls", "--nats", "nats://a:4222"}, "--tls and --no-tls are for the embedded queue"},
		{[]string{"--no-tls", "--nats", "nats://a:4222"}, "--tls and --no-tls are for the embedded queue"},
		{[]string{"--tls", "--no-tls"}, "contradict"},
		{[]string{"--retries", "21"}, "at most 20"},
		{[]string{"--allow-private=10.0.0.0/33"}, "10.0.0.0/33"},
		{[]string{"--listen", ":4222", "--nats", "nats://a:4222"}, "--listen is for the embedded queue"},
		{[]string{"--advertise", "10.0.0.1", "--nats", "nats://a:4222"}, "--advertise is for the embedded queue"},
		{[]string{"--nats", " , "}, "--nats names no server"},
		{[]string{"--nkey", "u.nk"}, "--nkey is for logging in to the NATS given with --nats"},
		{[]string{"--nats", "nats://a:4222", "--nats-password-file", "pw"}, "--nats-password-file needs --nats-user"},
		{[]string{"--worker-nkey", "w.nk"}, "--worker-nkey is for the workers' login to the NATS given with --nats"},
		{[]string{"--worker-token-file", "wtok"}, "--worker-token-file is for the workers' login to the NATS given with --nats"},
		{[]string{"--nats", "nats://a:4222", "--nkey", "c.nk", "--worker-password-file", "wpw"}, "--worker-password-file needs --worker-user"},
		// Started workers (this machine's, or a machinefile's) on a NATS
		// the coordinator logs in to need a login of their own.
		{[]string{"--nats", "nats://a:4222", "--nkey", "c.nk"}, "the workers the run starts need credentials of their own"},
		{[]string{"--nats", "nats://a:4222", "--creds", "c.creds", "-f", "hosts"}, "the workers the run starts need credentials of their own"},
		{[]string{"--nats", "nats://a:4222", "--nats-user", "c", "--nats-password-file", "pw", "--wait-workers", "1m"}, "need credentials of their own"},
		{[]string{"--nats", "nats://a:4222", "--nats-token-file", "tok"}, "need credentials of their own"},
		{[]string{"--resume", "st", "--timeout", "1s"}, "drop --timeout"},
		{[]string{"--resume", "st", "urls.txt"}, "drop urls.txt"},
		{[]string{"--resume", "st", "--progress-interval", "-1s"}, "--progress-interval cannot be negative"},
	}
	for _, tt := range tests {
		args := append([]string{"run"}, tt.args...)
		p, err := parse(t, args...)
		if !errors.As(err, new(*usageError)) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%q: error %v, want a usage error saying %q", args, err, tt.wantErr)
		}
		if p.run != nil {
			t.Errorf("%q: the run was called", args)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	for v, want := range map[byteSize]string{10 << 20: "10MiB", 512 << 10: "512KiB", 1000: "1000"} {
		if got := v.String(); got != want {
			t.Errorf("%d: %q, want %q", int64(v), got, want)
		}
	}
}

func TestWorkerFlags(t *testing.T) {
	tests := []struct {
		args []string
		want func(o *workerOptions)
	}{
		{nil, func(o *workerOptions) {}},
		{[]string{"--grace", "5s"}, func(o *workerOptions) { o.cfg.Grace = 5 * time.Second }},
		{[]string{"--browser", "/opt/chrome/chrome", "--render-slots", "3", "--render-memory", "1536MiB"}, func(o *workerOptions) {
			o.cfg.Browser, o.cfg.RenderSlots, o.cfg.RenderMemory = "/opt/chrome/chrome", 3, 1536<<20
		}},
		{[]string{"--nats", "nats://a:4222, tls://b:4222", "--nkey", "w.nk", "--tls-ca", "cert.pem",
			"--slots", "8", "--name", "rack2", "--run", "ABC", "--wait", "1m", "-v"}, func(o *workerOptions) {
			o.find.Servers, o.find.Run, o.find.Wait = []string{"nats://a:4222", "tls://b:4222"}, "ABC", time.Minute
			o.auth = queue.AuthFiles{NKey: "w.nk", CA: "cert.pem"}
			o.cfg.Slots, o.cfg.Node, o.verbose = 8, "rack2", 1
		}},
	}
	for _, tt := range tests {
		args := append([]string{"worker"}, tt.args...)
		p, err := parse(t, args...)
		if err != nil || p.worker == nil {
			t.Errorf("%q: %v", args, err)
			continue
		}
		got := *p.worker
		want := workerOptions{cfg: worker.Config{Grace: worker.DefaultGrace}}
		tt.want(&want)
		got.stdin, got.stderr = nil, nil
		for _, d := range diff("options", reflect.ValueOf(got), reflect.ValueOf(want)) {
			t.Errorf("%q: %s", args, d)
		}
	}
}

func TestWorkerFlagErrors(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--slots", "4"}, "--slots is for a worker that joins a run with --nats"},
		{[]string{"--run", "ABC"}, "--run is for a worker"},
		{[]string{"--nkey", "w.nk"}, "--nkey is for a worker"},
		{[]string{"--nats", "nats://a", "--slots", "-1"}, "--slots cannot be negative"},
		{[]string{"--nats", "nats://a", "--wait", "-1s"}, "--wait cannot be negative"},
		{[]string{"--grace", "-1s"}, "--grace cannot be negative"},
		{[]string{"--nats", ","}, "--nats names no server"},
		{[]string{"--nats", "nats://a", "--nats-password-file", "pw"}, "needs --nats-user"},
		{[]string{"extra"}, `worker takes no arguments, got ["extra"]`},
	}
	for _, tt := range tests {
		args := append([]string{"worker"}, tt.args...)
		p, err := parse(t, args...)
		if !errors.As(err, new(*usageError)) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%q: error %v, want a usage error saying %q", args, err, tt.wantErr)
		}
		if p.worker != nil {
			t.Errorf("%q: the worker was called", args)
		}
	}
}

func TestStatusFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want statusOptions
	}{
		{[]string{"status"}, statusOptions{}},
		{[]string{"status", "--state", "st", "--json"}, statusOptions{State: "st", JSON: true}},
	} {
		p, err := parse(t, tt.args...)
		if err != nil || p.status == nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if got := *p.status; got.State != tt.want.State || got.JSON != tt.want.JSON {
			t.Errorf("%q: %+v, want %+v", tt.args, got, tt.want)
		}
	}
	if _, err := parse(t, "status", "st"); !errors.As(err, new(*usageError)) {
		t.Errorf("status st: %v, want a usage error", err)
	}
}

// Values that work but are rarely what was meant are run, with a warning.
func TestRunFlagWarnings(t *testing.T) {
	tests := []struct {
		args []string
		want []string // what the warnings say, in order; none for nil
	}{
		{nil, nil},
		{[]string{"--timeout", "5m", "--retries", "5", "--retry-backoff", "10s", "--max-body", "256MiB", "--delay", "1m"}, nil},
		{[]string{"--timeout", "10m"}, []string{"--timeout 10m0s: a page that hangs holds one of a node's slots that long"}},
		{[]string{"--retries", "20"}, []string{"--retries 20 --retry-backoff 1s: a page that keeps failing waits up to 1h6m0s between its attempts"}},
		{[]string{"--retries", "8", "--retry-backoff", "1h"}, []string{"--retries 8 --retry-backoff 1h0m0s: a page that keeps failing waits up to 40m0s"}},
		{[]string{"--max-body", "1GiB"}, []string{"--max-body 1024MiB: every slot of a node may hold a body that big in memory"}},
		{[]string{"--delay", "2m", "--timeout", "6m"}, []string{"--timeout 6m0s", "--delay 2m0s: one request to a host every 2m0s at most"}},
	}
	for _, tt := range tests {
		o := mustParseRun(t, append([]string{"run"}, tt.args...)...)
		if len(o.warnings) != len(tt.want) {
			t.Errorf("%q: warnings %q, want %d", tt.args, o.warnings, len(tt.want))
			continue
		}
		for i, w := range tt.want {
			if !strings.HasPrefix(o.warnings[i], w) {
				t.Errorf("%q: warning %q, want it to begin %q", tt.args, o.warnings[i], w)
			}
		}
	}
}

// The NATS tools' variables stand for the flags not given, where --nats is
// taken; a flag given wins, a resume keeps the NATS it began with, and a
// worker whose stdin is a pipe (as scrape run starts it) reads its bootstrap.
func TestNATSFromTheEnvironment(t *testing.T) {
	t.Setenv("NATS_URL", "nats://env:4222,nats://env2:4222")
	t.Setenv("NATS_CREDS", "env.creds")
	t.Setenv("NATS_CA", "env-ca.pem")
	t.Setenv("NATS_USER", "")
	none := strings.NewReader("") // a stdin that is no pipe

	p, err := parseIn(t, none, "worker", "--creds", "flag.creds")
	if err != nil || p.worker == nil {
		t.Fatalf("worker: %v", err)
	}
	if got := p.worker.find.Servers; fmt.Sprint(got) != "[nats://env:4222 nats://env2:4222]" {
		t.Errorf("worker's servers %q, want NATS_URL's", got)
	}
	if a := p.worker.auth; a.Creds != "flag.creds" || a.CA != "env-ca.pem" {
		t.Errorf("worker's login %+v: --creds given wins, NATS_CA stands for --tls-ca", a)
	}
	if p, err := parseIn(t, none, "worker", "--nats", "nats://flag:4222"); err != nil || fmt.Sprint(p.worker.find.Servers) != "[nats://flag:4222]" {
		t.Errorf("worker --nats: %v, %+v", err, p.worker)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	if p, err := parseIn(t, r, "worker"); err != nil || len(p.worker.find.Servers) != 0 || p.worker.auth.Creds != "" {
		t.Errorf("a started worker (stdin a pipe) took the environment: %v, %+v", err, p.worker)
	}

	o, err := parseIn(t, none, "run", "--worker-creds", "w.creds", "urls.txt")
	if err != nil || o.run == nil {
		t.Fatalf("run: %v", err)
	}
	if got := o.run.cfg.NATS; fmt.Sprint(got) != "[nats://env:4222 nats://env2:4222]" || o.run.auth.Creds != abs(t, "env.creds") || fmt.Sprint(o.run.fromEnv) != "[NATS_URL NATS_CREDS NATS_CA]" {
		t.Errorf("run: servers %q, login %+v, from %q", got, o.run.auth, o.run.fromEnv)
	}
	if _, err := parseIn(t, none, "run", "--resume", "st"); err != nil {
		t.Errorf("a resume takes its NATS from the flags it began with, not the environment: %v", err)
	}
	t.Setenv("NATS_URL", " , ")
	if _, err := parseIn(t, none, "worker"); !errors.As(err, new(*usageError)) || !strings.Contains(err.Error(), "--nats names no server") {
		t.Errorf("NATS_URL naming no server: %v", err)
	}
}

func TestStatusSaysWhereARunStands(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		st   coordinator.Status
		want string
	}{
		{coordinator.Status{Running: true, Updated: now.Add(-time.Second)}, "running"},
		{coordinator.Status{Running: true, Updated: now.Add(-time.Minute), PID: 42},
			"not updated for 1m0s: the coordinator (pid 42) may be gone (if so, resume with: scrape run --resume st)"},
		{coordinator.Status{Outcome: coordinator.OutcomeFinished}, "finished"},
		{coordinator.Status{}, "finished"}, // from a scrape before outcomes
		{coordinator.Status{Outcome: coordinator.OutcomeInterrupted, Resume: "scrape run --resume /abs/st"}, "interrupted (resume with: scrape run --resume /abs/st)"},
		{coordinator.Status{Outcome: coordinator.OutcomeFailed, Resume: "scrape run --resume /abs/st"}, "failed (resume with: scrape run --resume /abs/st)"},
		{coordinator.Status{Outcome: coordinator.OutcomeInterrupted}, "interrupted (it wrote to stdout: it cannot be resumed)"},
	} {
		if got := runState(&tt.st, "st", now); got != tt.want {
			t.Errorf("%+v:\n got %s\nwant %s", tt.st, got, tt.want)
		}
	}
}
