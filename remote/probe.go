package remote

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Request is what a probe asks besides what every probe asks.
type Request struct {
	// Tags are push cache entries to look for: the first 16 hex digits of
	// each build's SHA-256, which name its directory in the cache.
	Tags []string
	// Bin is the path (or, looked up on the node's PATH, the name) of a
	// scrape binary to check: found, runnable, its version and hash.
	Bin string
}

// Info is a node's answer to the probe.
type Info struct {
	Shell    Shell    `json:"shell"`
	Uname    string   `json:"uname"`
	Platform Platform `json:"platform"`
	CPUs     int      `json:"cpus,omitempty"`
	Memory   int64    `json:"memory,omitempty"` // bytes; 0 when unknown
	// Clock is the node's time as it answered, and Offset how far it is
	// ahead of ours (negative: behind), read when its line arrived: off by
	// at most the one-way delay of the connection.
	Clock  time.Time     `json:"clock,omitzero"`
	Offset time.Duration `json:"offset"`
	// Cache is the node's push cache directory; Cached maps the tags found
	// there to the SHA-256 of the binary each holds.
	Cache  string            `json:"cache"`
	Cached map[string]string `json:"cached,omitempty"`
	// Bin is what the node says of Request.Bin.
	Bin *BinInfo `json:"bin,omitempty"`
	// Browser is the Chromium a worker there would render with (--render):
	// the first of render.Names on its PATH, or "".
	Browser string `json:"browser,omitempty"`
}

// BinInfo is a scrape binary on the node.
type BinInfo struct {
	Path    string `json:"path"`              // where it is, PATH looked up
	Hash    string `json:"sha256,omitempty"`  // its SHA-256
	Exit    int    `json:"exit"`              // of `scrape version`
	Version string `json:"version,omitempty"` // what `scrape version` printed first
}

// Runs reports whether `scrape version` ran and answered as scrape does.
func (b *BinInfo) Runs() bool { return b.Exit == 0 && strings.HasPrefix(b.Version, "scrape version ") }

// ReportedVersion is the version `scrape version` printed, or "".
func (b *BinInfo) ReportedVersion() string {
	v, _ := strings.CutPrefix(b.Version, "scrape version ")
	if !b.Runs() {
		return ""
	}
	return strings.TrimSpace(v)
}

// The probe prints one key=value line per fact, the time first: its line
// is stamped as it arrives, and the hashing that follows takes a while.
// It changes nothing on the node.
const probePOSIX = `echo "time=$(date +%%s.%%N)"
echo "uname=$(uname -sm)"
echo "cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null)"
if [ -r /proc/meminfo ]; then echo "memkb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"; else echo "membytes=$(sysctl -n hw.memsize 2>/dev/null)"; fi
c="${XDG_CACHE_HOME:-$HOME/.cache}/scrape"; echo "cache=$c"
h() { (sha256sum "$1" 2>/dev/null || shasum -a 256 "$1") | cut -d' ' -f1; }
for t in %[1]s; do if [ -x "$c/$t/scrape" ]; then echo "cached=$t $(h "$c/$t/scrape")"; fi; done
for n in chromium chromium-browser google-chrome google-chrome-stable; do if p=$(command -v "$n"); then echo "browser=$p"; break; fi; done
b=%[2]s; if [ -n "$b" ]; then p=$(command -v "$b"); if [ -n "$p" ] && [ -f "$p" ]; then echo "bin=$p"; echo "binhash=$(h "$p")"; v=$("$p" version 2>&1 </dev/null); echo "binexit=$?"; echo "binversion=$(printf '%%s\n' "$v" | head -n 1)"; fi; fi
`

const probePowerShell = `$ProgressPreference = 'SilentlyContinue'
$ErrorActionPreference = 'SilentlyContinue'
'time=' + [DateTimeOffset]::UtcNow.ToUnixTimeMilliseconds() + 'ms'
$a = $env:PROCESSOR_ARCHITECTURE; if ($env:PROCESSOR_ARCHITEW6432) { $a = $env:PROCESSOR_ARCHITEW6432 }
'uname=Windows ' + $a
'cpus=' + [Environment]::ProcessorCount
'membytes=' + (Get-CimInstance Win32_ComputerSystem).TotalPhysicalMemory
$c = Join-Path $env:LOCALAPPDATA 'scrape'
'cache=' + $c
function H($f) { (Get-FileHash -Algorithm SHA256 -LiteralPath $f).Hash.ToLower() }
foreach ($t in @(%[1]s)) { $f = Join-Path $c ($t + '\scrape.exe'); if (Test-Path -LiteralPath $f) { 'cached=' + $t + ' ' + (H $f) } }
$b = %[2]s
if ($b) { $p = (Get-Command $b -CommandType Application | Select-Object -First 1).Source; if ($p) { 'bin=' + $p; 'binhash=' + (H $p); $v = & $p version 2>&1 | Select-Object -First 1; 'binexit=' + $LASTEXITCODE; 'binversion=' + $v } }
`

// ProbeCommand is the command line of the probe in shell s.
func ProbeCommand(s Shell, req Request) string {
	var tags []string
	for _, t := range req.Tags {
		if isHex(t) {
			tags = append(tags, t)
		}
	}
	if s.Windows() {
		q := make([]string, len(tags))
		for i, t := range tags {
			q[i] = PSQuote(t)
		}
		return PowerShellCommand(fmt.Sprintf(probePowerShell, strings.Join(q, ","), PSQuote(req.Bin)))
	}
	if len(tags) == 0 {
		tags = []string{"none"}
	}
	bin := "''"
	if req.Bin != "" {
		bin = ShQuote(req.Bin)
	}
	return fmt.Sprintf(probePOSIX, strings.Join(tags, " "), bin)
}

func isHex(s string) bool {
	return s != "" && strings.IndexFunc(s, func(r rune) bool { return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') }) < 0
}

// ParseProbe reads the probe's answer. arrived is our time when its time
// line arrived (zero: no offset is worked out). Lines it does not know are
// skipped, so that older and newer probes can talk.
func ParseProbe(out string, arrived time.Time) (Info, error) {
	var info Info
	seen := false
	for line := range strings.Lines(out) {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r\n"), "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "uname":
			seen = true
			info.Uname = v
			info.Platform = ParseUname(v)
		case "cpus":
			info.CPUs, _ = strconv.Atoi(v)
		case "memkb":
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 && n < 1<<53 {
				info.Memory = n << 10
			}
		case "membytes":
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
				info.Memory = n
			}
		case "time":
			if t, ok := parseClock(v); ok {
				info.Clock = t
				if !arrived.IsZero() {
					info.Offset = t.Sub(arrived)
				}
			}
		case "cache":
			info.Cache = v
		case "browser":
			info.Browser = v
		case "cached":
			tag, hash, _ := strings.Cut(v, " ")
			if isHex(tag) && isHex(hash) {
				if info.Cached == nil {
					info.Cached = map[string]string{}
				}
				info.Cached[tag] = hash
			}
		case "bin":
			info.Bin = &BinInfo{Path: v, Exit: -1}
		case "binhash":
			if info.Bin != nil && isHex(v) {
				info.Bin.Hash = v
			}
		case "binexit":
			if info.Bin != nil {
				info.Bin.Exit, _ = strconv.Atoi(v)
			}
		case "binversion":
			if info.Bin != nil {
				info.Bin.Version = v
			}
		}
	}
	if !seen || !info.Platform.Known() {
		return info, fmt.Errorf("unexpected answer to the probe: %q", firstLines(out, 4))
	}
	return info, nil
}

// parseClock reads the probe's time: seconds since 1970 with an optional
// fraction (GNU date; BSD date prints a literal N there), or "<n>ms".
func parseClock(v string) (time.Time, bool) {
	if ms, ok := strings.CutSuffix(v, "ms"); ok {
		n, err := strconv.ParseInt(ms, 10, 64)
		if err != nil || n <= 0 {
			return time.Time{}, false
		}
		return time.UnixMilli(n), true
	}
	secs, frac, _ := strings.Cut(v, ".")
	s, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || s <= 0 || s > 1<<40 {
		return time.Time{}, false
	}
	var ns int64
	if len(frac) > 0 && isDigits(frac) {
		frac = (frac + "000000000")[:9]
		ns, _ = strconv.ParseInt(frac, 10, 64)
	}
	return time.Unix(s, ns), true
}

func isDigits(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) < 0
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// Probe asks the node what it is: first which shell it has, then the probe
// in that shell.
func (t Target) Probe(ctx context.Context, req Request) (Info, error) {
	out, err := t.Run(ctx, DetectCommand, nil)
	if err != nil {
		return Info{}, err
	}
	sh, err := ParseDetect(out)
	if err != nil {
		return Info{}, err
	}
	var stamp stampWriter
	if err := t.RunTo(ctx, ProbeCommand(sh, req), nil, &stamp); err != nil {
		return Info{}, fmt.Errorf("probe: %w", err)
	}
	info, err := ParseProbe(stamp.String(), stamp.arrived)
	info.Shell = sh
	return info, err
}

// stampWriter keeps what it is given and notes when the probe's time line
// began to arrive.
type stampWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	arrived time.Time
}

func (w *stampWriter) Write(p []byte) (int, error) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.arrived.IsZero() && bytes.Contains(w.buf.Bytes(), []byte("time=")) {
		w.arrived = now
	}
	return len(p), nil
}

func (w *stampWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
