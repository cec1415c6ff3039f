package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A run that fails before its first record leaves nothing behind in the
// directory it ran in: no state directory, no empty output. One that
// succeeds leaves its output alone, and /dev/null is an output like another.
func TestRunLeavesNothingBehind(t *testing.T) {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<title>a page</title>")
	}))
	t.Cleanup(site.Close)
	urls := writeFile(t, "urls.txt", site.URL+"/a\n"+site.URL+"/b\n")
	tests := []struct {
		name   string
		args   func(dir string) []string
		code   int
		stderr string
		left   []string // what the run's directory holds afterwards
	}{
		{"output in a missing directory", func(dir string) []string {
			return []string{"-o", filepath.Join(dir, "no", "such", "out.json")}
		}, exitFailed, "no directory", nil},
		{"output is a directory", func(dir string) []string {
			if err := os.Mkdir(filepath.Join(dir, "out"), 0o755); err != nil {
				t.Fatal(err)
			}
			return []string{"-o", "out"}
		}, exitFailed, "is a directory", []string{"out"}},
		{"/dev/null", func(dir string) []string { return []string{"-o", os.DevNull} }, exitOK, "", nil},
		{"a run that succeeds", func(dir string) []string { return []string{"-o", "out.json"} }, exitOK, "", []string{"out.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := scrapeCmd(t, ctx)
			cmd.Args = append(cmd.Args, append([]string{"run", urls, "-q", "--ignore-robots"}, tt.args(cmd.Dir)...)...)
			out, err := cmd.CombinedOutput()
			if code := exitCode(err); code != tt.code || !strings.Contains(string(out), tt.stderr) {
				t.Errorf("exit %d, want %d saying %q:\n%s", code, tt.code, tt.stderr, out)
			}
			entries, err := os.ReadDir(cmd.Dir)
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, e := range entries {
				left = append(left, e.Name())
			}
			if strings.Join(left, " ") != strings.Join(tt.left, " ") {
				t.Errorf("the run's directory holds %q, want %q", left, tt.left)
			}
		})
	}
}
