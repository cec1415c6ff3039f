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
	// Total is every record the run knows it will write: done plus those
	// still to come. It grows while the input is read and while crawling.
	Total int `json:"total"`
	// RobotsWaiting is how many hosts' URLs wait for their robots.txt,
	// which is being fetched or tried again.
	RobotsWaiting int `json:"robots_waiting,omitempty"`
}

// Line is the one-line form of the status, as printed off a terminal and by
// scrape status.
func (st *Status) Line() string {
	elapsed := st.Updated.Sub(st.Started)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(st.Records) / s
	}
	eta := "?"
	if rate > 0 && st.Total >= st.Records {
		eta = (time.Duration(float64(st.Total-st.Records)/rate) * time.Second).Round(time.Second).String()
	}
	robots := ""
	switch n := st.RobotsWaiting; {
	case n == 1:
		robots = ", 1 host waiting on robots.txt"
	case n > 1:
		robots = fmt.Sprintf(", %d hosts waiting on robots.txt", n)
	}
	return fmt.Sprintf("%d/%d done, %d errors, %.1f pages/s, elapsed %s, ETA %s%s%s",
		st.Records, st.Total, st.Records-st.OK, rate, elapsed.Round(time.Second), eta, robots, st.nodeColumn(0))
}

// nodeColumn lists pages per node, at most limit of them (0: all).
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

	bar      *mpb.Bar
	pbar     *mpb.Progress
	stop     chan struct{}
	done     sync.WaitGroup
	mu       sync.Mutex
	last     Status
	plain    bool
	finished sync.Once
}

// isTerminal reports whether w is a terminal a bar can be drawn on. One
// that reports no width (a bare pseudo-terminal) gets status lines instead.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	width, _, err := term.GetSize(int(f.Fd()))
	return err == nil && width > 0
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
		p.pbar = mpb.New(mpb.WithOutput(stderr), mpb.WithWidth(30), mpb.WithRefreshRate(200*time.Millisecond))
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

func (p *progress) update() Status {
	st := p.snapshot()
	p.mu.Lock()
	p.last = st
	p.mu.Unlock()
	if p.bar != nil {
		p.bar.SetTotal(int64(max(st.Total, 1)), false)
		p.bar.SetCurrent(int64(st.Records))
	}
	if p.file != "" {
		_ = writeStatus(p.file, st)
	}
	return st
}

func (p *progress) counts() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("%d/%d", p.last.Records, p.last.Total)
}

func (p *progress) rates() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := p.last.Line()
	// The bar shows done/total itself.
	if i := strings.Index(line, ", "); i >= 0 {
		line = line[i+2:]
	}
	return " " + line
}

// finish stops the display and leaves the final status in the file.
func (p *progress) finish(final Status) {
	p.finished.Do(func() { p.end(final) })
}

func (p *progress) end(final Status) {
	close(p.stop)
	p.done.Wait()
	if p.bar != nil {
		p.bar.SetTotal(int64(max(final.Total, final.Records, 1)), false)
		p.bar.SetCurrent(int64(final.Records))
		p.bar.Abort(false)
		p.pbar.Wait()
	}
	if p.file != "" {
		_ = writeStatus(p.file, final)
	}
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
