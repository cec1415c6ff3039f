package coordinator

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

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
			return fmt.Errorf("read urls: line %d: %w", lineNo, err)
		}
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		text := string(bytes.TrimSpace(line))
		if text == "" || text[0] == '#' {
			continue
		}
		if f.skip.has(uint64(lineNo)) {
			// Done before a resume; a crawl still needs it as a seed.
			if u, err := scrape.ParseURL(text); err == nil && !tooLong {
				f.mu.Lock()
				if f.cfg.Crawl != nil {
					f.cfg.Crawl.seed(u)
				}
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
		f.admitted++
		// Listed: the user named this URL, so its host may be fetched at a
		// private address (scrape.Listed).
		f.enqueueLocked(scrape.Task{ID: uint64(lineNo), URL: text, Line: lineNo, Attempt: 1, Listed: true}, u)
		f.mu.Unlock()
		f.poke()
	}
	f.mu.Lock()
	f.inputDone = true
	f.checkDoneLocked()
	f.mu.Unlock()
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
