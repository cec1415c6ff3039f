package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The command line wins over SCRAPE_ variables, and they over the config
// file; what came from either is kept for a resume like a flag, the file's
// name is not.
func TestRunFlagsFromEnvAndConfig(t *testing.T) {
	conf := writeFile(t, "scrape.conf", "# the cluster's usual settings\nper-slot = 4\ntimeout = 7s\nsame-host\nheader = X-A: 1\nheader = X-B: 2\nuser-agent = from-file\n")
	t.Setenv("SCRAPE_TIMEOUT", "3s")
	t.Setenv("SCRAPE_DEPTH", "2")
	o := mustParseRun(t, "run", "urls.txt", "--config", conf, "--user-agent", "from-flag")
	c := o.cfg
	if c.Fetch.UserAgent != "from-flag" || c.Fetch.Timeout != 3*time.Second || c.PerSlot != 4 || !c.SameHost || c.Depth != 2 {
		t.Errorf("user-agent %q timeout %s per-slot %d same-host %v depth %d", c.Fetch.UserAgent, c.Fetch.Timeout, c.PerSlot, c.SameHost, c.Depth)
	}
	if len(c.Fetch.Headers) != 2 || c.Fetch.Headers[1].Name != "X-B" {
		t.Errorf("headers %+v: want the file's two", c.Fetch.Headers)
	}
	saved := string(c.Saved)
	for _, want := range []string{"--per-slot=4", "--timeout=3s", "--depth=2", "--header=X-B: 2"} {
		if !strings.Contains(saved, want) {
			t.Errorf("kept %s, want it to hold %q", saved, want)
		}
	}
	if strings.Contains(saved, "config") {
		t.Errorf("kept %s: the config file is read once, its values kept", saved)
	}
	if want := []string{"SCRAPE_TIMEOUT", "SCRAPE_DEPTH", conf}; strings.Join(o.fromOutside, " ") != strings.Join(want, " ") {
		t.Errorf("from outside %q, want %q", o.fromOutside, want)
	}
}

func TestRunConfigFromEnv(t *testing.T) {
	t.Setenv("SCRAPE_CONFIG", writeFile(t, "c.conf", "per-slot = 5\n"))
	if o := mustParseRun(t, "run", "urls.txt"); o.cfg.PerSlot != 5 {
		t.Errorf("per-slot %d, want SCRAPE_CONFIG's 5", o.cfg.PerSlot)
	}
}

func TestRunFlagsFromOutsideErrors(t *testing.T) {
	tests := []struct {
		env     map[string]string
		conf    string
		wantErr string
	}{
		{env: map[string]string{"SCRAPE_TIMEOUT": "soon"}, wantErr: "SCRAPE_TIMEOUT: "},
		{env: map[string]string{"SCRAPE_PER_SLOT": "0"}, wantErr: "--per-slot must be 1 to"},
		{conf: "per-slot = 2\nper-slots = 3\n", wantErr: ".conf:2: no flag --per-slots here"},
		{conf: "resume = /tmp/x\n", wantErr: ".conf:1: no flag --resume here"},
		{conf: "config = other.conf\n", wantErr: ".conf:1: no flag --config here"},
		{conf: "timeout = -1s\n", wantErr: "--timeout cannot be negative"},
	}
	for _, tt := range tests {
		for k, v := range tt.env {
			t.Setenv(k, v)
		}
		args := []string{"run", "urls.txt"}
		if tt.conf != "" {
			args = append(args, "--config", writeFile(t, "bad.conf", tt.conf))
		}
		_, err := parse(t, args...)
		if !errors.As(err, new(*usageError)) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%v %q: error %v, want a usage error saying %q", tt.env, tt.conf, err, tt.wantErr)
		}
		for k := range tt.env {
			os.Unsetenv(k)
		}
	}
	_, err := parse(t, "run", "urls.txt", "--config", filepath.Join(t.TempDir(), "missing.conf"))
	if err == nil || !strings.Contains(err.Error(), "missing.conf") {
		t.Errorf("missing config: error %v", err)
	}
}

// A resume runs with the flags it began with: variables set since do not
// change it, nor make it refuse to start.
func TestRunResumeIgnoresFlagsFromOutside(t *testing.T) {
	t.Setenv("SCRAPE_DEPTH", "3")
	o := mustParseRun(t, "run", "--resume", t.TempDir())
	if o.cfg.Depth != 0 || len(o.fromOutside) != 0 {
		t.Errorf("depth %d from %q", o.cfg.Depth, o.fromOutside)
	}
}

// A real run whose extraction comes from a config file and the
// environment.
func TestRunWithConfigFile(t *testing.T) {
	_, base := startSite(t, 5)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	conf := writeFile(t, "scrape.conf", "select = title=title\ntext\nquiet\n")
	cmd := scrapeCmd(t, ctx, "run", "--config", conf)
	cmd.Env = append(os.Environ(), "SCRAPE_SELECT=h=h1\ndesc=meta[name=description]@content")
	cmd.Stdin = strings.NewReader(base + "/page/1\n" + base + "/page/2\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scrape run: %v\n%s", err, stderr.String())
	}
	recs := readJSONL(t, stdout.Bytes())
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	for _, r := range recs {
		// The variable's two selectors win over the file's one.
		if r.Fields["title"] != nil || r.Fields["desc"] == nil || r.Fields["h"] == nil || r.Text == "" {
			t.Errorf("%s: fields %v, text %q: want h and desc from SCRAPE_SELECT and text from the file", r.URL, r.Fields, r.Text)
		}
	}
	if stderr.Len() != 0 {
		t.Errorf("quiet from the config file, yet stderr:\n%s", stderr.String())
	}
}

// SCRAPE_NATS beats NATS_URL, which beats the config file.
func TestRunNATSFromOutsideOrder(t *testing.T) {
	conf := writeFile(t, "c.conf", "nats = nats://from-file:4222\n")
	t.Setenv("NATS_URL", "nats://from-nats-url:4222")
	if o := mustParseRun(t, "run", "urls.txt", "--config", conf); strings.Join(o.cfg.NATS, ",") != "nats://from-nats-url:4222" {
		t.Errorf("NATS %q, want NATS_URL's", o.cfg.NATS)
	}
	t.Setenv("SCRAPE_NATS", "nats://from-scrape-nats:4222")
	if o := mustParseRun(t, "run", "urls.txt", "--config", conf); strings.Join(o.cfg.NATS, ",") != "nats://from-scrape-nats:4222" {
		t.Errorf("NATS %q, want SCRAPE_NATS's", o.cfg.NATS)
	}
}
