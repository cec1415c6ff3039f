package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

type binaries struct {
	Scrape, Site, Baseline, Colly string
	// PerHost is set when this scrape has --per-host (a politeness limit
	// of requests in flight to one host, default 8): the benchmark's one
	// host must get every slot, or scrape is measured at 8 in flight
	// against the others' 64.
	PerHost bool
	// IgnoreRobots is set when this scrape has --ignore-robots. The
	// baseline and Colly (by default) do not fetch robots.txt; scrape
	// does, which costs one request, a whole latency, before the first
	// page. The harness turns it off so every tool makes the same
	// requests.
	IgnoreRobots bool
	// PerSlot is set when this scrape has --per-slot (pages in flight per
	// machinefile slot, default 16): the harness sets it to 1, so that
	// localhost:N is N pages in flight, as the others' N are.
	PerSlot bool
	// Spider is the Scrapy spider file, written into the working
	// directory, when the scrapy command is installed; "" otherwise.
	Spider, NoScrapy string
	// Base is scrape built from -base-rev (BaseRev, short), run as the
	// tool scrape-base beside scrape; nil without -base-rev.
	Base    *binaries
	BaseRev string
}

// probe asks the scrape binary which of the flags the harness may need it knows.
func (b *binaries) probe() {
	out, _ := exec.Command(b.Scrape, "run", "--help").CombinedOutput()
	b.PerHost = strings.Contains(string(out), "--per-host")
	b.IgnoreRobots = strings.Contains(string(out), "--ignore-robots")
	b.PerSlot = strings.Contains(string(out), "--per-slot")
}

// build compiles the bench tools from this module and scrape from the parent
// module: its working tree, a git revision of it (-scrape-rev, through git
// archive, so peers' unfinished edits do not break the build), or a given
// binary. It returns a line saying what scrape was built from.
func build(ctx context.Context, o options, work string) (binaries, string, error) {
	bin := filepath.Join(work, "bin")
	b := binaries{
		Scrape:   filepath.Join(bin, "scrape"),
		Site:     filepath.Join(bin, "benchsite"),
		Baseline: filepath.Join(bin, "baseline"),
		Colly:    filepath.Join(bin, "collyrun"),
	}
	logf("building benchsite, baseline, collyrun")
	if err := goCmd(ctx, ".", "build", "-o", bin+"/", "./cmd/benchsite", "./cmd/baseline", "./cmd/collyrun"); err != nil {
		return b, "", err
	}
	if slices.Contains(o.Tools, "scrapy") {
		b.Spider, b.NoScrapy = setUpScrapy(bin)
	}
	mainDir, err := filepath.Abs(o.MainDir)
	if err != nil {
		return b, "", err
	}
	head := gitOut(mainDir, "rev-parse", "--short", "HEAD")
	if o.BaseRev != "" {
		base := binaries{Scrape: filepath.Join(bin, "scrape-base")}
		rev, err := buildRev(ctx, mainDir, o.BaseRev, filepath.Join(work, "scrape-base-src"), base.Scrape)
		if err != nil {
			return b, "", err
		}
		base.probe()
		b.Base, b.BaseRev = &base, rev
	}
	switch {
	case o.ScrapeBin != "":
		b.Scrape, err = filepath.Abs(o.ScrapeBin)
		b.probe()
		return b, "scrape: given binary " + b.Scrape, err
	case o.ScrapeRev != "":
		rev, err := buildRev(ctx, mainDir, o.ScrapeRev, filepath.Join(work, "scrape-src"), b.Scrape)
		if err != nil {
			return b, "", err
		}
		b.probe()
		return b, "scrape: git revision " + rev + " (" + o.ScrapeRev + ")", nil
	default:
		logf("building scrape from the working tree %s", mainDir)
		if err := goCmd(ctx, mainDir, "build", "-o", b.Scrape, "./cmd/scrape"); err != nil {
			return b, "", fmt.Errorf("%w (if peers' edits are mid-way, try -scrape-rev HEAD)", err)
		}
		b.probe()
		dirty := ""
		if gitOut(mainDir, "status", "--porcelain", "--untracked-files=no") != "" {
			dirty = " with uncommitted changes"
		}
		return b, "scrape: working tree at " + head + dirty, nil
	}
}

// buildRev builds scrape from git revision rev of mainDir into dst, through
// git archive into src, so that uncommitted edits do not enter it. It
// returns the revision's short hash.
func buildRev(ctx context.Context, mainDir, rev, src, dst string) (string, error) {
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	short := gitOut(mainDir, "rev-parse", "--short", rev)
	logf("building scrape from git revision %s of %s", short, mainDir)
	arch := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", mainDir, rev, src)
	if out, err := arch.CombinedOutput(); err != nil {
		return "", fmt.Errorf("git archive %s: %v: %s", rev, err, out)
	}
	return short, goCmd(ctx, src, "build", "-o", dst, "./cmd/scrape")
}

func goCmd(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return nil
}

func gitOut(dir string, args ...string) string {
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

// environment describes the machine, for the report's header.
func environment(buildInfo string) string {
	cpu := "?"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s, %s/%s; %s", runtime.NumCPU(), cpu, runtime.Version(), runtime.GOOS, runtime.GOARCH, buildInfo)
}
