// Command harness runs the whole benchmark: it builds scrape (from the parent
// module), the local test site, the plain-Go baseline and the Colly runner,
// then, on one site per workload, runs each tool several times and prints a
// markdown table of pages/s, peak RSS and the ratio to the baseline, followed
// by the coordinator-memory case on a 1,000,000-line urls file.
//
//	cd bench && go run ./cmd/harness            # everything, about 5 minutes on 2 cores
//	go run ./cmd/harness -runs 5 -workloads cpu # one workload, five runs
//
// All traffic stays on 127.0.0.1: the site listens there and scrape's queue
// is told to (--listen 127.0.0.1:0).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

type options struct {
	Runs       int
	InFlight   int
	Spread     spreadOptions
	CPUPages   int
	LatPages   int
	Latency    time.Duration
	MemLines   int
	MemTime    time.Duration
	Workloads  []string
	Tools      []string
	Work       string
	Keep       bool
	MainDir    string
	ScrapeRev  string
	ScrapeBin  string
	BaseRev    string
	RunTimeout time.Duration
	Report     string
}

func main() {
	var o options
	var workloads, tools string
	flag.IntVar(&o.Runs, "runs", 3, "runs per tool and workload; the table shows medians")
	flag.IntVar(&o.InFlight, "inflight", 64, "pages in flight: scrape slots (localhost:N), baseline goroutines, Colly parallelism")
	flag.IntVar(&o.CPUPages, "cpu-pages", 10000, "pages of the CPU-bound workload")
	flag.IntVar(&o.LatPages, "lat-pages", 2000, "pages of the latency-bound workload")
	flag.DurationVar(&o.Latency, "latency", 100*time.Millisecond, "added latency per response of the latency-bound workload")
	flag.IntVar(&o.MemLines, "mem-lines", 1_000_000, "lines of the coordinator-memory urls file")
	flag.DurationVar(&o.MemTime, "mem-time", 10*time.Minute, "longest the coordinator-memory run is measured before it is stopped (SIGTERM); the default lets it finish")
	flag.IntVar(&o.Spread.Hosts, "spread-hosts", 50, "hosts of the out-of-the-box workload (loopback addresses 127.0.0.2 on)")
	flag.IntVar(&o.Spread.PerHost, "spread-pages", 40, "pages per host of the out-of-the-box workload")
	flag.IntVar(&o.Spread.InFlight, "spread-inflight", 16, "pages in flight of the baseline and Colly in the out-of-the-box workload (scrape and Scrapy run with their defaults)")
	flag.StringVar(&workloads, "workloads", "startup,cpu,latency,spread,mem", "workloads to run: startup (a 1-URL file: the fixed cost of a run), cpu, latency, spread (out of the box: many hosts, every tool with its defaults), mem")
	flag.StringVar(&tools, "tools", "scrape,baseline,colly,scrapy", "tools to compare (scrapy: only in the spread workload, and only where the scrapy command is installed)")
	flag.StringVar(&o.Work, "work", "", "working directory (default: a new temporary one, removed at the end unless -keep)")
	flag.BoolVar(&o.Keep, "keep", false, "keep the working directory: binaries, urls files, outputs")
	flag.StringVar(&o.MainDir, "main", "..", "the scrape module's directory")
	flag.StringVar(&o.ScrapeRev, "scrape-rev", "", "build scrape from this git revision of -main (git archive) instead of its working tree")
	flag.StringVar(&o.ScrapeBin, "scrape-bin", "", "use this scrape binary instead of building one")
	flag.StringVar(&o.BaseRev, "base-rev", "", "also run scrape built from this git revision of -main, as the tool scrape-base, in the same rotation: a before-and-after under the same load")
	flag.DurationVar(&o.RunTimeout, "run-timeout", 5*time.Minute, "longest one run may take before it is stopped")
	flag.StringVar(&o.Report, "report", "", "also write the markdown report to this file")
	flag.Parse()
	o.Workloads = strings.Split(workloads, ",")
	o.Tools = strings.Split(tools, ",")
	if o.BaseRev != "" && !slices.Contains(o.Tools, "scrape-base") {
		o.Tools = slices.Insert(o.Tools, 1, "scrape-base")
	}
	for _, t := range o.Tools {
		if t == "scrape-base" && o.BaseRev == "" {
			log.Fatal("harness: the tool scrape-base needs -base-rev")
		}
		if !slices.Contains([]string{"scrape", "scrape-base", "baseline", "colly", "scrapy"}, t) {
			log.Fatalf("harness: unknown tool %q", t)
		}
	}
	if o.Runs < 1 || o.InFlight < 1 || o.Spread.Hosts < 1 || o.Spread.Hosts > 250 || o.Spread.PerHost < 1 || o.Spread.InFlight < 1 {
		log.Fatal("harness: -runs, -inflight, -spread-pages and -spread-inflight must be at least 1, -spread-hosts 1 to 250")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		log.Fatalf("harness: %v", err)
	}
}

func run(ctx context.Context, o options) error {
	if o.Work == "" {
		dir, err := os.MkdirTemp("", "scrape-bench-")
		if err != nil {
			return err
		}
		o.Work = dir
		if !o.Keep {
			defer os.RemoveAll(dir)
		}
	}
	work, err := filepath.Abs(o.Work)
	if err != nil {
		return err
	}
	logf("working in %s", work)
	bins, buildInfo, err := build(ctx, o, work)
	if err != nil {
		return err
	}
	rep := &report{opts: o, env: environment(buildInfo), baseRev: bins.BaseRev}
	if bins.PerHost {
		// A per-host limit counts a task from its release into the queue
		// until its result is collected, a little longer than its request:
		// equal to the slots, it would leave slots idle between pages.
		rep.scrapeNote = fmt.Sprintf(", `--per-host %d` (twice the slots) so that the politeness limit does not bind: the %d slots bound the requests in flight, as the others' %d do", 2*o.InFlight, o.InFlight, o.InFlight)
	}
	if bins.IgnoreRobots {
		rep.scrapeNote += ", `--ignore-robots` so that it makes the same requests as the others (none fetch robots.txt)"
	}
	if bins.PerSlot {
		rep.scrapeNote += ", `--per-slot 1` so that each slot is one page in flight"
	}

	for _, w := range o.Workloads {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch w {
		case "startup":
			wl := workload{Name: "start-up", Key: "startup", Pages: 1, InFlight: o.InFlight, Tools: pinned(o.Tools)}
			if err := runWorkload(ctx, o, bins, work, wl, rep); err != nil {
				return err
			}
		case "cpu":
			wl := workload{Name: "CPU-bound", Key: "cpu", Pages: o.CPUPages, InFlight: o.InFlight, Tools: pinned(o.Tools)}
			if err := runWorkload(ctx, o, bins, work, wl, rep); err != nil {
				return err
			}
		case "latency":
			wl := workload{Name: "latency-bound", Key: "latency", Pages: o.LatPages, Latency: o.Latency, InFlight: o.InFlight, Tools: pinned(o.Tools)}
			if err := runWorkload(ctx, o, bins, work, wl, rep); err != nil {
				return err
			}
		case "spread":
			if err := runWorkload(ctx, o, bins, work, spreadWorkload(o, bins), rep); err != nil {
				return err
			}
		case "mem":
			if err := runMemory(ctx, o, bins, work, rep); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown workload %q", w)
		}
	}
	md := rep.markdown()
	fmt.Print(md)
	if o.Report != "" {
		if err := os.WriteFile(o.Report, []byte(md), 0o644); err != nil {
			return err
		}
	}
	raw, _ := json.MarshalIndent(rep.results, "", "  ")
	return os.WriteFile(filepath.Join(work, "results.json"), raw, 0o644)
}

// workload is one site and one urls file.
type workload struct {
	Name     string
	Key      string
	Pages    int
	Latency  time.Duration
	InFlight int
	// Hosts, when more than 0, spreads the site over that many loopback
	// addresses, each serving PerHost pages; 0 is one host on 127.0.0.1.
	Hosts, PerHost int
	// Defaults runs scrape with no flag at all: every tool as it comes.
	Defaults bool
	Tools    []string // the tools that run it
	Note     string   // for the report: what was left out, and why
}

// sitePages is how many pages each host of the site serves.
func (w workload) sitePages() int {
	if w.Hosts > 0 {
		return w.PerHost
	}
	return w.Pages
}

// pinned are the tools of a workload that pins every tool's pages in flight:
// Scrapy is measured only with its defaults.
func pinned(tools []string) []string {
	return slices.DeleteFunc(slices.Clone(tools), func(t string) bool { return t == "scrapy" })
}

// ideal is the latency bound: every slot busy, each page taking Latency.
func (w workload) ideal() float64 {
	if w.Latency <= 0 {
		return 0
	}
	return float64(w.InFlight) / w.Latency.Seconds()
}

// runResult is one run of one tool.
type runResult struct {
	Workload    string        `json:"workload"`
	Tool        string        `json:"tool"`
	Run         int           `json:"run"`
	Wall        time.Duration `json:"wall_ns"`
	PagesPerSec float64       `json:"pages_per_sec"`
	CPU         time.Duration `json:"cpu_ns"`
	// OwnCPU and ChildCPU split CPU, when Split: the command's own process
	// (scrape: the coordinator) and its reaped children (the worker).
	OwnCPU     time.Duration `json:"own_cpu_ns"`
	ChildCPU   time.Duration `json:"children_cpu_ns"`
	Split      bool          `json:"split"`
	PeakRSS    int64         `json:"peak_rss_kib"`   // sampled peak of the tree's summed VmRSS
	SumHWM     int64         `json:"sum_vmhwm_kib"`  // sum of each process's VmHWM
	RootHWM    int64         `json:"root_vmhwm_kib"` // the command's own process (scrape: the coordinator)
	Procs      int           `json:"procs"`
	SiteCPU    time.Duration `json:"site_cpu_ns"`
	Background float64       `json:"background_cores"` // CPU used by neither the tool nor the site, in cores
	Check      check         `json:"check"`
	Pass       bool          `json:"pass"`
	Err        string        `json:"error,omitempty"`
}

func runWorkload(ctx context.Context, o options, bins binaries, work string, wl workload, rep *report) error {
	dir := filepath.Join(work, wl.Key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	site, err := startSite(bins.Site, wl.sitePages(), wl.Latency, wl.Hosts)
	if err != nil {
		return err
	}
	defer site.stop()
	urls := filepath.Join(dir, "urls.txt")
	if err := urlsFile(urls, site.URLs, wl.Pages, wl.sitePages()); err != nil {
		return err
	}
	mf := filepath.Join(dir, "machinefile")
	if err := os.WriteFile(mf, fmt.Appendf(nil, "localhost:%d\n", wl.InFlight), 0o644); err != nil {
		return err
	}
	logf("%s: %d pages, latency %s, %d in flight, site %s (%d hosts)", wl.Name, wl.Pages, wl.Latency, wl.InFlight, site.URL, len(site.URLs))

	for r := range o.Runs {
		// Rotate the order so no tool always runs first (cold caches) or
		// last (after the others' connections and garbage).
		order := slices.Clone(wl.Tools)
		if len(order) == 0 {
			return nil
		}
		for range r % len(order) {
			order = append(order[1:], order[0])
		}
		for _, tool := range order {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			out := filepath.Join(dir, fmt.Sprintf("%s-%d.jsonl", tool, r+1))
			tc := toolCommand(bins, tool, wl, mf, urls, out)
			busy0, site0 := systemBusy(), procCPU(site.pid())
			m, err := runMeasured(ctx, dir, tc, o.RunTimeout, 0, false)
			if err != nil {
				return fmt.Errorf("%s: %w", tool, err)
			}
			siteCPU := procCPU(site.pid()) - site0
			// What the machine did besides the tool and the site: other
			// processes (peers' test runs, say) that share its CPUs.
			other := systemBusy() - busy0 - m.CPU.Seconds() - siteCPU
			res := runResult{
				Workload: wl.Key, Tool: tool, Run: r + 1, Wall: m.Wall, CPU: m.CPU,
				PagesPerSec: float64(wl.Pages) / m.Wall.Seconds(),
				OwnCPU:      m.Own, ChildCPU: m.Children, Split: m.Split,
				PeakRSS: m.Mem.PeakTotal, SumHWM: m.Mem.sumHWM(), Procs: len(m.Mem.Procs),
				SiteCPU:    time.Duration(siteCPU * float64(time.Second)),
				Background: max(0, other/m.Wall.Seconds()),
			}
			res.RootHWM = m.Mem.rootHWM()
			if m.ExitErr != nil {
				res.Err = fmt.Sprintf("%v: %s", m.ExitErr, lastLine(m.Stderr))
			}
			c, err := verify(out, site.URLs, wl.Pages, wl.sitePages(), max(0, min(20, wl.sitePages()-1)))
			if err != nil {
				res.Err = strings.TrimSpace(res.Err + " verify: " + err.Error())
			}
			res.Check, res.Pass = c, err == nil && m.ExitErr == nil && c.pass(wl.Pages)
			logf("  run %d %-8s %7.1f pages/s  wall %6.2fs  cpu %6.2fs  site cpu %5.2fs  background %.2f cores  peak RSS %6.1f MiB (%d procs)  %s%s",
				r+1, tool, res.PagesPerSec, m.Wall.Seconds(), m.CPU.Seconds(), siteCPU, res.Background, mib(res.PeakRSS), res.Procs, c, failNote(res))
			rep.add(wl, res)
			if !o.Keep {
				_ = os.Remove(out)
			}
		}
	}
	return nil
}

// toolCommand is how tool runs workload wl. In a workload of pinned pages
// in flight, scrape gets the machinefile localhost:N, the others N; in one
// of defaults, scrape gets no flag at all (its records go to standard
// output, its default), Scrapy none that changes how it fetches, and the
// baseline and Colly their N.
func toolCommand(b binaries, tool string, wl workload, machinefile, urls, out string) command {
	n := wl.InFlight
	switch tool {
	case "scrape":
		if wl.Defaults {
			return command{Argv: []string{b.Scrape, "run", urls}, Stdout: out}
		}
		argv := []string{b.Scrape, "run", "-f", machinefile, "--listen", "127.0.0.1:0", "-q", "-o", out}
		if b.PerHost {
			argv = append(argv, "--per-host", fmt.Sprint(2*n))
		}
		if b.IgnoreRobots {
			argv = append(argv, "--ignore-robots")
		}
		if b.PerSlot {
			argv = append(argv, "--per-slot", "1")
		}
		return command{Argv: append(argv, urls)}
	case "scrape-base":
		return toolCommand(*b.Base, "scrape", wl, machinefile, urls, out)
	case "scrapy":
		return command{Argv: scrapyArgv(b.Spider, urls, out)}
	case "baseline":
		return command{Argv: []string{b.Baseline, "-n", fmt.Sprint(n), "-o", out, urls}}
	default:
		return command{Argv: []string{b.Colly, "-n", fmt.Sprint(n), "-o", out, urls}}
	}
}

func failNote(r runResult) string {
	if r.Pass {
		return ""
	}
	return "  FAIL " + r.Err
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
