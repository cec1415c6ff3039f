package remote

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// Shell is the kind of shell that runs the commands ssh gives a node: a
// POSIX sh on Linux, macOS and the BSDs; on Windows, OpenSSH's default
// cmd.exe, or PowerShell where it is set as the default shell.
type Shell string

const (
	POSIX      Shell = "sh"
	Cmd        Shell = "cmd"
	PowerShell Shell = "powershell"
)

// Windows reports whether the shell is one of Windows'.
func (s Shell) Windows() bool { return s == Cmd || s == PowerShell }

// DetectCommand tells the three shells apart and does nothing else in any
// of them: cmd.exe expands %OS%, PowerShell expands $env:OS and writes each
// argument of echo on a line of its own, sh expands neither (its $env is
// empty).
const DetectCommand = "echo scrape-probe %OS% $env:OS"

// ParseDetect reads the answer to DetectCommand.
func ParseDetect(out string) (Shell, error) {
	switch {
	case strings.Contains(out, "Windows_NT") && strings.Contains(out, "$env:OS"):
		return Cmd, nil
	case strings.Contains(out, "Windows_NT"):
		return PowerShell, nil
	case strings.Contains(out, "scrape-probe %OS%"):
		return POSIX, nil
	}
	return "", fmt.Errorf("the node's shell answered %q to %q: neither sh, cmd.exe nor PowerShell", strings.TrimSpace(out), DetectCommand)
}

// wordSafe reports whether r needs no quoting in any of the three shells.
func wordSafe(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("/._-:\\+=,", r)
}

func isWord(s string) bool {
	return s != "" && strings.IndexFunc(s, func(r rune) bool { return !wordSafe(r) }) < 0
}

// ShQuote quotes s as one word for a POSIX shell; a word that needs no
// quoting in any shell is left bare.
func ShQuote(s string) string {
	if isWord(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// PSQuote quotes s as one PowerShell string literal, in which nothing is
// expanded. PowerShell takes the typographic single quotes for ' too, so
// they are doubled as well.
func PSQuote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		if r == '\'' || r == '‘' || r == '’' || r == '‚' || r == '‛' {
			b.WriteRune(r)
		}
		b.WriteRune(r)
	}
	b.WriteByte('\'')
	return b.String()
}

// ErrCmdQuote is a path cmd.exe cannot be given safely: a double quote
// cannot be quoted there, and %VAR% is expanded even inside quotes.
var ErrCmdQuote = errors.New("cmd.exe cannot quote a path with \" or %")

// Exec is the command line that runs the program at path with words args
// in shell s. Each arg must be a plain word (letters, digits and /._-:\+=,):
// cmd.exe has no quoting that survives every way ssh servers start it, so
// anything more goes through PowerShellCommand instead.
func (s Shell) Exec(path string, args ...string) (string, error) {
	for _, a := range args {
		if !isWord(a) {
			return "", fmt.Errorf("argument %q is not a plain word", a)
		}
	}
	tail := ""
	if len(args) > 0 {
		tail = " " + strings.Join(args, " ")
	}
	switch {
	case isWord(path):
		return path + tail, nil
	case s == Cmd:
		// cmd /c keeps the quotes of a line whose only two quotes enclose
		// the program's name.
		if strings.ContainsAny(path, `"%`) {
			return "", fmt.Errorf("%s: %w", path, ErrCmdQuote)
		}
		return `"` + path + `"` + tail, nil
	case s == PowerShell:
		return "& " + PSQuote(path) + tail, nil
	}
	return ShQuote(path) + tail, nil
}

// PowerShellCommand is the command line that runs script in Windows
// PowerShell from either Windows shell: the script travels as
// -EncodedCommand (base64 of UTF-16LE), which holds no character that
// cmd.exe or PowerShell would interpret.
func PowerShellCommand(script string) string {
	u := utf16.Encode([]rune(script))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	return "powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand " + base64.StdEncoding.EncodeToString(b)
}

// DecodePowerShellCommand is the script in a command line made by
// PowerShellCommand, for tests and for reading logs.
func DecodePowerShellCommand(line string) (string, error) {
	_, enc, ok := strings.Cut(line, "-EncodedCommand ")
	if !ok {
		return "", errors.New("no -EncodedCommand")
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil || len(b)%2 != 0 {
		return "", fmt.Errorf("bad -EncodedCommand: %v", err)
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return string(utf16.Decode(u)), nil
}

// Join is dir/name in the shell's file system.
func (s Shell) Join(dir, name string) string {
	if s.Windows() {
		return strings.TrimRight(dir, `\`) + `\` + name
	}
	return strings.TrimRight(dir, "/") + "/" + name
}

// uploadPOSIX writes stdin to dir/scrape, through a temporary file in the
// same directory so that a running copy is never overwritten, and prints
// the hash of what arrived. umask 077: only the node's user can read or
// replace the binary it runs.
const uploadPOSIX = `umask 077; d=%[1]s; mkdir -p "$d" && t="$d/scrape.$$" && cat > "$t" && chmod 700 "$t" && mv -f "$t" "$d/scrape" && ` +
	`(sha256sum "$d/scrape" 2>/dev/null || shasum -a 256 "$d/scrape") | cut -d' ' -f1`

// uploadPowerShell does the same on Windows. The directory is under
// %LOCALAPPDATA%, which only the user (and administrators) can read.
const uploadPowerShell = `$ErrorActionPreference = 'Stop'
$d = %[1]s
New-Item -ItemType Directory -Force -Path $d | Out-Null
$t = Join-Path $d ('scrape.exe.' + $PID)
$in = [Console]::OpenStandardInput()
$f = [IO.File]::Create($t)
try { $in.CopyTo($f) } finally { $f.Close() }
Move-Item -Force -LiteralPath $t -Destination (Join-Path $d 'scrape.exe')
(Get-FileHash -Algorithm SHA256 -LiteralPath (Join-Path $d 'scrape.exe')).Hash.ToLower()
`

// UploadCommand is the command line that stores its stdin as the binary
// in directory dir on the node and prints the SHA-256 of what it stored.
func (s Shell) UploadCommand(dir string) string {
	if s.Windows() {
		return PowerShellCommand(fmt.Sprintf(uploadPowerShell, PSQuote(dir)))
	}
	return fmt.Sprintf(uploadPOSIX, ShQuote(dir))
}

// BinaryName is the name of the binary in a push cache directory.
func (s Shell) BinaryName() string {
	if s.Windows() {
		return "scrape.exe"
	}
	return "scrape"
}

// Command is the command line that runs the program at path with args,
// which may hold any text, in shell s: quoted for sh, or on Windows as a
// PowerShell script (which exits with the program's status). Its stdin is
// not meant for the program: use Exec for that.
func (s Shell) Command(path string, args ...string) string {
	if s.Windows() {
		words := []string{"&", PSQuote(path)}
		for _, a := range args {
			words = append(words, PSQuote(a))
		}
		return PowerShellCommand(strings.Join(words, " ") + "\nexit $LASTEXITCODE")
	}
	words := []string{ShQuote(path)}
	for _, a := range args {
		words = append(words, ShQuote(a))
	}
	return strings.Join(words, " ")
}
