package coordinator

import (
	binenc "encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Crawled pages wait for their turn in a log of their own, one per host:
// the links found since the last commit in memory, the older ones in chunks
// of segment files in the run's state directory (frontierDir). The log is
// also what the journal records of a crawl: each commit names the chunks
// written since the one before, so a resume finds every page found without
// the journal repeating a URL. See journal.go and checkpoint.go.
const (
	frontierDir = "frontier"
	// chunkMax is the most candidates one chunk holds: a host's head is
	// refilled a chunk at a time.
	chunkMax = 128
	// segmentMax is where a segment file ends and the next begins. Whole
	// segments are removed once no host's log points into them.
	segmentMax = 64 << 20
)

// candidate is a link crawling found, waiting in its host's log until the
// frontier admits it as a task (or drops it: its URL was admitted first).
// Its task ID is given when it is found, so a replay of the log after a
// crash gives it the same one.
type candidate struct {
	id     uint64
	url    string // normalised
	parent string
	depth  int
	listed bool
	// lastmod is the sitemap's <lastmod> of a URL --sitemap found.
	lastmod string
}

// chunkRef is where a run of one host's candidates lies on disk.
type chunkRef struct {
	Seg  uint32 `json:"s"`
	Off  int64  `json:"o"`
	Len  uint32 `json:"l"`
	N    uint32 `json:"n"`
	Skip uint32 `json:"k,omitempty"` // at its front, already taken when it was written
	Last uint64 `json:"i"`           // its highest task ID
}

// hostRefs are chunks of one host's log, in order.
type hostRefs struct {
	Host   string     `json:"h"`
	Scheme string     `json:"s"`
	Refs   []chunkRef `json:"r"`
}

// hostLog is one host's candidates in the order found: chunks on disk, then
// mem, found since the last flush. The first read of mem are taken; a flush
// writes all of mem, those too, since a replay needs them.
type hostLog struct {
	chunks []chunkRef
	mem    []candidate
	read   int
	n      int  // candidates not taken yet
	dirty  bool // in frontier.dirty
}

// spillStore writes and reads the segment files. Without a directory (the
// frontier's unit tests) nothing leaves memory: hostLog.mem is never
// flushed.
type spillStore struct {
	dir  string
	seg  uint32 // the segment being written; 0 until the first write
	f    *os.File
	size int64
	buf  []byte
	// r is the segment last read, kept open for the next read.
	r    *os.File
	rseg uint32
}

func segName(seg uint32) string { return fmt.Sprintf("%08d.seg", seg) }

// segments lists the segment numbers in dir.
func segments(dir string) ([]uint32, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var segs []uint32
	for _, e := range ents {
		if n, err := strconv.ParseUint(strings.TrimSuffix(e.Name(), ".seg"), 10, 32); err == nil && strings.HasSuffix(e.Name(), ".seg") {
			segs = append(segs, uint32(n))
		}
	}
	return segs, nil
}

// open starts a new segment after any in the directory: a run resumed after
// a crash never appends to what the crash may have torn.
func (s *spillStore) open() error {
	if s.seg == 0 {
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			return err
		}
		segs, err := segments(s.dir)
		if err != nil {
			return err
		}
		for _, n := range segs {
			s.seg = max(s.seg, n)
		}
	}
	if s.f != nil {
		if err := s.f.Close(); err != nil {
			return err
		}
	}
	s.seg++
	f, err := os.OpenFile(filepath.Join(s.dir, segName(s.seg)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	s.f, s.size = f, 0
	return nil
}

// write appends cands as one chunk. Like the journal's, its writes are not
// synced: they survive the coordinator's death, not a power cut.
func (s *spillStore) write(cands []candidate) (chunkRef, error) {
	if s.f == nil || s.size >= segmentMax {
		if err := s.open(); err != nil {
			return chunkRef{}, fmt.Errorf("spill the frontier: %w", err)
		}
	}
	s.buf = encodeChunk(s.buf[:0], cands)
	if _, err := s.f.Write(s.buf); err != nil {
		return chunkRef{}, fmt.Errorf("spill the frontier: %w", err)
	}
	ref := chunkRef{Seg: s.seg, Off: s.size, Len: uint32(len(s.buf)), N: uint32(len(cands)), Last: cands[len(cands)-1].id}
	s.size += int64(len(s.buf))
	return ref, nil
}

// read returns a chunk's candidates past its Skip.
func (s *spillStore) read(ref chunkRef) ([]candidate, error) {
	if s.r == nil || s.rseg != ref.Seg {
		if s.r != nil {
			s.r.Close()
			s.r = nil
		}
		f, err := os.Open(filepath.Join(s.dir, segName(ref.Seg)))
		if err != nil {
			return nil, fmt.Errorf("read the frontier: %w", err)
		}
		s.r, s.rseg = f, ref.Seg
	}
	buf := make([]byte, ref.Len)
	if _, err := s.r.ReadAt(buf, ref.Off); err != nil {
		return nil, fmt.Errorf("read the frontier: segment %d at %d: %w", ref.Seg, ref.Off, err)
	}
	cands, err := decodeChunk(buf, int(ref.N))
	if err != nil {
		return nil, fmt.Errorf("read the frontier: segment %d at %d: %w", ref.Seg, ref.Off, err)
	}
	return cands[min(int(ref.Skip), len(cands)):], nil
}

// collect removes the segments no log points into any more: live are the
// ones the last checkpoint names. The one being written stays.
func (s *spillStore) collect(live map[uint32]bool) error {
	if s.dir == "" {
		return nil
	}
	segs, err := segments(s.dir)
	if err != nil {
		return err
	}
	for _, n := range segs {
		if n == s.seg || live[n] {
			continue
		}
		if s.r != nil && s.rseg == n {
			s.r.Close()
			s.r = nil
		}
		if err := os.Remove(filepath.Join(s.dir, segName(n))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func (s *spillStore) close() error {
	if s.r != nil {
		s.r.Close()
		s.r = nil
	}
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// encodeChunk appends cands to b. A chunk's URLs are mostly one page's
// links, so each URL is written as the length it shares with the one
// before and the rest (front coding), and a parent only when it changes:
// a link takes about 12 bytes on the crawl of a site of short URLs, not
// the ~100 of a URL and its parent in full.
func encodeChunk(b []byte, cands []candidate) []byte {
	var prevURL, prevParent string
	for i, c := range cands {
		b = binenc.AppendUvarint(b, c.id-crawlIDBase)
		b = binenc.AppendUvarint(b, uint64(c.depth))
		// A flags byte: 1 listed, 2 a lastmod follows. Chunks written
		// before lastmod existed hold 0 or 1 here, and read the same.
		var flags byte
		if c.listed {
			flags |= 1
		}
		if c.lastmod != "" {
			flags |= 2
		}
		b = append(b, flags)
		if c.lastmod != "" {
			b = binenc.AppendUvarint(b, uint64(len(c.lastmod)))
			b = append(b, c.lastmod...)
		}
		shared := commonPrefix(prevURL, c.url)
		b = binenc.AppendUvarint(b, uint64(shared))
		b = binenc.AppendUvarint(b, uint64(len(c.url)-shared))
		b = append(b, c.url[shared:]...)
		if i > 0 && c.parent == prevParent {
			b = append(b, 0)
		} else {
			b = binenc.AppendUvarint(b, uint64(len(c.parent))+1)
			b = append(b, c.parent...)
		}
		prevURL, prevParent = c.url, c.parent
	}
	return b
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

var errChunk = errors.New("corrupt chunk")

func decodeChunk(b []byte, n int) ([]candidate, error) {
	cands := make([]candidate, 0, n)
	bad := false
	uvarint := func() uint64 {
		v, k := binenc.Uvarint(b)
		if k <= 0 {
			bad = true
			return 0
		}
		b = b[k:]
		return v
	}
	bytesOf := func(l uint64) (string, bool) {
		if l > uint64(len(b)) {
			return "", false
		}
		s := string(b[:l])
		b = b[l:]
		return s, true
	}
	var prevURL, prevParent string
	for range n {
		var c candidate
		c.id = crawlIDBase + uvarint()
		c.depth = int(uvarint())
		if len(b) == 0 {
			return nil, errChunk
		}
		flags := b[0]
		if flags > 3 {
			return nil, errChunk
		}
		c.listed, b = flags&1 != 0, b[1:]
		if flags&2 != 0 {
			var ok bool
			if c.lastmod, ok = bytesOf(uvarint()); !ok || bad {
				return nil, errChunk
			}
		}
		shared := uvarint()
		if shared > uint64(len(prevURL)) {
			return nil, errChunk
		}
		rest, ok := bytesOf(uvarint())
		if !ok {
			return nil, errChunk
		}
		c.url = prevURL[:shared] + rest
		c.parent = prevParent
		if l := uvarint(); l > 0 {
			if c.parent, ok = bytesOf(l - 1); !ok {
				return nil, errChunk
			}
		}
		if bad {
			return nil, errChunk
		}
		prevURL, prevParent = c.url, c.parent
		cands = append(cands, c)
	}
	if len(b) != 0 {
		return nil, errChunk
	}
	return cands, nil
}
