package remote

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildSetFor(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	own := write("scrape", "own")
	arm64 := write("scrape-linux-arm64", "arm64")
	armv6 := write("scrape-linux-armv6", "armv6")
	win := write("scrape-windows-amd64.exe", "windows")
	write("scrape-linux-sparc", "not a platform --push serves")
	set := &BuildSet{Own: own, Dir: dir}

	for _, c := range []struct {
		node Platform
		want string
	}{
		{Own(), own},
		{Platform{"linux", "arm64", ""}, arm64},
		{Platform{"linux", "arm", "7"}, armv6}, // an armv6 build runs on armv7
		{Platform{"linux", "arm", "6"}, armv6},
		{Platform{"windows", "amd64", ""}, win},
	} {
		b, err := set.For(c.node)
		if err != nil || b.Path != c.want {
			t.Errorf("For(%s) = %+v, %v; want %s", c.node, b, err, c.want)
			continue
		}
		data, _ := os.ReadFile(c.want)
		sum := sha256.Sum256(data)
		if b.Hash != hex.EncodeToString(sum[:]) || b.Tag() != b.Hash[:16] || b.Size != int64(len(data)) {
			t.Errorf("For(%s): hash %s size %d", c.node, b.Hash, b.Size)
		}
	}
	_, err := set.For(Platform{"darwin", "arm64", ""})
	var missing *MissingBuildError
	if !errors.As(err, &missing) || missing.Path != filepath.Join(dir, "scrape-darwin-arm64") ||
		!strings.Contains(err.Error(), "scripts/build-all "+dir) {
		t.Errorf("For(darwin/arm64) = %v, want a missing build naming %s and the command", err, filepath.Join(dir, "scrape-darwin-arm64"))
	}
	tags, err := set.Tags()
	if err != nil || len(tags) != 4 {
		t.Errorf("Tags() = %v, %v; want this binary's and three builds'", tags, err)
	}
}

func TestShellCommand(t *testing.T) {
	args := []string{"reach", "--url", "http://example.test/?a=1&b='2'"}
	if got, want := POSIX.Command("/opt/my scrape", args...), `'/opt/my scrape' reach --url 'http://example.test/?a=1&b='\''2'\'''`; got != want {
		t.Errorf("POSIX Command:\n got %s\nwant %s", got, want)
	}
	for _, sh := range []Shell{Cmd, PowerShell} {
		line := sh.Command(`C:\Users\Ann O'Neil\scrape.exe`, args...)
		if !encoded.MatchString(line) {
			t.Fatalf("%s Command %q holds characters a shell would read", sh, line)
		}
		script, _ := DecodePowerShellCommand(line)
		want := `& 'C:\Users\Ann O''Neil\scrape.exe' 'reach' '--url' 'http://example.test/?a=1&b=''2'''` + "\nexit $LASTEXITCODE"
		if script != want {
			t.Errorf("%s Command script:\n got %s\nwant %s", sh, script, want)
		}
	}
}
