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
	"path/filepath"
	"time"

	"github.com/scrape-cluster/scrape/output"
	"github.com/scrape-cluster/scrape/scrape"
)

// journalFile is the run's commit log, in its state directory.
const journalFile = "journal"

// commit is one line of the journal: its number, the output's position
// after a flush, the tasks whose records that flush made durable, and where
// the pages crawling found since the previous commit are in the hosts' logs
// (spill.go). A result is acknowledged to the queue only after the commit
// naming its task is written, so after a crash every task is either in the
// journal (its record is in the output before Out) or still to be done;
// never both, never neither.
type commit struct {
	N     uint64     `json:"n"`
	Out   output.Pos `json:"out"`
	Done  []uint64   `json:"done,omitempty"`
	Found []hostRefs `json:"found,omitempty"`
}

// journal appends commits. Its writes are not synced: it survives the
// coordinator's death (kill -9 included), like the queue's own store, not a
// power cut. A checkpoint (checkpoint.go) empties it now and then, so that
// it grows with the time since, not with the run.
type journal struct {
	dir   string
	f     *os.File
	n     uint64 // the last commit's number
	size  int64  // bytes since the last checkpoint
	last  output.Pos
	done  []uint64
	found []hostRefs
	// inputDone are the input lines with a record, for the checkpoint.
	inputDone idRanges
	seenLen   int64     // bytes of the seen file the last checkpoint counts
	since     time.Time // the last checkpoint, or the journal's opening
	buf       bytes.Buffer
}

// openJournal opens the run's journal in dir for appending, where rec, read
// from it, left off: a last line a crash tore is cut off.
func openJournal(dir string, rec recovered) (*journal, error) {
	f, err := os.OpenFile(filepath.Join(dir, journalFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if err := f.Truncate(rec.Valid); err != nil {
		f.Close()
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if _, err := f.Seek(rec.Valid, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("open journal: %w", err)
	}
	return &journal{dir: dir, f: f, n: rec.N, size: rec.Valid, last: rec.Out, inputDone: rec.InputDone.clone(),
		seenLen: int64(len(rec.Seen)) * 8, since: time.Now()}, nil
}

func (j *journal) markDone(id uint64) {
	j.done = append(j.done, id)
	if id < crawlIDBase {
		j.inputDone.add(id)
	}
}
func (j *journal) markFound(found []hostRefs)  { j.found = append(j.found, found...) }
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
	if err := enc.Encode(commit{N: j.n + 1, Out: pos, Done: j.done, Found: j.found}); err != nil {
		return fmt.Errorf("encode journal: %w", err)
	}
	if _, err := j.f.Write(j.buf.Bytes()); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	j.n++
	j.size += int64(j.buf.Len())
	j.last = pos
	j.done, j.found = j.done[:0], nil
	return nil
}

func (j *journal) close() error { return j.f.Close() }

// recovered is what the state directory of an earlier run says: its last
// checkpoint, and the journal's commits after it.
type recovered struct {
	Out output.Pos
	N   uint64 // the last commit's number
	// InputDone are the input lines with a record; Done the crawled pages
	// with a record since the checkpoint (those before it are neither in
	// Tasks nor in the logs any more).
	InputDone idRanges
	Done      map[uint64]bool
	// Tasks are the crawled pages admitted and without a record at the
	// checkpoint; Hosts the hosts' logs: the checkpoint's, then the chunks
	// committed after it.
	Tasks  []scrape.Task
	Hosts  []hostRefs
	NextID uint64
	// Crawled is how many crawled pages were admitted, for --max-pages.
	Crawled int
	// Seen are the hashes of the crawled URLs admitted by the checkpoint.
	Seen []uint64
	// Valid is the length of the journal's whole lines.
	Valid int64
}

// recoverRun reads what the state directory dir holds of an earlier run.
func recoverRun(dir string) (recovered, error) {
	rec := recovered{Done: map[uint64]bool{}}
	if err := readCheckpoint(dir, &rec); err != nil {
		return rec, err
	}
	if err := readJournal(filepath.Join(dir, journalFile), &rec); err != nil {
		return rec, err
	}
	return rec, nil
}

// readJournal replays a journal's commits after the checkpoint's into rec.
// A last line without its newline is what a crash in the middle of a write
// leaves: it is ignored, and so is its commit, whose results were never
// acknowledged. Commits the checkpoint holds (a crash came between writing
// it and emptying the journal) are skipped.
func readJournal(path string, rec *recovered) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	defer f.Close()
	hosts := map[string]int{}
	for i, h := range rec.Hosts {
		hosts[h.Host] = i
	}
	r := bufio.NewReaderSize(f, 1<<20)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return nil // a torn line, or none
		}
		if err != nil {
			return fmt.Errorf("read journal: %w", err)
		}
		var c commit
		if err := json.Unmarshal(line, &c); err != nil {
			return fmt.Errorf("journal line %d: %w", n, err)
		}
		rec.Valid += int64(len(line))
		if c.N <= rec.N {
			continue
		}
		rec.N, rec.Out = c.N, c.Out
		for _, id := range c.Done {
			if id < crawlIDBase {
				rec.InputDone.add(id)
			} else {
				rec.Done[id] = true
			}
		}
		for _, h := range c.Found {
			i, ok := hosts[h.Host]
			if !ok {
				i = len(rec.Hosts)
				hosts[h.Host] = i
				rec.Hosts = append(rec.Hosts, hostRefs{Host: h.Host, Scheme: h.Scheme})
			}
			rec.Hosts[i].Refs = append(rec.Hosts[i].Refs, h.Refs...)
		}
	}
}

// restore takes up a run where its state directory left it: the input
// lines with records are skipped as the input is read again; the crawled
// pages admitted without a record are queued again, and the hosts' logs
// are read again from where the checkpoint left them, the same pages
// admitted as before with the same IDs, except those with a record.
func (f *frontier) restore(rec recovered) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.skip = rec.InputDone
	f.replayDone = rec.Done
	f.nextID = max(f.nextID, rec.NextID)
	f.admitted += rec.Crawled
	f.crawled = rec.Crawled
	if c := f.cfg.Crawl; c != nil {
		for _, h := range rec.Seen {
			c.seen[h] = struct{}{}
		}
	}
	for _, t := range rec.Tasks {
		if f.replayDone[t.ID] {
			delete(f.replayDone, t.ID)
			continue
		}
		u, err := scrape.ParseURL(t.URL)
		if err != nil {
			return fmt.Errorf("resume: the checkpoint holds an unreadable URL %q: %w", t.URL, err)
		}
		t.Attempt, t.Token = 1, ""
		f.enqueueLocked(t, u)
	}
	if len(rec.Hosts) > 0 && f.cfg.Crawl == nil {
		return errors.New("resume: the run was a crawl, and this one is not")
	}
	for _, hr := range rec.Hosts {
		h := f.hostLocked(hr.Host, hr.Scheme)
		for _, r := range hr.Refs {
			h.log.chunks = append(h.log.chunks, r)
			h.log.n += int(r.N - r.Skip)
			f.backlog += int(r.N - r.Skip)
			f.nextID = max(f.nextID, r.Last)
		}
		if h.log.n > 0 {
			f.activateLocked(h)
		}
	}
	return nil
}
