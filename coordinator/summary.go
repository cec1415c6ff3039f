package coordinator

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/scrape-cluster/scrape/worker"
)

// Summary is what a run did, counted from the records it wrote.
type Summary struct {
	Records int            `json:"records"`
	OK      int            `json:"ok"`
	Errors  map[string]int `json:"errors"` // by kind
	Bytes   int64          `json:"bytes"`
	PerNode map[string]int `json:"per_node"`
	Nodes   int            `json:"nodes"`
	Elapsed time.Duration  `json:"elapsed_ns"`
	// Outstanding is how many released tasks had no record when the run
	// ended: non-zero only for a run that was interrupted or failed.
	Outstanding int `json:"outstanding"`
	// Retries is how many attempts were made again after a passing failure.
	Retries int `json:"retries"`
	// PerHostHeld is how long the --per-host limit kept work back while
	// slots were idle, when that was a fifth of the run or more.
	PerHostHeld time.Duration `json:"per_host_held_ns,omitempty"`
	PerHost     int           `json:"per_host"`
}

func newSummary() *Summary {
	return &Summary{Errors: map[string]int{}, PerNode: map[string]int{}}
}

func (s *Summary) add(m worker.ResultMeta) {
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
	secs := s.Elapsed.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(s.Records) / secs
	}
	fmt.Fprintf(w, "scrape: %d records (%d ok, %d errors) in %s, %.1f pages/s, %s read\n",
		s.Records, s.OK, s.Records-s.OK, s.Elapsed.Round(10*time.Millisecond), rate, humanBytes(s.Bytes))
	if len(s.Errors) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(s.Errors)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, s.Errors[k]))
		}
		fmt.Fprintf(w, "  errors: %s\n", strings.Join(parts, ", "))
	}
	for _, n := range slices.Sorted(maps.Keys(s.PerNode)) {
		fmt.Fprintf(w, "  node %s: %d pages (%.0f%%)\n", n, s.PerNode[n], 100*float64(s.PerNode[n])/float64(max(s.Records, 1)))
	}
	if s.Retries > 0 {
		fmt.Fprintf(w, "  retries: %d\n", s.Retries)
	}
	if s.PerHostHeld > 0 {
		fmt.Fprintf(w, "  the per-host limit held the run back for %s of %s: at most %d requests per host were in flight while slots were idle; raise --per-host if the site allows\n",
			s.PerHostHeld.Round(100*time.Millisecond), s.Elapsed.Round(100*time.Millisecond), s.PerHost)
	}
	if s.Outstanding > 0 {
		fmt.Fprintf(w, "  %d URLs have no record yet\n", s.Outstanding)
	}
}

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
