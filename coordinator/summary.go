package coordinator

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/scrape-cluster/scrape/internal/bytesize"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scrape-cluster/scrape/output"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// Summary is what a run did, counted from the records it wrote. A resumed
// run's counts are the whole run's: those written before it (Earlier of
// Records) and its own; its elapsed time and pace are its own.
type Summary struct {
	Records int            `json:"records"`
	Earlier int            `json:"earlier,omitempty"`
	OK      int            `json:"ok"`
	Errors  map[string]int `json:"errors"` // by kind
	// Unchanged counts the records marked unchanged (--since): pages the
	// earlier output has as they are.
	Unchanged int `json:"unchanged,omitempty"`
	// Unrendered counts the plain records of pages that needed a browser
	// when no node could render them (--render auto, needs_render).
	Unrendered int            `json:"unrendered,omitempty"`
	Bytes      int64          `json:"bytes"`
	PerNode    map[string]int `json:"per_node"`
	Nodes      int            `json:"nodes"`
	Elapsed    time.Duration  `json:"-"`
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
	// Reoffered is how many deliveries were offered a second time at the
	// end of the run, to take them from a slow node (tail.go).
	Reoffered int `json:"reoffered,omitempty"`
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

	// spans are each node's pages and when its first and last records of
	// this part came: its pace is over the time it was at work.
	spans map[string]nodeSpan
}

// NodeRate is one node's part of a run (of its latest part, if resumed).
type NodeRate struct {
	Records int `json:"records"`
	// Pages are the records that are pages, not errors: Share is the
	// node's part of them, and PagesPerSecond their pace from the node's
	// first record to its last.
	Pages          int     `json:"pages"`
	Share          float64 `json:"share"`
	ActiveSeconds  float64 `json:"active_seconds"`
	PagesPerSecond float64 `json:"pages_per_second"`
}

// minTimed is the least time at work a node's pace is given for: over less,
// its pages are one burst of its slots, not a pace.
const minTimed = time.Second

type nodeSpan struct {
	records, pages int
	first, last    time.Time
}

// settle fills the figures derived from the counts, for elapsed.
func (s *Summary) settle(elapsed time.Duration) {
	s.Elapsed = elapsed
	s.ElapsedSeconds = elapsed.Seconds()
	s.PagesPerSecond = 0
	if s.ElapsedSeconds > 0 {
		s.PagesPerSecond = float64(s.Records-s.Earlier) / s.ElapsedSeconds
	}
	pages := 0
	for _, sp := range s.spans {
		pages += sp.pages
	}
	s.NodeRates = map[string]NodeRate{}
	for n, sp := range s.spans {
		active := sp.last.Sub(sp.first).Seconds()
		r := NodeRate{Records: sp.records, Pages: sp.pages, Share: float64(sp.pages) / float64(max(pages, 1)), ActiveSeconds: active}
		if active >= minTimed.Seconds() {
			r.PagesPerSecond = float64(sp.pages) / active
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
	c.spans = maps.Clone(s.spans)
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
	return &Summary{Errors: map[string]int{}, PerNode: map[string]int{}, spans: map[string]nodeSpan{}}
}

func (s *Summary) add(m queue.ResultMeta) {
	s.count(m.Kind, m.Bytes, m.Node)
	if m.Unchanged {
		s.Unchanged++
	}
	if m.NeedsRender != "" {
		s.Unrendered++
	}
	if m.Node == "" {
		return
	}
	now := time.Now()
	sp := s.spans[m.Node]
	if sp.records == 0 {
		sp.first = now
	}
	sp.records++
	sp.last = now
	if m.Kind == "" {
		sp.pages++
	}
	s.spans[m.Node] = sp
}

// count adds one record to the run's counts.
func (s *Summary) count(kind string, bytes int64, node string) {
	s.Records++
	s.Bytes += bytes
	if kind == "" {
		s.OK++
	} else {
		s.Errors[kind]++
	}
	if node != "" {
		s.PerNode[node]++
	}
}

// Print writes the end-of-run report a person reads on stderr.
func (s *Summary) Print(w io.Writer) {
	s.settle(s.Elapsed)
	counts := fmt.Sprintf("%d records (%d ok, %d errors", s.Records, s.OK, s.Records-s.OK)
	if s.Unchanged > 0 {
		counts += fmt.Sprintf(", %d unchanged", s.Unchanged)
	}
	counts += ")"
	if s.Earlier > 0 {
		fmt.Fprintf(w, "scrape: %s, %d of them before the resume; this part: %d in %s, %.1f pages/s; %s read in all\n",
			counts, s.Earlier, s.Records-s.Earlier, s.Elapsed.Round(10*time.Millisecond), s.PagesPerSecond, bytesize.Format(s.Bytes))
	} else {
		fmt.Fprintf(w, "scrape: %s in %s, %.1f pages/s, %s read\n",
			counts, s.Elapsed.Round(10*time.Millisecond), s.PagesPerSecond, bytesize.Format(s.Bytes))
	}
	if len(s.Errors) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(s.Errors)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, s.Errors[k]))
		}
		fmt.Fprintf(w, "  errors: %s\n", strings.Join(parts, ", "))
	}
	for _, n := range slices.Sorted(maps.Keys(s.NodeRates)) {
		r := s.NodeRates[n]
		active := time.Duration(r.ActiveSeconds * float64(time.Second))
		if active < minTimed {
			fmt.Fprintf(w, "  node %s: %d pages (%.0f%%) of %d records, all within %s\n", n, r.Pages, 100*r.Share, r.Records, minTimed)
			continue
		}
		fmt.Fprintf(w, "  node %s: %d pages (%.0f%%) of %d records, %.1f pages/s over its %s at work\n",
			n, r.Pages, 100*r.Share, r.Records, r.PagesPerSecond, active.Round(100*time.Millisecond))
	}
	if s.Retries > 0 {
		fmt.Fprintf(w, "  retries: %d\n", s.Retries)
	}
	if s.Reoffered > 0 {
		fmt.Fprintf(w, "  offered again: %d pages in flight at the end on a node much slower than another; the first answer of each was written\n", s.Reoffered)
	}
	if s.Unrendered > 0 {
		fmt.Fprintf(w, "  not rendered: %d pages that need a browser keep their plain-HTTP record (needs_render): no node could render them\n", s.Unrendered)
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

// countEarlier adds to s the records a resumed run's output holds from
// before the resume: the first pos.Records, within the pos.Offset bytes the
// journal's last commit names. They are read back from the output, the one
// place that has them all, so that the summary of a resumed run is the whole
// run's.
func countEarlier(s *Summary, path string, format output.Format, pos output.Pos) error {
	if pos.Records == 0 {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("count the records before the resume: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(io.LimitReader(f, pos.Offset))
	var part Summary
	part.Errors, part.PerNode = map[string]int{}, map[string]int{}
	switch format {
	case output.CSV:
		err = countCSV(&part, r, pos.Records)
	case output.WARC:
		// The records are the archive's metadata records, one JSON
		// record each.
		err = output.ArchiveRecords(path, pos.Offset, func(rec []byte) error {
			return countJSON(&part, bytes.NewReader(rec), false, part.Records+1)
		})
	default:
		err = countJSON(&part, r, format == output.JSON, pos.Records)
	}
	if err == nil && part.Records != pos.Records {
		err = fmt.Errorf("%d records where the journal says %d", part.Records, pos.Records)
	}
	if err != nil {
		return fmt.Errorf("count the records before the resume in %s: %w", path, err)
	}
	s.Records += part.Records
	s.Earlier += part.Records
	s.OK += part.OK
	s.Unchanged += part.Unchanged
	s.Unrendered += part.Unrendered
	s.Bytes += part.Bytes
	for k, n := range part.Errors {
		s.Errors[k] += n
	}
	for k, n := range part.PerNode {
		s.PerNode[k] += n
	}
	return nil
}

// countJSON counts up to want records of JSON lines, or of a JSON array.
func countJSON(s *Summary, r io.Reader, array bool, want int) error {
	dec := json.NewDecoder(r)
	if array {
		if _, err := dec.Token(); err != nil { // [
			return err
		}
	}
	for s.Records < want && (!array || dec.More()) {
		var rec struct {
			Bytes       int64         `json:"bytes"`
			Node        string        `json:"node"`
			Unchanged   bool          `json:"unchanged"`
			NeedsRender string        `json:"needs_render"`
			Error       *scrape.Error `json:"error"`
		}
		if err := dec.Decode(&rec); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		kind := ""
		if rec.Error != nil {
			kind = rec.Error.Kind
		}
		s.count(kind, rec.Bytes, rec.Node)
		if rec.Unchanged {
			s.Unchanged++
		}
		if rec.NeedsRender != "" {
			s.Unrendered++
		}
	}
	return nil
}

// countCSV counts up to want rows after the header, by its bytes, node and
// error_kind columns.
func countCSV(s *Summary, r io.Reader, want int) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return err
	}
	col := map[string]int{}
	for i, name := range header {
		col[name] = i
	}
	for _, name := range []string{"bytes", "node", "error_kind"} {
		if _, ok := col[name]; !ok {
			return fmt.Errorf("no %s column", name)
		}
	}
	for s.Records < want {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		bytes, _ := strconv.ParseInt(row[col["bytes"]], 10, 64)
		s.count(row[col["error_kind"]], bytes, row[col["node"]])
		if i, ok := col["unchanged"]; ok && i < len(row) && row[i] == "true" {
			s.Unchanged++
		}
	}
	return nil
}
