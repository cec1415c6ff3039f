package coordinator

import (
	"bufio"
	"cmp"
	binenc "encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/scrape-cluster/scrape/output"
	"github.com/scrape-cluster/scrape/scrape"
)

// A checkpoint lets a resume read a bounded amount: instead of replaying a
// journal as long as the run, it reads the last checkpoint (the frontier's
// state in a few bytes a host and a task) and the journal's commits after
// it. The crawled URLs admitted are in the seen file, 8 bytes each.
const (
	checkpointFile = "checkpoint"
	seenFile       = "seen"
	// DefaultCheckpointEvery is how often the journal is checkpointed; it
	// is also checkpointed when it passes checkpointBytes.
	DefaultCheckpointEvery = 30 * time.Second
	checkpointBytes        = 16 << 20
)

// checkpoint is the run's state at one commit, N.
type checkpoint struct {
	N         uint64
	Out       output.Pos
	InputDone idRanges
	// Tasks are the crawled pages admitted without a record: in the hosts'
	// queues, released, or about to be recorded unfetched.
	Tasks   []scrape.Task
	Hosts   []hostRefs // the hosts' logs not read yet
	NextID  uint64
	Crawled int
	Seen    int64 // bytes of the seen file
}

// checkpointIfDue checkpoints the run when the journal is old or large
// enough. The collector calls it between batches, when it has no result
// half-written: every task is then in a queue, released, in the sink's
// limbo, or has its record.
func (f *frontier) checkpointIfDue(now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sink
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.journal
	if now.Sub(j.since) < f.cfg.CheckpointEvery && j.size < checkpointBytes {
		return nil
	}
	found, err := f.flushFoundLocked()
	if err != nil {
		return err
	}
	j.markFound(found)
	if err := s.flushLocked(); err != nil {
		return err
	}
	cp := checkpoint{N: j.n, Out: j.last, InputDone: j.inputDone, NextID: f.nextID, Crawled: f.crawled}
	for _, t := range s.limbo {
		cp.Tasks = append(cp.Tasks, t)
	}
	for _, e := range f.pending {
		cp.Tasks = append(cp.Tasks, e.task)
	}
	live := map[uint32]bool{}
	for _, h := range f.hosts {
		for _, e := range h.queue {
			cp.Tasks = append(cp.Tasks, e.task)
		}
		if len(h.log.chunks) > 0 {
			cp.Hosts = append(cp.Hosts, hostRefs{Host: h.key, Scheme: h.scheme, Refs: h.log.chunks})
			for _, r := range h.log.chunks {
				live[r.Seg] = true
			}
		}
	}
	// Input lines are read again from the input: only crawled pages need
	// keeping. In task ID order: a resume queues them as they were found.
	cp.Tasks = slices.DeleteFunc(cp.Tasks, func(t scrape.Task) bool { return t.ID <= crawlIDBase })
	slices.SortFunc(cp.Tasks, func(a, b scrape.Task) int { return cmp.Compare(a.ID, b.ID) })
	var fresh []uint64
	if f.cfg.Crawl != nil {
		fresh = f.cfg.Crawl.fresh
	}
	if err := j.checkpoint(cp, fresh, now); err != nil {
		return err
	}
	if f.cfg.Crawl != nil {
		f.cfg.Crawl.fresh = f.cfg.Crawl.fresh[:0]
	}
	// Only now that no checkpoint points into them may old segments go.
	if err := f.store.collect(live); err != nil {
		return fmt.Errorf("remove read segments of the frontier: %w", err)
	}
	return nil
}

// checkpoint appends fresh to the seen file, writes cp in place of the last
// checkpoint, and empties the journal, whose commits cp holds.
func (j *journal) checkpoint(cp checkpoint, fresh []uint64, now time.Time) error {
	seen, err := os.OpenFile(filepath.Join(j.dir, seenFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	buf := make([]byte, 0, 8*len(fresh))
	for _, h := range fresh {
		buf = binenc.LittleEndian.AppendUint64(buf, h)
	}
	// Whatever a crash left after the last checkpoint's hashes goes.
	_, err = seen.WriteAt(buf, j.seenLen)
	if err == nil {
		err = seen.Truncate(j.seenLen + int64(len(buf)))
	}
	if cerr := seen.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	cp.Seen = j.seenLen + int64(len(buf))

	tmp := filepath.Join(j.dir, checkpointFile+".tmp")
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	w := bufio.NewWriterSize(out, 1<<20)
	err = gob.NewEncoder(w).Encode(&cp)
	if err == nil {
		err = w.Flush()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(j.dir, checkpointFile))
	}
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	j.seenLen = cp.Seen
	// The commits are in the checkpoint now. Should the coordinator die
	// before the journal is emptied, a resume skips them by number.
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("checkpoint: empty the journal: %w", err)
	}
	if _, err := j.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("checkpoint: empty the journal: %w", err)
	}
	j.size, j.since = 0, now
	return nil
}

// readCheckpoint reads dir's checkpoint, if it has one, into rec.
func readCheckpoint(dir string, rec *recovered) error {
	in, err := os.Open(filepath.Join(dir, checkpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	defer in.Close()
	var cp checkpoint
	if err := gob.NewDecoder(bufio.NewReaderSize(in, 1<<20)).Decode(&cp); err != nil {
		return fmt.Errorf("read checkpoint %s: %w", in.Name(), err)
	}
	rec.N, rec.Out, rec.InputDone = cp.N, cp.Out, cp.InputDone
	rec.Tasks, rec.Hosts, rec.NextID, rec.Crawled = cp.Tasks, cp.Hosts, cp.NextID, cp.Crawled
	data, err := os.ReadFile(filepath.Join(dir, seenFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	if int64(len(data)) < cp.Seen {
		return fmt.Errorf("read checkpoint: %s holds %d bytes, the checkpoint counts %d", seenFile, len(data), cp.Seen)
	}
	rec.Seen = make([]uint64, cp.Seen/8)
	for i := range rec.Seen {
		rec.Seen[i] = binenc.LittleEndian.Uint64(data[8*i:])
	}
	return nil
}

// idRange is the task IDs Lo to Hi, both included.
type idRange struct{ Lo, Hi uint64 }

// idRanges is a set of task IDs as sorted, disjoint ranges: the input lines
// with a record take a few ranges, not a map entry each, since they are
// answered roughly in order.
type idRanges []idRange

func (r idRanges) find(id uint64) int {
	i, _ := slices.BinarySearchFunc(r, id, func(x idRange, id uint64) int {
		switch {
		case x.Hi < id:
			return -1
		case x.Lo > id:
			return 1
		}
		return 0
	})
	return i
}

func (r idRanges) has(id uint64) bool {
	i := r.find(id)
	return i < len(r) && r[i].Lo <= id && id <= r[i].Hi
}

func (r *idRanges) add(id uint64) {
	s := *r
	i := s.find(id)
	if i < len(s) && s[i].Lo <= id {
		return // in s[i]
	}
	joinsLeft := i > 0 && s[i-1].Hi+1 == id
	joinsRight := i < len(s) && s[i].Lo == id+1
	switch {
	case joinsLeft && joinsRight:
		s[i-1].Hi = s[i].Hi
		s = slices.Delete(s, i, i+1)
	case joinsLeft:
		s[i-1].Hi = id
	case joinsRight:
		s[i].Lo = id
	default:
		s = slices.Insert(s, i, idRange{id, id})
	}
	*r = s
}

func (r idRanges) clone() idRanges { return slices.Clone(r) }
