package remote

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestParseDetect(t *testing.T) {
	// What each shell prints for DetectCommand.
	for _, c := range []struct {
		out  string
		want Shell
	}{
		{"scrape-probe %OS% :OS\n", POSIX},
		{"scrape-probe Windows_NT $env:OS\r\n", Cmd},
		{"scrape-probe\r\n%OS%\r\nWindows_NT\r\n", PowerShell},
	} {
		got, err := ParseDetect(c.out)
		if err != nil || got != c.want {
			t.Errorf("ParseDetect(%q) = %q, %v; want %q", c.out, got, err, c.want)
		}
	}
	if _, err := ParseDetect("This account is currently not available.\n"); err == nil {
		t.Error("ParseDetect took a refusal for a shell")
	}
}

func TestExec(t *testing.T) {
	for _, c := range []struct {
		shell Shell
		path  string
		want  string
		err   error
	}{
		{POSIX, "/usr/local/bin/scrape", "/usr/local/bin/scrape worker", nil},
		{POSIX, "/opt/my scrape/scrape", "'/opt/my scrape/scrape' worker", nil},
		{POSIX, "/opt/it's/scrape", `'/opt/it'\''s/scrape' worker`, nil},
		{Cmd, `C:\Users\ann\AppData\Local\scrape\0123456789abcdef\scrape.exe`, `C:\Users\ann\AppData\Local\scrape\0123456789abcdef\scrape.exe worker`, nil},
		{Cmd, `C:\Users\Ann Lee\AppData\Local\scrape\0123456789abcdef\scrape.exe`, `"C:\Users\Ann Lee\AppData\Local\scrape\0123456789abcdef\scrape.exe" worker`, nil},
		{Cmd, `C:\100%\scrape.exe`, "", ErrCmdQuote},
		{PowerShell, `C:\tools\scrape.exe`, `C:\tools\scrape.exe worker`, nil},
		{PowerShell, `C:\Users\Ann O'Neil\scrape.exe`, `& 'C:\Users\Ann O''Neil\scrape.exe' worker`, nil},
		{PowerShell, `C:\Users\Ann O’Neil\scrape.exe`, `& 'C:\Users\Ann O’’Neil\scrape.exe' worker`, nil},
		{PowerShell, `C:\a $b\scrape.exe`, `& 'C:\a $b\scrape.exe' worker`, nil},
	} {
		got, err := c.shell.Exec(c.path, "worker")
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("%s Exec(%q) = %q, %v; want %q, %v", c.shell, c.path, got, err, c.want, c.err)
		}
	}
	if _, err := POSIX.Exec("/bin/scrape", "a b"); err == nil {
		t.Error("Exec took an argument that needs quoting")
	}
}

// encoded is what an -EncodedCommand may hold: cmd.exe and PowerShell both
// leave these characters alone.
var encoded = regexp.MustCompile(`^powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand [A-Za-z0-9+/]+=*$`)

func TestPowerShellCommand(t *testing.T) {
	script := "'a' + \"b\" | Out-Null; & 'C:\\x y\\scrape.exe' version\n$env:OS # ünïcode ✓"
	line := PowerShellCommand(script)
	if !encoded.MatchString(line) {
		t.Fatalf("command line %q holds characters a shell would read", line)
	}
	back, err := DecodePowerShellCommand(line)
	if err != nil || back != script {
		t.Fatalf("decoded %q, %v; want %q", back, err, script)
	}
	// The encoding is UTF-16LE: "a" is "YQA=" in base64.
	if got := PowerShellCommand("a"); !strings.HasSuffix(got, " YQA=") {
		t.Errorf("PowerShellCommand(\"a\") = %q, want base64 of UTF-16LE", got)
	}
}

func TestUploadCommand(t *testing.T) {
	got := POSIX.UploadCommand("/home/ann/.cache/scrape/0123456789abcdef")
	want := `umask 077; d=/home/ann/.cache/scrape/0123456789abcdef; mkdir -p "$d" && t="$d/scrape.$$" && cat > "$t" && chmod 700 "$t" && mv -f "$t" "$d/scrape" && (sha256sum "$d/scrape" 2>/dev/null || shasum -a 256 "$d/scrape") | cut -d' ' -f1`
	if got != want {
		t.Errorf("POSIX upload:\n got %s\nwant %s", got, want)
	}
	if got := POSIX.UploadCommand("/home/a b/.cache"); !strings.HasPrefix(got, `umask 077; d='/home/a b/.cache'; `) {
		t.Errorf("POSIX upload of a path with a space: %s", got)
	}
	for _, sh := range []Shell{Cmd, PowerShell} {
		line := sh.UploadCommand(`C:\Users\Ann O'Neil\AppData\Local\scrape\0123456789abcdef`)
		if !encoded.MatchString(line) {
			t.Fatalf("%s upload %q holds characters a shell would read", sh, line)
		}
		script, err := DecodePowerShellCommand(line)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			`$d = 'C:\Users\Ann O''Neil\AppData\Local\scrape\0123456789abcdef'` + "\n",
			"[Console]::OpenStandardInput()",
			"Move-Item -Force -LiteralPath $t -Destination (Join-Path $d 'scrape.exe')",
			"Get-FileHash -Algorithm SHA256",
		} {
			if !strings.Contains(script, want) {
				t.Errorf("%s upload script lacks %q:\n%s", sh, want, script)
			}
		}
	}
}

func TestJoin(t *testing.T) {
	if got := POSIX.Join("/home/a/.cache/scrape/", "0f"); got != "/home/a/.cache/scrape/0f" {
		t.Errorf("POSIX Join = %q", got)
	}
	if got := Cmd.Join(`C:\Users\a\AppData\Local\scrape`, "0f"); got != `C:\Users\a\AppData\Local\scrape\0f` {
		t.Errorf("Windows Join = %q", got)
	}
}
