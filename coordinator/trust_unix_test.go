//go:build unix

package coordinator

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrivate(t *testing.T) {
	tests := []struct {
		name string
		dir  bool
		mode os.FileMode
		want string // in the refusal; "" to accept
	}{
		{"own directory", true, 0o700, ""},
		{"directory others may read", true, 0o755, ""},
		{"directory others may write", true, 0o777, "chmod go-w"},
		{"directory the group may write", true, 0o770, "chmod go-w"},
		{"own key", false, 0o600, ""},
		{"key others may read", false, 0o644, "chmod 600"},
		{"key the group may read", false, 0o640, "chmod 600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x")
			if tt.dir {
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(path, []byte("SU..."), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			err := private(path)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want a refusal saying %q", err, tt.want)
			}
		})
	}
}

// A run refuses a state directory others can write to, and a join key
// others can read, before it starts anything.
func TestRunRefusesStateOthersCanTouch(t *testing.T) {
	for _, tt := range []struct {
		name    string
		prepare func(t *testing.T, dir string)
		want    string
	}{
		{"state directory writable by others", func(t *testing.T, dir string) {
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
		}, "chmod go-w"},
		{"join key readable by others", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, JoinKeyFile), []byte("SUAAVX4R4ZXLZ7X4OX3V6Y7QPMHXUPT3NVQB4A4VMKTK3JH4X4MBKD3UEM\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "chmod 600"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			tt.prepare(t, dir)
			c, err := New(Config{Input: strings.NewReader("http://127.0.0.1:1/\n"), StateDir: dir, Output: filepath.Join(t.TempDir(), "out.jsonl"),
				Stderr: io.Discard, LocalBin: "/bin/false", Hosts: nil})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Run(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run: %v, want a refusal saying %q", err, tt.want)
			}
		})
	}
}
