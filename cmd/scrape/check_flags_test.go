package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/check"
	"github.com/scrape-cluster/scrape/scrape"
)

// parseCheck runs args through the real command tree and returns the
// options scrape check would have run with.
func parseCheck(t *testing.T, args ...string) (*checkCmdOptions, error) {
	t.Helper()
	var got *checkCmdOptions
	root := newRootCmd(runners{check: func(_ context.Context, o *checkCmdOptions) error { got = o; return nil }})
	root.SetArgs(args)
	root.SetOut(&strings.Builder{})
	root.SetErr(&strings.Builder{})
	err := root.Execute()
	return got, err
}

func TestCheckFlags(t *testing.T) {
	o, err := parseCheck(t, "check", "-f", "mf", "--ssh", "ssh -F cfg", "--push", "--push-dir", "dist", "--listen", ":4222",
		"--advertise", "10.0.0.1", "--url", "https://example.test/", "--max-body", "1MiB", "--timeout", "5s", "--json")
	if err != nil {
		t.Fatal(err)
	}
	want := check.Config{SSH: []string{"ssh", "-F", "cfg"}, Push: true, PushDir: "dist", Listen: ":4222", Advertise: "10.0.0.1",
		URL: "https://example.test/", MaxBody: 1 << 20, Timeout: 5 * time.Second, ConnectTimeout: 10 * time.Second}
	c := o.cfg
	if o.machinefile != "mf" || !o.json || !slices.Equal(c.SSH, want.SSH) || c.Push != want.Push || c.PushDir != want.PushDir ||
		c.Listen != want.Listen || c.Advertise != want.Advertise || c.URL != want.URL || c.MaxBody != want.MaxBody ||
		c.Timeout != want.Timeout || c.ConnectTimeout != want.ConnectTimeout {
		t.Errorf("options %+v (machinefile %q, json %v)\nwant %+v", c, o.machinefile, o.json, want)
	}
	o, err = parseCheck(t, "check", "-f", "mf")
	if err != nil || o.cfg.Timeout != check.DefaultTimeout || o.cfg.MaxBody != scrape.DefaultMaxBody || o.cfg.RemoteBin != "" || o.json {
		t.Errorf("defaults: %+v, %v", o, err)
	}

	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"check"}, "-f MACHINEFILE"},
		{[]string{"check", "-f", "mf", "--push", "--remote-bin", "/x"}, "contradict"},
		{[]string{"check", "-f", "mf", "--push-dir", "d"}, "--push-dir is for --push"},
		{[]string{"check", "-f", "mf", "--timeout", "10ms"}, "at least 1s"},
		{[]string{"check", "-f", "mf", "--listen", ":x"}, "invalid port"},
		{[]string{"check", "-f", "mf", "extra"}, "takes no arguments"},
	} {
		if _, err := parseCheck(t, c.args...); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: %v, want an error saying %q", c.args, err, c.err)
		}
	}
}

func TestRunCheckAndPushDirFlags(t *testing.T) {
	o := mustParseRun(t, "run", "urls.txt", "--check", "--push", "--push-dir", "dist")
	if !o.preflight || !o.cfg.Push || o.cfg.PushDir != abs(t, "dist") {
		t.Errorf("run --check --push --push-dir dist: preflight %v, push %v, push dir %q", o.preflight, o.cfg.Push, o.cfg.PushDir)
	}
}
