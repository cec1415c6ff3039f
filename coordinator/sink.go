package coordinator

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/scrape-cluster/scrape/output"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// sink is the single writer of the output. The frontier (invalid lines,
// tasks it gives up on unfetched) and the collector (results) both write
// through it.
//
// Every record it writes is for one task, and the journal hears of it: a
// flush commits the records written so far with the output's position.
type sink struct {
	mu      sync.Mutex
	w       writer
	stats   *Summary
	journal *journal
	// limbo are the tasks the frontier took from its queues to record
	// unfetched, until they are: a checkpoint keeps them (checkpoint.go).
	limbo map[uint64]scrape.Task
}

type writer interface {
	Write([]byte) error
	Flush() error
	Pos() output.Pos
}

// write writes rec, a record of no page to archive.
func (s *sink) write(rec []byte, meta queue.ResultMeta) error {
	return s.writePage(rec, meta, output.Page{})
}

// writePage writes rec, and with an archive (--warc, or a WARC output) the
// page: its exchange and, as the output, the record. The exchange is
// written here and not kept: a body lives as long as its message.
func (s *sink) writePage(rec []byte, meta queue.ResultMeta, p output.Page) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if pw, ok := s.w.(output.PageWriter); ok {
		err = pw.WritePage(rec, p)
	} else {
		err = s.w.Write(rec)
	}
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	s.journal.markDone(meta.Task)
	delete(s.limbo, meta.Task)
	s.stats.add(meta)
	return nil
}

// logged journals where the pages crawling found are in the hosts' logs,
// with the next commit: the results that link to them are acknowledged
// only after that.
func (s *sink) logged(found []hostRefs) {
	if len(found) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.journal.markFound(found)
}

// hold keeps t, which the frontier took from its queue to be recorded
// unfetched, until refuse records it. (The frontier's unit tests run some
// without a sink.)
func (s *sink) hold(t scrape.Task) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limbo == nil {
		s.limbo = map[uint64]scrape.Task{}
	}
	s.limbo[t.ID] = t
}

func (s *sink) record(id uint64, r scrape.Result) error {
	rec, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.writePage(rec, queue.ResultMeta{Task: id, Kind: r.Error.Kind}, output.Page{URL: r.URL, Date: time.Now()})
}

func (s *sink) invalid(text string, line int, why string) error {
	return s.record(uint64(line), scrape.Result{
		URL:   text,
		Line:  line,
		Error: &scrape.Error{Kind: scrape.KindInvalidURL, Message: why},
	})
}

// refuse records t, which the frontier gives up on without fetching it
// (again): robots.txt forbids it, or its host is down. why says which.
func (s *sink) refuse(t scrape.Task, why *scrape.Error) error {
	return s.record(t.ID, scrape.Result{
		URL: t.URL, Line: t.Line, Depth: t.Depth, Parent: t.Parent,
		Attempts: t.Attempt - 1, // those made
		Error:    why,
	})
}

// snapshot copies the counts so far.
func (s *sink) snapshot() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.clone()
}

// update sets figures of the summary other than the counts, under the lock
// that snapshot reads it with.
func (s *sink) update(set func(*Summary)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set(s.stats)
}

// flush makes the records written so far durable in the output, then
// commits them to the journal. Only then may their results be acknowledged.
func (s *sink) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked()
}

func (s *sink) flushLocked() error {
	if !s.journal.changed(s.w.Pos()) {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return s.journal.commit(s.w.Pos())
}
