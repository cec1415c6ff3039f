package check

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// ReachOptions are the hidden `scrape reach` command's: what scrape check
// has a node try, with the node's own network.
type ReachOptions struct {
	// TCP is an address to connect to, and Token what to say there: the
	// way back to a run's queue.
	TCP   string
	Token string
	// URL is a page to fetch.
	URL     string
	Timeout time.Duration
}

// Reach does what o asks from this machine and writes what happened to w.
func Reach(ctx context.Context, o ReachOptions, w io.Writer) error {
	if o.Timeout <= 0 {
		o.Timeout = dialTimeout
	}
	if o.TCP == "" && o.URL == "" {
		return errors.New("nothing to reach: give --tcp or --url")
	}
	if o.TCP != "" {
		answer, err := dial(ctx, o.TCP, o.Token)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "connected to %s: %s\n", o.TCP, answer)
	}
	if o.URL != "" {
		res, err := Fetch(ctx, o.URL, o.Timeout)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, res)
	}
	return nil
}

// dial connects to addr, greets with tok and returns the answer.
func dial(ctx context.Context, addr, tok string) (string, error) {
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(dialTimeout))
	if _, err := fmt.Fprintf(conn, "%s%s\n", greeting, tok); err != nil {
		return "", fmt.Errorf("write to %s: %w", addr, err)
	}
	answer, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("connected to %s, but it did not answer as scrape check does: %w", addr, err)
	}
	return strings.TrimSpace(answer), nil
}

// Fetch fetches u within timeout and says how it went: the name resolved
// (and to what), then the HTTP status, size and time. An HTTP answer of any
// status is a site reached; an error is a name that does not resolve or a
// site that cannot be reached. It is a plain GET, without the run's checks
// of private addresses or robots.txt.
func Fetch(ctx context.Context, u string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	parsed, err := url.Parse(u)
	if err != nil || parsed.Hostname() == "" {
		return "", fmt.Errorf("%q is not a URL", u)
	}
	addrs, err := net.DefaultResolver.LookupHost(ctx, parsed.Hostname())
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", parsed.Hostname(), err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return fmt.Sprintf("HTTP %s, %d bytes in %s (%s is %s)", resp.Status, n, time.Since(start).Round(time.Millisecond),
		parsed.Hostname(), strings.Join(addrs, ", ")), nil
}

// fetch has the node fetch the --url, with its scrape.
func (c *nodeCheck) fetch(ctx context.Context, t remoteRunner) Verdict {
	if c.bin == "" {
		return skip("not checked: there is no scrape of this version on the node yet to fetch with")
	}
	out, err := t.Run(ctx, c.info.Shell.Command(c.bin, "reach", "--url", c.cfg.URL), nil)
	if err != nil {
		return fail("check the node's DNS, proxy and firewall, or the URL", "%v", err)
	}
	return ok("%s", strings.TrimSpace(out))
}

// remoteRunner is what fetch needs of a remote.Target.
type remoteRunner interface {
	Run(ctx context.Context, command string, stdin io.Reader) (string, error)
}

func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own binary: %w", err)
	}
	return exe, nil
}

func dirOf(path string) string    { return filepath.Dir(path) }
func baseName(path string) string { return filepath.Base(path) }
func numCPU() int                 { return runtime.NumCPU() }

// localMemory is this machine's memory in bytes, where /proc tells it.
func localMemory() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
