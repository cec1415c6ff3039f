package coordinator

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/scrape-cluster/scrape/output"
	"github.com/scrape-cluster/scrape/scrape"
)

// journalFile is the run's commit log, in its state directory.
const journalFile = "journal"

// commit is one line of the journal: the output's position after a flush,
// the tasks whose records that flush made durable, and the pages crawling
// found since the previous commit. A result is acknowledged to the queue only
// after the commit naming its task is written, so after a crash every task
// is either in the journal (its record is in the output before Out) or still
// to be done; never both, never neither.
type commit struct {
	Out   output.Pos    `json:"out"`
	Done  []uint64      `json:"done,omitempty"`
	Found []scrape.Task `json:"found,omitempty"`
}

// journal appends commits. Its writes are not synced: it survives the
// coordinator's death (kill -9 included), like the queue's own store, not a
// power cut.
type journal struct {
	f     *os.File
	last  output.Pos
	done  []uint64
	found []scrape.Task
	buf   bytes.Buffer
}

// openJournal opens the run's journal for appending, after cutting off a
// last line a crash tore.
func openJournal(path string, valid int64) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if err := f.Truncate(valid); err != nil {
		f.Close()
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if _, err := f.Seek(valid, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("open journal: %w", err)
	}
	return &journal{f: f}, nil
}

func (j *journal) markDone(id uint64)          { j.done = append(j.done, id) }
func (j *journal) markFound(t scrape.Task)     { j.found = append(j.found, t) }
func (j *journal) pending() bool               { return len(j.done) > 0 || len(j.found) > 0 }
func (j *journal) changed(pos output.Pos) bool { return j.pending() || pos != j.last }

// commit writes what was marked since the last commit, with pos, the
// output's position that holds it.
func (j *journal) commit(pos output.Pos) error {
	if !j.changed(pos) {
		return nil
	}
	j.buf.Reset()
	enc := json.NewEncoder(&j.buf)
	if err := enc.Encode(commit{Out: pos, Done: j.done, Found: j.found}); err != nil {
		return fmt.Errorf("encode journal: %w", err)
	}
	if _, err := j.f.Write(j.buf.Bytes()); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	j.last = pos
	j.done, j.found = j.done[:0], j.found[:0]
	return nil
}

func (j *journal) close() error { return j.f.Close() }

// recovered is what the journal of an earlier run says.
type recovered struct {
	Out   output.Pos
	Done  map[uint64]bool
	Found []scrape.Task
	// Valid is the length of the journal's whole lines.
	Valid int64
}

// readJournal replays a journal. A last line without its newline is what a
// crash in the middle of a write leaves: it is ignored, and so is its commit,
// whose results were never acknowledged.
func readJournal(path string) (recovered, error) {
	rec := recovered{Done: map[uint64]bool{}}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return rec, fmt.Errorf("read journal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return rec, nil // a torn line, or none
		}
		if err != nil {
			return rec, fmt.Errorf("read journal: %w", err)
		}
		var c commit
		if err := json.Unmarshal(line, &c); err != nil {
			return rec, fmt.Errorf("journal line %d: %w", n, err)
		}
		rec.Out = c.Out
		for _, id := range c.Done {
			rec.Done[id] = true
		}
		rec.Found = append(rec.Found, c.Found...)
		rec.Valid += int64(len(line))
	}
}

// restore takes up a run where its journal left it: the input lines with
// records are skipped as the input is read again, and the pages crawling had
// found are known (so not found twice) and, if they have no record yet,
// queued again.
func (f *frontier) restore(rec recovered) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.skip = rec.Done
	for _, t := range rec.Found {
		f.nextID = max(f.nextID, t.ID)
		u, err := scrape.ParseURL(t.URL)
		if err != nil {
			return fmt.Errorf("resume: journal holds an unreadable URL %q: %w", t.URL, err)
		}
		if f.cfg.Crawl != nil {
			f.cfg.Crawl.see(u)
		}
		f.admitted++
		if rec.Done[t.ID] {
			continue
		}
		t.Attempt = 1
		f.enqueueLocked(t, u)
	}
	return nil
}
