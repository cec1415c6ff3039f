package coordinator

import (
	"context"
	"fmt"
	"github.com/scrape-cluster/scrape/internal/bytesize"
	"os"
	"strings"
	"time"

	"github.com/scrape-cluster/scrape/remote"
)

// pushTimeout bounds one probe or copy over ssh. A binary of tens of MiB
// over a slow link still fits.
const pushTimeout = 5 * time.Minute

// target is how ssh reaches the node.
func (n Node) target(cfg *Config) remote.Target {
	return remote.Target{SSH: cfg.SSH, Dest: n.Host.Destination(), Port: n.Host.Port, ConnectTimeout: cfg.ConnectTimeout}
}

// push makes sure node n has the build for its OS and CPU, and returns its
// path there and the node's shell, which the worker's command line is
// written for. The node is asked first (remote.Probe): its platform picks
// the build, and a copy with the same hash in its cache is not sent again.
// A node of a platform with no build fails alone, saying which file is
// missing and how to make it.
func (l *processLauncher) push(ctx context.Context, n Node) (string, remote.Shell, error) {
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	tags, err := l.builds.Tags()
	if err != nil {
		return "", "", err
	}
	t := n.target(l.cfg)
	info, err := t.Probe(ctx, remote.Request{Tags: tags})
	if err != nil {
		return "", "", fmt.Errorf("push to %s: %w", n.Name, err)
	}
	bin, err := l.builds.For(info.Platform)
	if err != nil {
		return "", "", fmt.Errorf("push to %s: %w", n.Name, err)
	}
	sh := info.Shell
	dir := sh.Join(info.Cache, bin.Tag())
	path := sh.Join(dir, sh.BinaryName())
	if info.Cached[bin.Tag()] == bin.Hash {
		l.log.Info("binary already on node", "node", n.Name, "path", path, "platform", info.Platform.String())
		return path, sh, nil
	}
	f, err := os.Open(bin.Path)
	if err != nil {
		return "", "", fmt.Errorf("push to %s: %w", n.Name, err)
	}
	defer f.Close()
	got, err := t.Run(ctx, sh.UploadCommand(dir), f)
	if err != nil {
		return "", "", fmt.Errorf("push to %s: copy: %w", n.Name, err)
	}
	if strings.TrimSpace(got) != bin.Hash {
		return "", "", fmt.Errorf("push to %s: copy arrived with hash %q, want %s", n.Name, strings.TrimSpace(got), bin.Hash)
	}
	fmt.Fprintf(l.stderr, "scrape: pushed %s (%s, %s) to %s:%s\n", bytesize.Format(bin.Size), info.Platform, bin.Hash[:12], n.Name, path)
	return path, sh, nil
}
