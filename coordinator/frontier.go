package coordinator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scrape-cluster/scrape/scrape"
	"github.com/scrape-cluster/scrape/worker"
)

// maxLine bounds one line of the urls file. A longer line is no URL anyone
// can fetch; it becomes an invalid_url record instead of a reason to buffer
// without end.
const maxLine = 64 << 10

// frontier decides what the cluster fetches next. It streams the urls file
// and keeps at most a window of tasks outstanding, so a file of millions of
// lines is never held in memory, and so that politeness and link following
// have one place to live.
type frontier struct {
	js     jetstream.JetStream
	run    worker.Run
	window chan struct{} // a token per task released and not yet answered

	mu        sync.Mutex
	pending   map[uint64]scrape.Task
	inputDone bool
	done      chan struct{} // closed when the input is read and nothing is pending
}

func newFrontier(js jetstream.JetStream, run worker.Run, window int) *frontier {
	return &frontier{
		js:      js,
		run:     run,
		window:  make(chan struct{}, window),
		pending: make(map[uint64]scrape.Task),
		done:    make(chan struct{}),
	}
}

// feed reads the urls file to its end, releasing one task per URL. A line
// that is not a URL is answered at once with an invalid_url record: every
// line of the input gets exactly one record.
func (f *frontier) feed(ctx context.Context, input io.Reader, out *sink) error {
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
		if tooLong {
			if err := out.invalid(text[:min(len(text), 200)]+"…", lineNo, fmt.Sprintf("line longer than %d bytes", maxLine)); err != nil {
				return err
			}
			continue
		}
		if _, err := scrape.ParseURL(text); err != nil {
			if err := out.invalid(text, lineNo, err.Error()); err != nil {
				return err
			}
			continue
		}
		task := scrape.Task{ID: uint64(lineNo), URL: text, Line: lineNo, Attempt: 1}
		if err := f.release(ctx, task); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.inputDone = true
	f.checkDone()
	f.mu.Unlock()
	return nil
}

// release waits for room in the window, then publishes the task.
func (f *frontier) release(ctx context.Context, t scrape.Task) error {
	select {
	case f.window <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	msg, err := worker.EncodeTask(f.run, t)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.pending[t.ID] = t
	f.mu.Unlock()
	if _, err := f.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("queue task for line %d: %w", t.Line, err)
	}
	return nil
}

// complete marks the task answered. It reports false for a task that is not
// pending: a duplicate result of a redelivered task, to be dropped.
func (f *frontier) complete(id uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.pending[id]; !ok {
		return false
	}
	delete(f.pending, id)
	<-f.window
	f.checkDone()
	return true
}

// checkDone must be called with mu held.
func (f *frontier) checkDone() {
	if f.inputDone && len(f.pending) == 0 {
		select {
		case <-f.done:
		default:
			close(f.done)
		}
	}
}

func (f *frontier) outstanding() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending)
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

// sink is the single writer of the output. The frontier (invalid lines) and
// the collector (results) both write through it.
type sink struct {
	mu    sync.Mutex
	w     writer
	stats *Summary
}

type writer interface {
	Write([]byte) error
	Flush() error
}

func (s *sink) write(rec []byte, meta worker.ResultMeta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.Write(rec); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	s.stats.add(meta)
	return nil
}

func (s *sink) invalid(text string, line int, why string) error {
	rec, err := json.Marshal(scrape.Result{
		URL:   text,
		Line:  line,
		Error: &scrape.Error{Kind: scrape.KindInvalidURL, Message: why},
	})
	if err != nil {
		return err
	}
	return s.write(rec, worker.ResultMeta{Kind: scrape.KindInvalidURL})
}

func (s *sink) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
