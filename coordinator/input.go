package coordinator

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/scrape-cluster/scrape/scrape"
)

// maxLine bounds one line of the urls file. A longer line is no URL anyone
// can fetch; it becomes an invalid_url record instead of a reason to buffer
// without end.
const maxLine = 64 << 10

// feed reads the urls file to its end. A line that is not a URL is answered
// at once with an invalid_url record: every line of the input gets exactly
// one record.
func (f *frontier) feed(ctx context.Context, input io.Reader) error {
	// Wake a feed blocked on a full frontier when the run is cancelled.
	stop := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		f.space.Broadcast()
		f.mu.Unlock()
	})
	defer stop()

	r := bufio.NewReaderSize(input, maxLine)
	for lineNo := 1; ; lineNo++ {
		line, tooLong, err := readLine(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			if ctx.Err() != nil {
				return nil // an input that reads until cancelled: stdin
			}
			return fmt.Errorf("read urls: line %d: %w", lineNo, err)
		}
		trimmed, ok := recordLine(line, lineNo)
		if !ok {
			continue
		}
		text := string(trimmed)
		f.lines.read.Add(1)
		if f.skip.has(uint64(lineNo)) {
			// Done before a resume; a crawl still needs it as a seed.
			if u, err := scrape.ParseURL(text); err == nil && !tooLong {
				f.mu.Lock()
				if f.cfg.Crawl != nil {
					f.cfg.Crawl.seed(u)
				}
				f.sitemapHostLocked(u)
				f.admitted++
				f.mu.Unlock()
			}
			continue
		}
		if tooLong {
			if err := f.sink.invalid(text[:min(len(text), 200)]+"…", lineNo, fmt.Sprintf("line longer than %d bytes", maxLine)); err != nil {
				return err
			}
			continue
		}
		u, err := scrape.ParseURL(text)
		if err != nil {
			if err := f.sink.invalid(text, lineNo, err.Error()); err != nil {
				return err
			}
			continue
		}
		f.mu.Lock()
		for f.queued >= f.cfg.MaxQueued && ctx.Err() == nil {
			f.space.Wait()
		}
		if ctx.Err() != nil {
			f.mu.Unlock()
			return nil
		}
		if f.cfg.Crawl != nil {
			f.cfg.Crawl.seed(u)
		}
		f.sitemapHostLocked(u)
		f.admitted++
		// Listed: the user named this URL, so its host may be fetched at a
		// private address (scrape.Listed).
		f.enqueueLocked(scrape.Task{ID: uint64(lineNo), URL: text, Line: lineNo, Attempt: 1, Listed: true}, u)
		f.mu.Unlock()
		f.poke()
	}
	// Every line is read: the input's size is known now, if it was not.
	f.lines.counted(f.lines.read.Load())
	f.mu.Lock()
	f.inputDone = true
	f.checkDoneLocked()
	f.mu.Unlock()
	return nil
}

// recordLine returns the text of one line of the urls file and whether it
// becomes a record: blank lines and # comments do not. feed and countLines
// agree through it on what the input's size is.
func recordLine(line []byte, lineNo int) ([]byte, bool) {
	if lineNo == 1 {
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
	}
	line = bytes.TrimSpace(line)
	return line, len(line) > 0 && line[0] != '#'
}

// inputLines is how big the input is, in records, against how far feed has
// read it: what the progress display's total and ETA come from. A file's
// lines are counted ahead of feed (countLines); stdin's are known only once
// it ends.
type inputLines struct {
	read  atomic.Int64 // lines feed has read that become records
	total atomic.Int64 // lines in all that become records; -1 until known
	seen  atomic.Int64 // those countLines has counted so far
}

func (l *inputLines) counted(n int64) { l.total.CompareAndSwap(-1, n) }

// known returns the input's size in records, once it is known.
func (l *inputLines) known() (int64, bool) {
	n := l.total.Load()
	return n, n >= 0
}

// countLines counts the records the urls file at path holds, reading it
// once ahead of feed: in bounded memory (a line at a time, none kept), so
// that a run knows its total long before feed, held back by the frontier,
// reaches the end. It never fails a run: without a count, the total is
// known when feed reaches the end.
func (f *frontier) countLines(ctx context.Context, path string) error {
	in, err := os.Open(path)
	if err != nil {
		f.log.Debug("count the input's lines", "err", err)
		return nil
	}
	defer in.Close()
	r := bufio.NewReaderSize(in, maxLine)
	var n int64
	for lineNo := 1; ; lineNo++ {
		if lineNo%4096 == 0 {
			f.lines.seen.Store(n) // the total so far, while a big file is counted
			if ctx.Err() != nil {
				return nil
			}
		}
		line, _, err := readLine(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			f.log.Debug("count the input's lines", "err", err)
			return nil
		}
		if _, ok := recordLine(line, lineNo); ok {
			n++
		}
	}
	f.lines.counted(n)
	return nil
}

// readLine returns the next line without its newline. A line longer than
// the reader's buffer is returned cut, with tooLong set, and the rest of it
// is skipped.
func readLine(r *bufio.Reader) (line []byte, tooLong bool, err error) {
	line, err = r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		line = append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.ReadSlice('\n')
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
		return line, true, err
	}
	if errors.Is(err, io.EOF) && len(line) > 0 {
		err = nil
	}
	return bytes.TrimSuffix(line, []byte("\n")), false, err
}

// inputFile is the file the run's urls are read from, for countLines: the
// urls file, or on a resume the copy of the stdin a run read. A new run
// reading stdin has none: its size is known when it ends.
func inputFile(runDir string, st *runState, resume bool) string {
	switch {
	case st.Input != "":
		return st.Input
	case resume:
		return filepath.Join(runDir, inputCopy)
	}
	return ""
}
