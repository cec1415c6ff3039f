package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/internal/testbin"
	"github.com/scrape-cluster/scrape/internal/testbrowser"
	"github.com/scrape-cluster/scrape/internal/testsite"
)

// markEnv is set, to a value of the test's own, in the environment of a run
// the test starts; its workers and their browsers inherit it, so the test
// finds every process the run started, orphans included, by it alone.
const markEnv = "SCRAPE_TEST_RUN_MARK"

func newMark() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// marked lists the live processes whose environment carries mark, and
// which of them are not the scrape binary: the browsers.
func marked(bin, mark string) (all, browsers []string) {
	want := []byte(markEnv + "=" + mark + "\x00")
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		dir := filepath.Join("/proc", e.Name())
		env, err := os.ReadFile(filepath.Join(dir, "environ"))
		if err != nil || !strings.Contains(string(env), string(want)) {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join(dir, "stat"))
		if strings.Contains(string(stat), ") Z ") {
			continue // a zombie holds nothing; its parent reaps it
		}
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		name, _, _ := strings.Cut(string(cmdline), "\x00")
		all = append(all, e.Name()+" "+filepath.Base(name))
		if name != bin {
			browsers = append(browsers, e.Name()+" "+filepath.Base(name))
		}
	}
	return all, browsers
}

// No browser outlives its run: after it finishes, after Ctrl-C, and after
// kill -9 of the coordinator (its workers notice, and stop their browsers).
func TestRenderLeavesNoBrowser(t *testing.T) {
	testbrowser.RequireBrowser(t)
	bin := testbin.Path(t)
	site := testsite.NewJSApp(t)
	tests := []struct {
		name  string
		pages int
		query string
		stop  func(cmd *exec.Cmd) error // nil: let the run finish
	}{
		{"finished", 3, "", nil},
		{"interrupted", 40, "?slow=400", func(cmd *exec.Cmd) error { return cmd.Process.Signal(os.Interrupt) }},
		{"coordinator killed", 40, "?slow=400", func(cmd *exec.Cmd) error { return cmd.Process.Signal(syscall.SIGKILL) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var urls strings.Builder
			for i := range tt.pages {
				fmt.Fprintf(&urls, "%s/app/%d%s\n", site.URL, i+1, tt.query)
			}
			out := filepath.Join(t.TempDir(), "out.json")
			mark := newMark()
			cmd := exec.Command(bin, "run", "-f", writeFile(t, "mf", "localhost:1\n"), writeFile(t, "urls.txt", urls.String()),
				"-o", out, "-q", "--ignore-robots", "--render", "always", "--render-slots", "2")
			cmd.Dir = t.TempDir()
			cmd.Env = append(os.Environ(), markEnv+"="+mark)
			stderr := startKilledAtCleanup(t, cmd)
			if tt.stop == nil {
				if err := cmd.Wait(); err != nil {
					t.Fatalf("run: %v\n%s", err, stderr.String())
				}
				recs := readJSON(t, out)
				if len(recs) != tt.pages {
					t.Fatalf("%d records, want %d", len(recs), tt.pages)
				}
				for _, r := range recs {
					if !r.Rendered || !strings.HasPrefix(r.Title, "Widget ") {
						t.Errorf("%s: rendered %v, title %q, error %v", r.URL, r.Rendered, r.Title, r.Error)
					}
				}
			} else {
				waitFor(t, 60*time.Second, "rendered records in the output", func() bool { return outputRecords(out) >= 2 })
				if _, browsers := marked(bin, mark); len(browsers) == 0 {
					t.Fatal("no browser process found mid-run: the check below would prove nothing")
				}
				if err := tt.stop(cmd); err != nil {
					t.Fatal(err)
				}
				_, _ = cmd.Process.Wait()
			}
			var left []string
			deadline := time.Now().Add(30 * time.Second)
			for {
				if left, _ = marked(bin, mark); len(left) == 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if len(left) > 0 {
				t.Errorf("processes of the run left 30 s after it ended: %v\n%s", left, stderr.String())
			}
		})
	}
}
