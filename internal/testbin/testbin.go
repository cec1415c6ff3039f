// Package testbin builds the real scrape binary once per test process, so
// end-to-end tests run exactly what users run.
package testbin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/remote"
)

var (
	once sync.Once
	dir  string
	path string
	err  error
)

// Path returns the path of a freshly built scrape binary, building it on
// first use. The binary is removed by Main after the tests.
func Path(t testing.TB) string {
	t.Helper()
	once.Do(build)
	if err != nil {
		t.Fatalf("build scrape: %v", err)
	}
	return path
}

func build() {
	dir, err = os.MkdirTemp("", "scrape-testbin-")
	if err != nil {
		return
	}
	path = filepath.Join(dir, "scrape")
	if runtime.GOOS == "windows" {
		path += ".exe"
	}
	// The directory must be readable by other users' sshd sessions too.
	_ = os.Chmod(dir, 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", path, "github.com/scrape-cluster/scrape/cmd/scrape")
	if out, e := cmd.CombinedOutput(); e != nil {
		err = fmt.Errorf("%v: %s", e, out)
	}
}

// Cross returns the path of a scrape binary built for platform p, named as
// --push looks for it in --push-dir (p.BuildName(): scrape-linux-arm64), in
// a directory of its own. It is built on first use and removed by Main.
func Cross(t testing.TB, p remote.Platform) string {
	t.Helper()
	name := p.BuildName()
	crossMu.Lock()
	defer crossMu.Unlock()
	if path, ok := crossPaths[name]; ok {
		return path
	}
	once.Do(build) // makes dir
	if err != nil {
		t.Fatalf("build scrape: %v", err)
	}
	path := filepath.Join(dir, "cross-"+name, name)
	if e := os.Mkdir(filepath.Dir(path), 0o755); e != nil {
		t.Fatalf("build scrape for %s: %v", p, e)
	}
	// Cold, a foreign build compiles the whole module graph again: minutes
	// on a small shared machine.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", path, "github.com/scrape-cluster/scrape/cmd/scrape")
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), p.Env()...)
	if out, e := cmd.CombinedOutput(); e != nil {
		t.Fatalf("build scrape for %s: %v: %s", p, e, out)
	}
	crossPaths[name] = path
	return path
}

var (
	crossMu    sync.Mutex
	crossPaths = map[string]string{}
)

// Main runs the tests and removes the built binary afterwards; call it
// from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// Workers returns the PIDs of running "scrape worker" processes started from
// bin, found by their command line.
func Workers(bin string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := splitNUL(raw)
		if len(args) >= 2 && args[0] == bin && args[1] == "worker" {
			pids = append(pids, pid)
		}
	}
	return pids
}

func splitNUL(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	if start < len(b) {
		out = append(out, string(b[start:]))
	}
	return out
}
