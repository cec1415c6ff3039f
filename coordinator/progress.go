package coordinator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// DefaultProgressInterval is how often a run off a terminal prints a status
// line; on a terminal the bar redraws several times a second.
const DefaultProgressInterval = 5 * time.Second

// StatusFile is the live status a run keeps in its state directory, for
// scrape status to read from another terminal.
const StatusFile = "status.json"

// Status is a run's figures at one moment.
type Status struct {
	Summary
	Run     string    `json:"run"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	Running bool      `json:"running"`
	// Total is every record the run will write: for a urls file, its lines
	// (counted ahead of the run) and the pages crawling has found so far.
	// TotalKnown is false while the input's size is not known (stdin not
	// read to its end): Total is then only the records known of so far.
	Total      int  `json:"total"`
	TotalKnown bool `json:"total_known"`
	// Counting is set while a big urls file is being counted: Total is
	// then what is counted so far, and grows.
	Counting bool `json:"counting,omitempty"`
	// Rate is the pages per second of the last rateWindow, which the ETA
	// comes from: what is left at the pace the run goes now. IdleSeconds is
	// how long it has been since the last record: past stallAfter, no ETA
	// is given, since the pace before says nothing of when what it waits on
	// will answer.
	Rate        float64 `json:"rate"`
	IdleSeconds float64 `json:"idle_seconds,omitempty"`
	// InFlight is how many tasks are with the workers; RetryWaiting how
	// many wait for the time of their next attempt; RobotsWaiting how many
	// hosts' URLs wait for their robots.txt, which is being fetched or
	// tried again. A run that seems stuck is waiting on one of these.
	InFlight      int `json:"in_flight"`
	RetryWaiting  int `json:"retry_waiting,omitempty"`
	RobotsWaiting int `json:"robots_waiting,omitempty"`
	// Outcome is how the run ended: "" while it runs, then finished,
	// interrupted or failed; Resume is how to take up one that did not
	// finish.
	Outcome string `json:"outcome,omitempty"`
	Resume  string `json:"resume,omitempty"`
}

// Outcomes of a run, in Status.Outcome.
const (
	OutcomeFinished    = "finished"
	OutcomeInterrupted = "interrupted"
	OutcomeFailed      = "failed"
)

// Line is the one-line form of the status, as printed off a terminal and by
// scrape status.
func (st *Status) Line() string {
	head, tail := st.parts()
	return st.counts() + " done, " + strings.Join(append(head, tail...), ", ") + st.nodeColumn(0)
}

// counts is done/total, with ? for a total not known yet.
func (st *Status) counts() string {
	switch {
	case st.Counting:
		return fmt.Sprintf("%d/%d+", st.Records, st.Total)
	case !st.TotalKnown:
		return fmt.Sprintf("%d/?", st.Records)
	}
	return fmt.Sprintf("%d/%d", st.Records, st.Total)
}

// parts are the status's figures after its counts: head always, tail the
// states a run that looks stuck is in (in flight, waiting to retry, waiting
// on robots.txt) and the errors so far, by kind.
func (st *Status) parts() (head, tail []string) {
	elapsed := st.Updated.Sub(st.Started)
	head = append(head, fmt.Sprintf("%.1f pages/s", st.Rate), "elapsed "+elapsed.Round(time.Second).String())
	if st.Running {
		eta := "?"
		idle := time.Duration(st.IdleSeconds * float64(time.Second))
		if st.Rate > 0 && st.TotalKnown && st.Total >= st.Records && idle < stallAfter {
			eta = (time.Duration(float64(st.Total-st.Records)/st.Rate) * time.Second).Round(time.Second).String()
		}
		head = append(head, "ETA "+eta)
		if idle >= stallAfter {
			tail = append(tail, "no record for "+idle.Round(time.Second).String())
		}
		if st.InFlight > 0 {
			tail = append(tail, fmt.Sprintf("%d in flight", st.InFlight))
		}
		if st.RetryWaiting > 0 {
			tail = append(tail, fmt.Sprintf("%d waiting to retry", st.RetryWaiting))
		}
		switch n := st.RobotsWaiting; {
		case n == 1:
			tail = append(tail, "1 host waiting on robots.txt")
		case n > 1:
			tail = append(tail, fmt.Sprintf("%d hosts waiting on robots.txt", n))
		}
	}
	if errs := st.Records - st.OK; errs == 0 {
		tail = append(tail, "0 errors")
	} else {
		var kinds []string
		for _, k := range slices.Sorted(maps.Keys(st.Errors)) {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, st.Errors[k]))
		}
		tail = append(tail, fmt.Sprintf("%d errors (%s)", errs, strings.Join(kinds, ", ")))
	}
	return head, tail
}

// nodeColumn lists records per node, at most limit of them (0: all).
func (st *Status) nodeColumn(limit int) string {
	if len(st.PerNode) == 0 {
		return ""
	}
	names := slices.Sorted(maps.Keys(st.PerNode))
	var parts []string
	for i, n := range names {
		if limit > 0 && i == limit {
			parts = append(parts, fmt.Sprintf("+%d more", len(names)-limit))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %d", n, st.PerNode[n]))
	}
	return " [" + strings.Join(parts, ", ") + "]"
}

// progress keeps a person informed while a run goes: a bar on a terminal,
// a status line every interval elsewhere, and the status file always.
type progress struct {
	snapshot func() Status
	file     string // status file, "" for none
	lines    io.Writer
	interval time.Duration
	term     *os.File // the terminal the bar is drawn on

	bar      *mpb.Bar
	pbar     *mpb.Progress
	stop     chan struct{}
	done     sync.WaitGroup
	mu       sync.Mutex
	last     Status
	width    int // the terminal's, for the bar's line
	rate     rateMeter
	plain    bool
	finished sync.Once
}

// barWidth is the bar's own width on its line, brackets included.
const barWidth = 30

// isTerminal reports whether w is a terminal a bar can be drawn on. One
// that reports no width (a bare pseudo-terminal) gets status lines instead.
func isTerminal(w io.Writer) bool {
	return termWidth(w) > 0
}

// termWidth is the width of the terminal w is, 0 if it is none.
func termWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return width
}

// startProgress begins showing progress. show false writes only the status
// file. The bar is drawn on stderr when it is a terminal; otherwise status
// lines go to lines, the writer the run's other stderr lines share, so that
// no two write to stderr at once. The returned writer is where other stderr
// lines must go while the bar is drawn, so they land above it instead of
// through it.
func startProgress(show bool, stderr, lines io.Writer, interval time.Duration, file string, snapshot func() Status) (*progress, io.Writer) {
	p := &progress{snapshot: snapshot, file: file, lines: lines, interval: interval, stop: make(chan struct{})}
	out := stderr
	tick := time.Second // the status file's pace
	switch {
	case show && isTerminal(stderr):
		p.term, p.width = stderr.(*os.File), termWidth(stderr)
		p.pbar = mpb.New(mpb.WithOutput(stderr), mpb.WithWidth(barWidth), mpb.WithRefreshRate(200*time.Millisecond))
		p.bar = p.pbar.New(0, mpb.BarStyle(),
			mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return p.counts() })),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return p.rates() })),
		)
		out = p.pbar
		tick = 200 * time.Millisecond
	case show:
		p.plain = true
		tick = min(tick, interval)
	}
	p.update() // the status file exists from the start
	p.done.Go(func() { p.loop(tick) })
	return p, out
}

func (p *progress) loop(tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	lastLine := time.Now()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			st := p.update()
			if p.plain && now.Sub(lastLine) >= p.interval {
				lastLine = now
				fmt.Fprintf(p.lines, "scrape: %s\n", st.Line())
			}
		}
	}
}

// update takes a snapshot, gives it the recent rate, and shows it.
func (p *progress) update() Status {
	st := p.snapshot()
	p.mu.Lock()
	st.Rate = p.rate.add(st.Updated, st.Records-st.Earlier, st.Started)
	st.IdleSeconds = st.Updated.Sub(p.rate.changed).Seconds()
	p.last = st
	if p.term != nil {
		if w := termWidth(p.term); w > 0 {
			p.width = w
		}
	}
	p.mu.Unlock()
	p.show(st, false)
	return st
}

// show moves the bar to st, and writes the status file.
func (p *progress) show(st Status, final bool) {
	if p.bar != nil {
		total := max(st.Total, st.Records, 1)
		// The bar of a run that ended complete is full, its last frame
		// drawn; one that did not stops where the run stopped.
		p.bar.SetTotal(int64(total), final && st.Records >= total)
		p.bar.SetCurrent(int64(st.Records))
	}
	if p.file != "" {
		_ = writeStatus(p.file, st)
	}
}

func (p *progress) counts() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last.counts()
}

// rates is the bar's line after the bar, cut to the terminal's width: the
// pace and ETA first, then what the run waits on and its errors, then the
// nodes.
func (p *progress) rates() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	head, tail := p.last.parts()
	line := " " + strings.Join(append(head, tail...), " · ") + p.last.nodeColumn(4)
	// The counts, a space and the bar come before it; a line longer than
	// the terminal would wrap and break the bar's redraw.
	room := p.width - len(p.last.counts()) - 1 - barWidth - 1
	return cut(line, room)
}

// cut shortens s to at most n columns, marking the cut with an ellipsis.
func cut(s string, n int) string {
	r := []rune(s)
	switch {
	case n <= 0:
		return ""
	case len(r) <= n:
		return s
	}
	return string(r[:n-1]) + "…"
}

// finish stops the display and leaves the final status in the file.
func (p *progress) finish(final Status) {
	p.finished.Do(func() { p.end(final) })
}

func (p *progress) end(final Status) {
	close(p.stop)
	p.done.Wait()
	p.mu.Lock()
	final.Rate = p.rate.average(final.Updated, final.Records-final.Earlier, final.Started)
	p.last = final // the last frame shows the end, not the last tick
	p.mu.Unlock()
	p.show(final, true)
	if p.bar != nil {
		if !p.bar.Completed() {
			p.bar.Abort(false)
		}
		p.pbar.Wait()
	}
}

// rateWindow is how far back the recent rate looks: long enough to smooth
// the bursts of a run's batches, short enough to follow a run that slows
// down in its tail.
const rateWindow = 20 * time.Second

// stallAfter is how long a run may go without a record before its ETA
// gives way to what it waits on.
const stallAfter = 5 * time.Second

// rateMeter measures the recent pace from samples of the records written,
// and when their number last changed.
type rateMeter struct {
	samples []rateSample
	changed time.Time
}

type rateSample struct {
	at   time.Time
	done int
}

// add records done records at now and returns the pace over the last
// rateWindow; before it has that much history, the pace since start.
func (m *rateMeter) add(now time.Time, done int, start time.Time) float64 {
	if n := len(m.samples); n == 0 && m.changed.IsZero() {
		m.changed = start
	} else if n > 0 && done != m.samples[n-1].done {
		m.changed = now
	}
	m.samples = append(m.samples, rateSample{now, done})
	i := 0
	for i < len(m.samples)-1 && now.Sub(m.samples[i+1].at) >= rateWindow {
		i++
	}
	m.samples = m.samples[i:]
	first := m.samples[0]
	if now.Sub(first.at) < rateWindow {
		return m.average(now, done, start)
	}
	return float64(done-first.done) / now.Sub(first.at).Seconds()
}

// average is the pace since start.
func (m *rateMeter) average(now time.Time, done int, start time.Time) float64 {
	if s := now.Sub(start).Seconds(); s > 0 {
		return float64(done) / s
	}
	return 0
}

// total is how many records the run will write, once the input's size is
// known: a record for each of its lines and for each page crawling found.
// While a file is being counted, it is those counted so far (known false,
// counting true).
func (f *frontier) total() (n int, known, counting bool) {
	lines, known := f.lines.known()
	if !known {
		lines = f.lines.seen.Load()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return int(lines) + int(f.nextID-crawlIDBase), known, !known && lines > 0
}

// waiting is what the run is waiting on now: tasks with the workers,
// retries waiting for their time, hosts waiting for their robots.txt.
func (f *frontier) waiting() (inFlight, retries, robots int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending), f.retryWaiting, f.robotsWaiting
}

// writeStatus replaces the status file in one step, so a reader never sees
// half of it.
func writeStatus(path string, st Status) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadStatus reads the status file of the run in dir. With dir "", it picks
// the most recently updated run under .scrape/.
// ErrNoStatus is ReadStatus finding no run to report on.
var ErrNoStatus = errors.New("no run found")

func ReadStatus(dir string) (*Status, string, error) {
	if dir == "" {
		matches, _ := filepath.Glob(filepath.Join(".scrape", "*", StatusFile))
		var newest time.Time
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && fi.ModTime().After(newest) {
				newest, dir = fi.ModTime(), filepath.Dir(m)
			}
		}
		if dir == "" {
			return nil, "", fmt.Errorf("%w under .scrape/ (a finished run's default state directory is removed)", ErrNoStatus)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, StatusFile))
	if err != nil {
		return nil, dir, fmt.Errorf("read run status: %w", err)
	}
	var st Status
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, dir, fmt.Errorf("read run status: %w", err)
	}
	return &st, dir, nil
}
