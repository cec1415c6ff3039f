// Package check is scrape check, the preflight of a cluster: for every
// machinefile node, in parallel and each within its own timeout, whether
// ssh logs in (and if not, ssh's reason and the likely fix), what the node
// is (OS, CPU, CPUs, memory), whether the scrape binary a run would start
// there is present, runs and matches ours (or which build --push would
// send), whether the node can open a connection back to the address and
// port the run's queue would use, how far its clock is off, and, with a
// URL, whether it can fetch it. scrape run --check runs it first.
//
// The node is asked through remote (the probe, the ssh error classifier),
// as the run asks it, so both say the same thing in the same words. The way
// back is tried for real: a listener here (wayback.go) and `scrape reach`
// on the node (reach.go), or bash's /dev/tcp where the binary is not there
// yet.
package check

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"github.com/scrape-cluster/scrape/internal/bytesize"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/scrape-cluster/scrape/coordinator"
	"github.com/scrape-cluster/scrape/machinefile"
	"github.com/scrape-cluster/scrape/remote"
	"github.com/scrape-cluster/scrape/render"
	"github.com/scrape-cluster/scrape/scrape"
)

// Defaults for Config; a zero field means its default.
const (
	DefaultTimeout = 30 * time.Second
	// parallel bounds the nodes checked at once: each holds two or three
	// ssh sessions in turn.
	parallel = 32
	// dialTimeout bounds the node's attempt to connect back.
	dialTimeout = 5 * time.Second
	// ClockWarn is the clock offset worth a warning; a node behind by
	// ClockFail or more would take the run's TLS certificate, which is
	// valid from an hour before the run, for one not valid yet.
	ClockWarn = 2 * time.Second
	ClockFail = 55 * time.Minute
)

// Config is one check of a cluster. Most fields mean what they mean for
// coordinator.Config, so that scrape run --check checks what the run does.
type Config struct {
	Hosts          []machinefile.Host
	SSH            []string
	ConnectTimeout time.Duration
	// Timeout bounds the whole check of one node (default DefaultTimeout).
	Timeout time.Duration
	// LocalBin is this program (default: os.Executable); RemoteBin the
	// binary a run starts on the nodes (default LocalBin's path).
	LocalBin  string
	RemoteBin string
	// Push: the nodes get the build for their platform, from PushDir
	// (default LocalBin's directory), as scrape run --push sends it.
	Push    bool
	PushDir string
	// Listen and Advertise are the run's --listen and --advertise.
	Listen    string
	Advertise string
	// URL, when set, is fetched from every node.
	URL string
	// MaxBody is the largest page body a worker reads (--max-body), for
	// the memory warning.
	MaxBody int64
	// Version is ours (default scrape.Version).
	Version string
}

func (c *Config) setDefaults() error {
	if len(c.SSH) == 0 {
		c.SSH = []string{"ssh"}
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = coordinator.DefaultConnectTimeout
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.LocalBin == "" {
		exe, err := executable()
		if err != nil {
			return err
		}
		c.LocalBin = exe
	}
	if c.RemoteBin == "" {
		c.RemoteBin = c.LocalBin
	}
	if c.PushDir == "" {
		c.PushDir = dirOf(c.LocalBin)
	}
	if c.MaxBody <= 0 {
		c.MaxBody = scrape.DefaultMaxBody
	}
	if c.Version == "" {
		c.Version = scrape.Version
	}
	if _, _, err := coordinator.ListenAddr(c.Listen); err != nil {
		return err
	}
	return nil
}

// Run checks every node and returns the report, with the nodes in the
// machinefile's order. It fails only when it cannot check at all; a node
// that is not ready is in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if len(cfg.Hosts) == 0 {
		return nil, errors.New("no nodes to check")
	}
	builds := &remote.BuildSet{Own: cfg.LocalBin, Dir: cfg.PushDir}
	tags, err := builds.Tags()
	if err != nil {
		return nil, err
	}
	back, err := listen(cfg.Listen)
	if err != nil {
		return nil, err
	}
	defer back.Close()
	rep := &Report{Total: len(cfg.Hosts), Listen: back.Addr().String()}
	names := nodeNames(cfg.Hosts)
	var g errgroup.Group
	g.SetLimit(parallel)
	for i, h := range cfg.Hosts {
		n := &Node{Name: names[i], Slots: h.Slots}
		rep.Nodes = append(rep.Nodes, n)
		g.Go(func() error {
			nctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			defer cancel()
			c := &nodeCheck{cfg: &cfg, host: h, node: n, builds: builds, tags: tags, back: back}
			c.run(nctx)
			if nctx.Err() != nil && ctx.Err() == nil {
				c.timedOut()
			}
			n.decide()
			return nil
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, n := range rep.Nodes {
		if n.Ready {
			rep.Ready++
		}
	}
	return rep, nil
}

// nodeNames are the nodes' names as a run's records give them: the host,
// with the machinefile line where one host is listed twice.
func nodeNames(hosts []machinefile.Host) []string {
	count := map[string]int{}
	for _, h := range hosts {
		count[h.Destination()]++
	}
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Destination()
		if count[h.Destination()] > 1 {
			names[i] += ":" + strconv.Itoa(h.Line)
		}
	}
	return names
}

// nodeCheck is the check of one node.
type nodeCheck struct {
	cfg    *Config
	host   machinefile.Host
	node   *Node
	builds *remote.BuildSet
	tags   []string
	back   *wayBack

	info remote.Info
	// bin is a scrape of our version on the node that can run reach, or "".
	bin string
}

func (c *nodeCheck) run(ctx context.Context) {
	n := c.node
	n.Binary, n.WayBack, n.Clock, n.Fit = skip("not checked"), skip("not checked"), skip("not checked"), skip("not checked")
	if c.cfg.URL != "" {
		v := skip("not checked")
		n.URL = &v
	}
	if coordinator.IsLocal(c.host) {
		c.local(ctx)
		return
	}
	t := remote.Target{SSH: c.cfg.SSH, Dest: c.host.Destination(), Port: c.host.Port, ConnectTimeout: c.cfg.ConnectTimeout}
	req := remote.Request{Tags: c.tags}
	if !c.cfg.Push {
		req.Bin = c.cfg.RemoteBin
	}
	info, err := t.Probe(ctx, req)
	if err != nil {
		n.Login = loginVerdict(err)
		return
	}
	c.info = info
	n.Login = ok("%s shell", info.Shell)
	n.Shell, n.Platform, n.CPUs, n.Memory, n.Offset = info.Shell, info.Platform, info.CPUs, info.Memory, info.Offset
	n.Clock = clockVerdict(info.Offset)
	n.Fit = c.fit()
	n.Render = c.render(info.Browser)
	n.Binary = c.binary()
	n.WayBack = c.wayBack(ctx, t)
	if c.cfg.URL != "" {
		v := c.fetch(ctx, t)
		n.URL = &v
	}
}

// timedOut marks what the node's timeout cut short.
func (c *nodeCheck) timedOut() {
	say := fmt.Sprintf("no answer within %s (--timeout)", c.cfg.Timeout)
	for _, v := range []*Verdict{&c.node.Login, &c.node.Binary, &c.node.WayBack, c.node.URL} {
		if v != nil && v.Status == Skipped {
			*v = fail("the node or the network is slow, or a command on the node hangs: try a longer --timeout", "%s", say)
			return
		}
	}
}

// local is the check of a node that is this machine: a run starts its
// worker as a child, with this very binary, and it reaches the queue on
// loopback.
func (c *nodeCheck) local(ctx context.Context) {
	n := c.node
	n.Local = true
	n.Login = ok("this machine: no ssh")
	n.Platform = remote.Own()
	n.CPUs = numCPU()
	n.Memory = localMemory()
	n.Clock, n.Offset = ok("this machine's clock"), 0
	n.Fit = c.fit()
	browser, _ := render.Find("")
	n.Render = c.render(browser)
	n.Binary = ok("this binary (%s)", c.cfg.LocalBin)
	addr, err := c.addr(ctx)
	n.WayBack = c.back.dialHere(ctx, addr, err)
	if c.cfg.URL != "" {
		res, err := Fetch(ctx, c.cfg.URL, 10*time.Second)
		v := ok("%s", res)
		if err != nil {
			v = fail("check the URL, and this machine's DNS and proxy", "%v", err)
		}
		n.URL = &v
	}
}

// loginVerdict words a failed probe.
func loginVerdict(err error) Verdict {
	var se *remote.SSHError
	var ce *remote.CommandError
	switch {
	case errors.As(err, &se):
		return Verdict{Status: Fail, Say: se.Problem.Said, Fix: se.Problem.Fix, Kind: se.Problem.Kind}
	case errors.As(err, &ce):
		return fail("the login works but the node's shell does not run commands: check the user's login shell on the node",
			"logged in, but the probe failed: %v", err)
	}
	return fail("", "%v", err)
}

func clockVerdict(off time.Duration) Verdict {
	abs := off.Abs()
	dir := "ahead of"
	if off < 0 {
		dir = "behind"
	}
	switch {
	case off <= -ClockFail:
		return fail("set the node's clock (timedatectl set-ntp true, or ntpdate)",
			"%s %s this machine: the run's TLS certificate would not be valid yet there", abs.Round(time.Second), dir)
	case abs >= ClockWarn:
		return warn("turn on time sync on the node (timedatectl set-ntp true), or on this machine",
			"%s %s this machine", abs.Round(time.Millisecond), dir)
	}
	return ok("%s %s this machine", abs.Round(time.Millisecond), dir)
}

// fit warns where the node's slots, each reading a page of up to
// --max-body, would not fit its memory.
func (c *nodeCheck) fit() Verdict {
	n := c.node
	if n.Memory <= 0 {
		return skip("the node did not say how much memory it has")
	}
	need := int64(n.Slots) * c.cfg.MaxBody
	if need > n.Memory {
		return warn(fmt.Sprintf("give the node fewer slots (%s:N in the machinefile), or a smaller --max-body", c.host.Name),
			"%d slots × --max-body %s = %s, more than the node's %s of memory", n.Slots, bytesize.Format(c.cfg.MaxBody), bytesize.Format(need), bytesize.Format(n.Memory))
	}
	return ok("%d slots × %s fit in %s", n.Slots, bytesize.Format(c.cfg.MaxBody), bytesize.Format(n.Memory))
}

// render says whether the node can render pages with --render, given the
// browser found on its PATH ("" if none). Only a node the machinefile says
// render=yes of fails without one: the others fetch plain pages.
func (c *nodeCheck) render(browser string) Verdict {
	switch {
	case c.host.Render == machinefile.RenderNo:
		return skip("render=no in the machinefile")
	case browser != "":
		return ok("Chromium at %s", browser)
	case c.host.Render == machinefile.RenderYes:
		return fail("install Chromium there (Debian: apt-get install chromium), or drop render=yes", "render=yes, but no chromium, chromium-browser or google-chrome on the node's PATH")
	}
	return skip("no Chromium on the node's PATH: it fetches plain pages only")
}

// binary checks the scrape a run would start on the node: the build
// --push sends, or the one at --remote-bin.
func (c *nodeCheck) binary() Verdict {
	info := c.info
	build, buildErr := c.builds.For(info.Platform)
	if c.cfg.Push {
		if buildErr != nil {
			return fail("", "%v", buildErr)
		}
		v := buildVersion(build.Path)
		if v != c.cfg.Version {
			return fail(fmt.Sprintf("rebuild the set with scripts/build-all %s, and run this scrape from there", c.cfg.PushDir),
				"--push would send %s, which is version %q; this scrape is %q", build.Path, v, c.cfg.Version)
		}
		sh := info.Shell
		path := sh.Join(sh.Join(info.Cache, build.Tag()), sh.BinaryName())
		if info.Cached[build.Tag()] == build.Hash {
			c.bin = path
			return ok("%s is in the node's cache (%s)", baseName(build.Path), path)
		}
		return ok("--push will send %s (%s)", baseName(build.Path), bytesize.Format(build.Size))
	}
	wouldPush := "and --push has no build for it"
	if buildErr == nil {
		wouldPush = "or use --push, which would send " + baseName(build.Path)
	} else if me, isMissing := errors.AsType[*remote.MissingBuildError](buildErr); isMissing {
		wouldPush = fmt.Sprintf("or use --push after building %s (scripts/build-all %s)", me.Path, dirOf(me.Path))
	}
	bin := info.Bin
	if bin == nil {
		return fail(fmt.Sprintf("install scrape %s for %s there, or give --remote-bin its path, %s", c.cfg.Version, info.Platform, wouldPush),
			"no scrape at %s on the node", c.cfg.RemoteBin)
	}
	if !bin.Runs() {
		why := bin.Version
		if strings.Contains(why, "format error") || bin.Exit == 126 {
			why += fmt.Sprintf(" (not built for %s?)", info.Platform)
		}
		return fail(fmt.Sprintf("replace it with scrape %s built for %s, %s", c.cfg.Version, info.Platform, wouldPush),
			"%s does not run as scrape: exit status %d: %s", bin.Path, bin.Exit, why)
	}
	if got := bin.ReportedVersion(); got != c.cfg.Version {
		return fail(fmt.Sprintf("install scrape %s there, %s", c.cfg.Version, wouldPush),
			"%s is version %q; this scrape is %q", bin.Path, got, c.cfg.Version)
	}
	c.bin = bin.Path
	if buildErr == nil && bin.Hash != build.Hash {
		return warn("", "%s is version %s as ours, but another build (sha256 %.12s, ours for %s %.12s)", bin.Path, c.cfg.Version, bin.Hash, info.Platform, build.Hash)
	}
	return ok("%s, version %s", bin.Path, c.cfg.Version)
}

// addr is the address the node's worker would dial, with the listener's port.
func (c *nodeCheck) addr(ctx context.Context) (string, error) {
	host, err := coordinator.WorkerAddress(ctx, c.cfg.Listen, c.cfg.Advertise, c.cfg.SSH, c.host)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(c.back.Port())), nil
}

// buildVersion is the version stamped into a scrape binary, read from the
// file without running it (it may be built for another platform).
func buildVersion(path string) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	for _, s := range bi.Settings {
		if s.Key != "-ldflags" {
			continue
		}
		const key = "github.com/scrape-cluster/scrape/scrape.Version="
		if i := strings.Index(s.Value, key); i >= 0 {
			v := s.Value[i+len(key):]
			if j := strings.IndexAny(v, " '\""); j >= 0 {
				v = v[:j]
			}
			return v
		}
	}
	return scrape.Version // not stamped: the source's own
}
