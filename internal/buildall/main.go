// Command buildall builds scrape for every platform --push serves
// (remote.Builds) into one directory, each binary named as --push looks for
// it (scrape-linux-arm64, scrape-windows-amd64.exe, ...) and stamped with
// the same version, so that scrape check can compare them:
//
//	go run ./internal/buildall [-only linux/arm64,...] DIR
//
// scripts/build-all runs it. The version is scrape.Version of the source
// tree, plus the commit when the tree is a git checkout ("+<commit>", and
// ".dirty" with uncommitted changes).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/scrape-cluster/scrape/remote"
	"github.com/scrape-cluster/scrape/scrape"
)

// versionVar is what -ldflags -X sets.
const versionVar = "github.com/scrape-cluster/scrape/scrape.Version"

func main() {
	only := flag.String("only", "", "build just these `platforms` (comma-separated, as linux/armv7)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: buildall [-only os/cpu,...] DIR\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := buildAll(ctx, flag.Arg(0), *only); err != nil {
		fmt.Fprintln(os.Stderr, "buildall:", err)
		os.Exit(1)
	}
}

func buildAll(ctx context.Context, dir, only string) error {
	want := map[string]bool{}
	for p := range strings.SplitSeq(only, ",") {
		if p = strings.TrimSpace(p); p != "" {
			want[p] = true
		}
	}
	var builds []remote.Platform
	for _, p := range remote.Builds {
		if len(want) == 0 || want[p.String()] {
			builds = append(builds, p)
			delete(want, p.String())
		}
	}
	for p := range want {
		return fmt.Errorf("-only %s: not a platform --push serves (%s)", p, platforms())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	version := stampedVersion(ctx)
	for _, p := range builds {
		out := filepath.Join(dir, p.BuildName())
		start := time.Now()
		// No -trimpath: it leaves -ldflags out of the build info, which is
		// where scrape check reads the version of a build it cannot run.
		cmd := exec.CommandContext(ctx, "go", "build",
			"-ldflags", "-s -w -X "+versionVar+"="+version,
			"-o", out, "github.com/scrape-cluster/scrape/cmd/scrape")
		cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), p.Env()...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build %s: %w", p, err)
		}
		fi, err := os.Stat(out)
		if err != nil {
			return err
		}
		fmt.Printf("%-32s %-14s %5.1f MiB  %s  (%s)\n", out, p, float64(fi.Size())/(1<<20), version, time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}

func platforms() string {
	var s []string
	for _, p := range remote.Builds {
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

// stampedVersion is the tree's version with its commit, when git knows it.
func stampedVersion(ctx context.Context) string {
	v := scrape.Version
	commit, err := exec.CommandContext(ctx, "git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return v
	}
	v += "+" + strings.TrimSpace(string(commit))
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		v += ".dirty"
	}
	return v
}
