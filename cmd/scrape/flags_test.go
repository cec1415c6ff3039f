package main

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/coordinator"
	"github.com/scrape-cluster/scrape/scrape"
	"github.com/scrape-cluster/scrape/worker"
)

// parse runs the command line through cobra and returns the options the
// run command would have been called with.
func parse(t *testing.T, args ...string) (*runOptions, error) {
	t.Helper()
	var got *runOptions
	root := newRootCmd(runners{
		run:    func(_ context.Context, o *runOptions) error { got = o; return nil },
		worker: func(context.Context, *workerOptions) error { return nil },
	})
	root.SetArgs(args)
	err := root.Execute()
	return got, err
}

func TestRunFlags(t *testing.T) {
	tests := []struct {
		args  []string
		check func(*runOptions) bool
	}{
		{[]string{"run"}, func(o *runOptions) bool {
			return o.URLs == "-" && o.Output == "-" && o.Machinefile == "" && o.Timeout == scrape.DefaultTimeout &&
				o.MaxBody == scrape.DefaultMaxBody && o.MaxRedirects == scrape.DefaultMaxRedirects &&
				o.Listen == ":0" && o.SSH == "ssh" && o.ConnectTimeout == coordinator.DefaultConnectTimeout &&
				o.UserAgent == scrape.DefaultUserAgent() && o.AckWait == coordinator.DefaultAckWait
		}},
		{[]string{"run", "-f", "hosts", "urls.txt", "-o", "out.json"}, func(o *runOptions) bool {
			return o.Machinefile == "hosts" && o.URLs == "urls.txt" && o.Output == "out.json"
		}},
		{[]string{"run", "-", "--format", "json", "--timeout", "5s", "--max-body", "2MiB", "--max-redirects", "3"}, func(o *runOptions) bool {
			return o.URLs == "-" && o.Format == "json" && o.Timeout == 5*time.Second && o.MaxBody == 2<<20 && o.MaxRedirects == 3
		}},
		{[]string{"run", "--listen", "0.0.0.0:4222", "--advertise", "10.0.0.1", "--ssh", "ssh -F cfg", "--remote-bin", "/opt/scrape"}, func(o *runOptions) bool {
			return o.Listen == "0.0.0.0:4222" && o.Advertise == "10.0.0.1" && o.SSH == "ssh -F cfg" && o.RemoteBin == "/opt/scrape"
		}},
		{[]string{"run", "-vv", "-q", "--state", "st", "--user-agent", "bot/1", "--connect-timeout", "3s"}, func(o *runOptions) bool {
			return o.Verbose == 2 && o.Quiet && o.State == "st" && o.UserAgent == "bot/1" && o.ConnectTimeout == 3*time.Second
		}},
		{[]string{"run", "--max-body", "512KB"}, func(o *runOptions) bool { return o.MaxBody == 512000 }},
		{[]string{"run", "--select", "a=h1", "--select", "b=a[rel=next]@href", "--text"}, func(o *runOptions) bool {
			return slices.Equal(o.Select, []string{"a=h1", "b=a[rel=next]@href"}) && o.Text
		}},
		{[]string{"run", "--per-host", "2", "--delay", "50ms", "--ignore-robots", "--retries", "0", "--retry-backoff", "2s"}, func(o *runOptions) bool {
			return o.PerHost == 2 && o.Delay == 50*time.Millisecond && o.IgnoreRobots && o.Retries == 0 && o.RetryBackoff == 2*time.Second
		}},
		{[]string{"run", "--depth", "3", "--same-host", "--allow-domain", "a.com,b.org", "--allow-domain", "c.net", "--max-pages", "100"}, func(o *runOptions) bool {
			return o.Depth == 3 && o.SameHost && slices.Equal(o.AllowDomains, []string{"a.com", "b.org", "c.net"}) && o.MaxPages == 100
		}},
		{[]string{"run", "--max-body", "1048576"}, func(o *runOptions) bool { return o.MaxBody == 1<<20 }},
	}
	for _, tt := range tests {
		o, err := parse(t, tt.args...)
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if o == nil || !tt.check(o) {
			t.Errorf("%q: options %+v", tt.args, o)
		}
	}
}

func TestRunFlagErrorsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--max-body", "lots"},
		{"run", "--max-body", "-1"},
		{"run", "--timeout", "soon"},
		{"run", "a.txt", "b.txt"},
		{"run", "--bogus"},
	} {
		_, err := parse(t, args...)
		if !errors.As(err, new(*usageError)) {
			t.Errorf("%q: error %v is not a usage error", args, err)
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
	var got *workerOptions
	parseWorker := func(args ...string) error {
		got = nil
		root := newRootCmd(runners{
			run:    func(context.Context, *runOptions) error { return nil },
			worker: func(_ context.Context, o *workerOptions) error { got = o; return nil },
		})
		root.SetArgs(append([]string{"worker"}, args...))
		return root.Execute()
	}
	if err := parseWorker(); err != nil || got == nil || got.NATS.URLs != "" || got.Grace != worker.DefaultGrace {
		t.Errorf("worker: %v, %+v", err, got)
	}
	err := parseWorker("--nats", "nats://a:4222, tls://b:4222", "--nkey", "w.nk", "--tls-ca", "cert.pem",
		"--slots", "8", "--name", "rack2", "--run", "ABC", "--wait", "1m")
	if err != nil || got == nil || !slices.Equal(got.NATS.servers(), []string{"nats://a:4222", "tls://b:4222"}) ||
		got.NATS.NKey != "w.nk" || got.NATS.CA != "cert.pem" || got.Slots != 8 || got.Name != "rack2" || got.Run != "ABC" || got.Wait != time.Minute {
		t.Errorf("worker --nats ...: %v, %+v", err, got)
	}
	for _, args := range [][]string{{"--slots", "4"}, {"--nkey", "w.nk"}, {"--run", "ABC"}, {"--nats", "nats://a", "--slots", "-1"}} {
		if err := parseWorker(args...); !errors.As(err, new(*usageError)) {
			t.Errorf("worker %q: %v, want a usage error", args, err)
		}
	}
	if o, err := parse(t, "run", "--wait-workers", "5m", "--tls"); err != nil || o.WaitWorkers != 5*time.Minute || !o.TLS {
		t.Errorf("run --wait-workers 5m --tls: %v, %+v", err, o)
	}
}
