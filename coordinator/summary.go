package coordinator

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/scrape-cluster/scrape/queue"
)

// Summary is what a run did, counted from the records it wrote.
type Summary struct {
	Records int            `json:"records"`
	OK      int            `json:"ok"`
	Errors  map[string]int `json:"errors"` // by kind
	Bytes   int64          `json:"bytes"`
	PerNode map[string]int `json:"per_node"`
	Nodes   int            `json:"nodes"`
	Elapsed time.Duration  `json:"-"`
	// ElapsedSeconds and PagesPerSecond restate Elapsed for readers of
	// the JSON; NodeRates gives each node's share and pace.
	ElapsedSeconds float64             `json:"elapsed_seconds"`
	PagesPerSecond float64             `json:"pages_per_second"`
	NodeRates      map[string]NodeRate `json:"node_rates,omitempty"`
	// Outstanding is how many released tasks had no record when the run
	// ended: non-zero only for a run that was interrupted or failed.
	Outstanding int `json:"outstanding"`
	// Retries is how many attempts were made again after a passing failure.
	Retries int `json:"retries"`
	// Rejected counts results refused unwritten: from a worker the task
	// was not delivered to, or not a record at all.
	Rejected int `json:"rejected"`
	// PerHostHeld is how long the --per-host limit kept work back while
	// slots were idle, when that was a fifth of the run or more.
	PerHostHeld time.Duration `json:"per_host_held_ns,omitempty"`
	PerHost     int           `json:"per_host"`
	// Slowed says, by host, why the run went slower on it than --per-host
	// and --delay allow: its robots.txt's Crawl-delay, or its 429s and 503s
	// (and how far they took its pace down). It names the maxSlowedHosts
	// most slowed; SlowedHosts counts them all.
	Slowed      map[string]string `json:"slowed,omitempty"`
	SlowedHosts int               `json:"slowed_hosts,omitempty"`
	// Unreachable are the hosts whose URLs were recorded as
	// host_unreachable, by host.
	Unreachable []UnreachableHost `json:"unreachable,omitempty"`
}

// NodeRate is one node's part of a run.
type NodeRate struct {
	Pages          int     `json:"pages"`
	Share          float64 `json:"share"`
	PagesPerSecond float64 `json:"pages_per_second"`
}

// settle fills the figures derived from the counts, for elapsed.
func (s *Summary) settle(elapsed time.Duration) {
	s.Elapsed = elapsed
	s.ElapsedSeconds = elapsed.Seconds()
	s.PagesPerSecond = 0
	if s.ElapsedSeconds > 0 {
		s.PagesPerSecond = float64(s.Records) / s.ElapsedSeconds
	}
	s.NodeRates = map[string]NodeRate{}
	for n, pages := range s.PerNode {
		r := NodeRate{Pages: pages, Share: float64(pages) / float64(max(s.Records, 1))}
		if s.ElapsedSeconds > 0 {
			r.PagesPerSecond = float64(pages) / s.ElapsedSeconds
		}
		s.NodeRates[n] = r
	}
}

// clone copies s, maps included.
func (s *Summary) clone() Summary {
	c := *s
	c.Errors = maps.Clone(s.Errors)
	c.PerNode = maps.Clone(s.PerNode)
	c.NodeRates = maps.Clone(s.NodeRates)
	c.Slowed = maps.Clone(s.Slowed)
	c.Unreachable = slices.Clone(s.Unreachable)
	return c
}

// WriteFile writes the summary as JSON (scrape run --stats).
func (s *Summary) WriteFile(path string) error {
	s.settle(s.Elapsed)
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write stats: %w", err)
	}
	return nil
}

func newSummary() *Summary {
	return &Summary{Errors: map[string]int{}, PerNode: map[string]int{}}
}

func (s *Summary) add(m queue.ResultMeta) {
	s.Records++
	s.Bytes += m.Bytes
	if m.Kind == "" {
		s.OK++
	} else {
		s.Errors[m.Kind]++
	}
	if m.Node != "" {
		s.PerNode[m.Node]++
	}
}

// Print writes the end-of-run report a person reads on stderr.
func (s *Summary) Print(w io.Writer) {
	s.settle(s.Elapsed)
	fmt.Fprintf(w, "scrape: %d records (%d ok, %d errors) in %s, %.1f pages/s, %s read\n",
		s.Records, s.OK, s.Records-s.OK, s.Elapsed.Round(10*time.Millisecond), s.PagesPerSecond, humanBytes(s.Bytes))
	if len(s.Errors) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(s.Errors)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, s.Errors[k]))
		}
		fmt.Fprintf(w, "  errors: %s\n", strings.Join(parts, ", "))
	}
	for _, n := range slices.Sorted(maps.Keys(s.NodeRates)) {
		r := s.NodeRates[n]
		fmt.Fprintf(w, "  node %s: %d pages (%.0f%%), %.1f pages/s\n", n, r.Pages, 100*r.Share, r.PagesPerSecond)
	}
	if s.Retries > 0 {
		fmt.Fprintf(w, "  retries: %d\n", s.Retries)
	}
	if s.Rejected > 0 {
		fmt.Fprintf(w, "  rejected: %d results not written: sent by a worker the task was not given to, or unreadable\n", s.Rejected)
	}
	if s.PerHostHeld > 0 {
		fmt.Fprintf(w, "  the per-host limit held the run back for %s of %s: at most %d requests per host were in flight while slots were idle; raise --per-host if the site allows\n",
			s.PerHostHeld.Round(100*time.Millisecond), s.Elapsed.Round(100*time.Millisecond), s.PerHost)
	}
	for _, h := range slices.Sorted(maps.Keys(s.Slowed)) {
		fmt.Fprintf(w, "  slowed down %s: %s\n", h, s.Slowed[h])
	}
	if more := s.SlowedHosts - len(s.Slowed); more > 0 {
		fmt.Fprintf(w, "  slowed down %d more hosts\n", more)
	}
	for i, u := range s.Unreachable {
		if i == maxUnreachableShown && len(s.Unreachable) > i+1 {
			fmt.Fprintf(w, "  %d more hosts unreachable (--stats lists them all)\n", len(s.Unreachable)-i)
			break
		}
		fmt.Fprintf(w, "  host %s unreachable: %d URLs recorded as host_unreachable (%s)\n", u.Host, u.URLs, u.Error)
	}
	if s.Outstanding > 0 {
		fmt.Fprintf(w, "  %d URLs have no record yet\n", s.Outstanding)
	}
}

// maxUnreachableShown bounds the unreachable hosts Print names one by one.
const maxUnreachableShown = 10

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
