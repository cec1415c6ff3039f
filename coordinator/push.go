package coordinator

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"
)

// pushTimeout bounds one probe or copy over ssh. A binary of tens of MiB
// over a slow link still fits.
const pushTimeout = 5 * time.Minute

// binary is this program as pushed to nodes: its content and its hash, which
// names the cache directory on the node, so identical copies are never sent
// twice and different builds never overwrite each other.
type binary struct {
	once sync.Once
	path string
	hash string
	size int64
	err  error
}

func (b *binary) load() error {
	b.once.Do(func() {
		f, err := os.Open(b.path)
		if err != nil {
			b.err = fmt.Errorf("read own binary: %w", err)
			return
		}
		defer f.Close()
		h := sha256.New()
		if b.size, err = io.Copy(h, f); err != nil {
			b.err = fmt.Errorf("read own binary: %w", err)
			return
		}
		b.hash = hex.EncodeToString(h.Sum(nil))
	})
	return b.err
}

// The scripts below run in the node's login shell, so --push needs a POSIX
// shell there (Linux, macOS, the BSDs). The cache directory is created with
// umask 077: only the node's user can read or replace the binary it runs.
const probeScript = `uname -sm; d="${XDG_CACHE_HOME:-$HOME/.cache}/scrape/%[1]s"; echo "$d"; ` +
	`if [ -x "$d/scrape" ]; then (sha256sum "$d/scrape" 2>/dev/null || shasum -a 256 "$d/scrape") | cut -d' ' -f1; fi`

const uploadScript = `umask 077; d="%[1]s"; mkdir -p "$d" && t="$d/scrape.$$" && cat > "$t" && chmod 700 "$t" && mv -f "$t" "$d/scrape" && ` +
	`(sha256sum "$d/scrape" 2>/dev/null || shasum -a 256 "$d/scrape") | cut -d' ' -f1`

// push makes sure node n has this exact binary and returns its path there.
func (l *processLauncher) push(ctx context.Context, n Node) (string, error) {
	bin := l.bin
	if err := bin.load(); err != nil {
		return "", err
	}
	tag := bin.hash[:16]
	out, err := l.sshRun(ctx, n, fmt.Sprintf(probeScript, tag), nil)
	if err != nil {
		return "", fmt.Errorf("push to %s: probe: %w", n.Name, err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		return "", fmt.Errorf("push to %s: unexpected answer to probe: %q", n.Name, out)
	}
	if goos, goarch := platform(lines[0]); goos != runtime.GOOS || goarch != runtime.GOARCH {
		return "", fmt.Errorf("push to %s: the node is %s/%s (%s) but this binary is %s/%s: build scrape for the node and use --remote-bin",
			n.Name, goos, goarch, lines[0], runtime.GOOS, runtime.GOARCH)
	}
	dir := strings.TrimSpace(lines[1])
	path := dir + "/scrape"
	if len(lines) >= 3 && strings.TrimSpace(lines[2]) == bin.hash {
		l.log.Info("binary already on node", "node", n.Name, "path", path)
		return path, nil
	}
	f, err := os.Open(bin.path)
	if err != nil {
		return "", fmt.Errorf("push to %s: %w", n.Name, err)
	}
	defer f.Close()
	got, err := l.sshRun(ctx, n, fmt.Sprintf(uploadScript, dir), f)
	if err != nil {
		return "", fmt.Errorf("push to %s: copy: %w", n.Name, err)
	}
	if strings.TrimSpace(got) != bin.hash {
		return "", fmt.Errorf("push to %s: copy arrived with hash %q, want %s", n.Name, strings.TrimSpace(got), bin.hash)
	}
	fmt.Fprintf(l.stderr, "scrape: pushed %s to %s:%s\n", humanBytes(bin.size), n.Name, path)
	return path, nil
}

// sshRun runs script on node n and returns its standard output.
func (l *processLauncher) sshRun(ctx context.Context, n Node, script string, stdin io.Reader) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	argv := n.sshArgv(l.cfg, script)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(lastLine(stderr.String())))
	}
	return stdout.String(), nil
}

// platform maps `uname -sm` to Go's names.
func platform(uname string) (goos, goarch string) {
	f := strings.Fields(uname)
	if len(f) < 2 {
		return "unknown", "unknown"
	}
	goos = strings.ToLower(f[0])
	switch m := strings.ToLower(f[1]); {
	case m == "x86_64" || m == "amd64":
		goarch = "amd64"
	case m == "aarch64" || m == "arm64":
		goarch = "arm64"
	case strings.HasPrefix(m, "armv") || m == "arm":
		goarch = "arm"
	case m == "i386" || m == "i686" || m == "i586":
		goarch = "386"
	case m == "riscv64":
		goarch = "riscv64"
	default:
		goarch = m
	}
	return goos, goarch
}

func lastLine(s string) string {
	var last string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			last = t
		}
	}
	return last
}
