package main

import (
	"cmp"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// noisy is the background load, in cores, from which a run is flagged: CPU
// used during it by neither the tool nor the site (peers' builds and tests).
const noisy = 0.2

type report struct {
	opts       options
	env        string
	scrapeNote string
	baseRev    string
	workloads  []workload
	results    struct {
		Runs []runResult `json:"runs"`
		Mem  *memResult  `json:"memory,omitempty"`
	}
	mem *memResult
}

func (r *report) add(wl workload, res runResult) {
	if !slices.ContainsFunc(r.workloads, func(w workload) bool { return w.Key == wl.Key }) {
		r.workloads = append(r.workloads, wl)
	}
	r.results.Runs = append(r.results.Runs, res)
}

// summary is one tool's medians over its runs of one workload.
type summary struct {
	Tool        string
	PagesPerSec float64
	PeakRSS     int64
	SumHWM      int64
	RootHWM     int64
	CPUPerPage  time.Duration
	// OwnPerPage and ChildPerPage split CPUPerPage, when Split: the
	// command's own process (scrape's coordinator) and its children (its
	// worker).
	OwnPerPage, ChildPerPage time.Duration
	Split                    bool
	All                      []float64
	Background               []float64
	Passed                   int
	Runs                     int
	Check                    check
}

func median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		var zero T
		return zero
	}
	return s[len(s)/2]
}

func (r *report) summarize(wl workload, tool string) (summary, bool) {
	s := summary{Tool: tool}
	var rss, hwm, root []int64
	var cpu, own, child []time.Duration
	split := true
	for _, res := range r.results.Runs {
		if res.Workload != wl.Key || res.Tool != tool {
			continue
		}
		s.Runs++
		s.All = append(s.All, res.PagesPerSec)
		s.Background = append(s.Background, res.Background)
		rss = append(rss, res.PeakRSS)
		hwm = append(hwm, res.SumHWM)
		root = append(root, res.RootHWM)
		cpu = append(cpu, res.CPU/time.Duration(wl.Pages))
		own = append(own, res.OwnCPU/time.Duration(wl.Pages))
		child = append(child, res.ChildCPU/time.Duration(wl.Pages))
		split = split && res.Split
		if res.Pass {
			s.Passed++
		} else if s.Check == (check{}) {
			s.Check = res.Check
		}
	}
	if s.Runs == 0 {
		return s, false
	}
	s.PagesPerSec, s.PeakRSS, s.SumHWM, s.RootHWM, s.CPUPerPage = median(s.All), median(rss), median(hwm), median(root), median(cpu)
	s.OwnPerPage, s.ChildPerPage, s.Split = median(own), median(child), split
	return s, true
}

// startupTable is the fixed cost of one run: a urls file of one URL.
func (r *report) startupTable(b *strings.Builder, wl workload) {
	fmt.Fprintf(b, "\n### Start-up: a urls file of 1 URL (the fixed cost of a run)\n\n")
	b.WriteString("| tool | wall time (ms) | peak RSS, tree (MiB) | CPU (ms) | verified |\n|---|--:|--:|--:|---|\n")
	for _, tool := range wl.Tools {
		s, ok := r.summarize(wl, tool)
		if !ok {
			continue
		}
		fmt.Fprintf(b, "| %s | %.0f | %.1f | %.0f | %d/%d runs |\n", tool, 1000/s.PagesPerSec, mib(s.PeakRSS),
			float64(s.CPUPerPage.Microseconds())/1000, s.Passed, s.Runs)
	}
}

func (r *report) markdown() string {
	var b strings.Builder
	o := r.opts
	fmt.Fprintf(&b, "\n## scrape benchmark\n\n%s  \n", r.env)
	fmt.Fprintf(&b, "Reproduce: `%s`  \n", strings.TrimSpace("cd bench && go run ./cmd/harness "+strings.Join(os.Args[1:], " ")))
	if r.baseRev != "" {
		fmt.Fprintf(&b, "scrape-base: scrape built from git revision %s (-base-rev), run with the same flags as scrape where it has them.  \n", r.baseRev)
	}
	fmt.Fprintf(&b, "%d runs per tool and workload, medians shown; %d pages in flight for every tool in the start-up, CPU-bound and latency-bound workloads (scrape: machinefile `localhost:%d`%s).\n",
		o.Runs, o.InFlight, o.InFlight, r.scrapeNote)
	for _, wl := range r.workloads {
		if wl.Key == "startup" {
			r.startupTable(&b, wl)
			continue
		}
		ideal := wl.ideal()
		if wl.Defaults {
			fmt.Fprintf(&b, "\n### %s: %d pages of ~12 KB on %d hosts (%d each, listed host by host in turn), %s added latency\n\n", wl.Name, wl.Pages, wl.Hosts, wl.PerHost, wl.Latency)
			fmt.Fprintf(&b, "Every tool as it comes: scrape as `scrape run urls.txt > out.jsonl`, no flag at all (this machine's %d CPUs, one slot each); "+
				"Scrapy with its defaults (16 requests in flight, 8 per domain; robots.txt obeyed, as in a `scrapy startproject` project); "+
				"the baseline and Colly with %d in flight. Ideal at %d in flight = %d / %s = %.0f pages/s.\n\n",
				runtime.NumCPU(), wl.InFlight, wl.InFlight, wl.InFlight, wl.Latency, ideal)
		} else {
			fmt.Fprintf(&b, "\n### %s: %d pages of ~12 KB, %s added latency, %d in flight\n\n", wl.Name, wl.Pages, wl.Latency, wl.InFlight)
			if ideal > 0 {
				fmt.Fprintf(&b, "Ideal (in-flight slots / latency) = %d / %s = %.0f pages/s.\n\n", wl.InFlight, wl.Latency, ideal)
			}
		}
		if wl.Note != "" {
			b.WriteString(wl.Note + "\n\n")
		}
		b.WriteString("| tool | pages/s | vs baseline | % of ideal | peak RSS, tree (MiB) | vs baseline | Σ VmHWM (MiB) | main process VmHWM (MiB) | CPU µs/page | coordinator CPU µs/page | worker CPU µs/page | pages/s of each run | verified |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|\n")
		base, hasBase := r.summarize(wl, "baseline")
		for _, tool := range wl.Tools {
			s, ok := r.summarize(wl, tool)
			if !ok {
				continue
			}
			ratio, rssRatio, pct := "–", "–", "–"
			if hasBase && base.PagesPerSec > 0 {
				ratio = fmt.Sprintf("%.2f×", s.PagesPerSec/base.PagesPerSec)
				rssRatio = fmt.Sprintf("%.2f×", float64(s.PeakRSS)/float64(base.PeakRSS))
			}
			if ideal > 0 {
				pct = fmt.Sprintf("%.0f%%", 100*s.PagesPerSec/ideal)
			}
			runs := make([]string, len(s.All))
			for i, x := range s.All {
				runs[i] = fmt.Sprintf("%.0f", x)
				if wall := float64(wl.Pages) / x; s.Background[i] >= noisy && wall >= 1 { // shorter runs: too few clock ticks to tell
					runs[i] += fmt.Sprintf(" (bg %.1f)", s.Background[i])
				}
			}
			ver := fmt.Sprintf("%d/%d runs: one complete record per URL", s.Passed, s.Runs)
			if s.Passed < s.Runs {
				ver = fmt.Sprintf("**%d/%d runs passed**; a failing run: %s", s.Passed, s.Runs, s.Check)
			}
			coord, worker := "–", "–"
			if strings.HasPrefix(tool, "scrape") && tool != "scrapy" && s.Split {
				coord, worker = fmt.Sprint(s.OwnPerPage.Microseconds()), fmt.Sprint(s.ChildPerPage.Microseconds())
			}
			fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %.1f | %s | %.1f | %.1f | %d | %s | %s | %s | %s |\n",
				tool, s.PagesPerSec, ratio, pct, mib(s.PeakRSS), rssRatio, mib(s.SumHWM), mib(s.RootHWM),
				s.CPUPerPage.Microseconds(), coord, worker, strings.Join(runs, ", "), ver)
		}
	}
	if m := r.mem; m != nil {
		r.results.Mem = m
		fmt.Fprintf(&b, "\n### Coordinator memory: %d-line urls file\n\n", m.Lines)
		what := fmt.Sprintf("the first %s of the run, then SIGTERM", m.Measured.Round(time.Second))
		if m.Finished {
			what = fmt.Sprintf("the whole run (%s)", m.Measured.Round(time.Second))
		}
		verdict := "within"
		if float64(m.CoordHWM)*1024 > 100e6 {
			verdict = "**over**"
		}
		fmt.Fprintf(&b, "Measured: %s; in that time %d records were written (%.1f%% of the file; the coordinator had read at most one window further). "+
			"Coordinator (the `scrape run` process alone, embedded NATS JetStream included) peak RSS: **%.1f MiB** (VmHWM; %.1f MB, %s the 100 MB target); sampled VmRSS peak %.1f MiB. Its worker child: %.1f MiB.\n\n",
			what, m.Records, 100*float64(m.Records)/float64(m.Lines), mib(m.CoordHWM), float64(m.CoordHWM)*1024/1e6, verdict, mib(m.CoordPeak), mib(m.WorkerHWM))
		b.WriteString("Coordinator VmRSS over time: ")
		var marks []string
		next := time.Second
		for _, s := range m.Series {
			if s.At >= next {
				marks = append(marks, fmt.Sprintf("%ds %.1f", int(s.At.Seconds()), mib(s.Root)))
				switch {
				case next < 5*time.Second:
					next = 5 * time.Second
				default:
					next += 10 * time.Second
				}
			}
		}
		b.WriteString(strings.Join(marks, ", ") + " MiB.\n")
		if !m.Finished {
			fmt.Fprintf(&b, "After the SIGTERM it stopped in %s (exit: %s).\n", m.StopTook.Round(time.Millisecond), m.ExitStatus)
		}
	}
	b.WriteString(`
Notes: pages/s = pages / wall time of the whole command (start-up and shutdown included). Peak RSS, tree =
the highest sum of VmRSS over the command's process tree (scrape: coordinator + worker child), sampled from
/proc every 50 ms; Σ VmHWM = the sum of each process's own peak (kernel high-water mark), an upper bound.
CPU µs/page = user+system time of the command and its reaped children / pages (the site's CPU excluded);
for scrape it is split into the coordinator's own (the scrape run process) and its worker's (the child it
reaps), read from the coordinator's /proc/PID/stat once it has exited and before the harness reaps it
(waitid with WNOWAIT): utime+stime and cutime+cstime, final and exact, with no sampling race.
A run marked "bg X" had X cores of background load: CPU time used during it by processes other than
the tool and the site (from /proc/stat), so its figure is less trustworthy.
`)
	return b.String()
}
