package coordinator

import (
	"fmt"
	"net/url"

	"github.com/scrape-cluster/scrape/scrape"
)

// The frontier's memory holds a bounded head of each host's queue: tasks
// ready to go (hostState.queue, MaxQueued in all). A crawl finds links far
// faster than they are fetched, so the pages it finds wait in their host's
// log (hostLog, spill.go) instead, on disk once a commit has written them,
// and come into the head a chunk at a time as it drains. Round-robin and
// every per-host limit work on the head as before.

// foundLocked puts c at the back of h's log. It goes straight into h's
// queue when nothing of h's waits before it and the head has room: a crawl
// that fits in memory never reads the disk back.
func (f *frontier) foundLocked(h *hostState, c candidate) error {
	l := &h.log
	l.mem = append(l.mem, c)
	if f.store.dir != "" && !l.dirty {
		l.dirty = true
		f.dirty = append(f.dirty, h)
	}
	if l.n == 0 && f.queued < f.cfg.MaxQueued {
		l.read++
		f.trimLocked(h)
		return f.admitLocked(h, c)
	}
	l.n++
	f.backlog++
	f.activateLocked(h)
	return nil
}

// trimLocked drops the candidates taken from mem when no flush needs them.
func (f *frontier) trimLocked(h *hostState) {
	if l := &h.log; f.store.dir == "" && l.read == len(l.mem) {
		l.mem, l.read = l.mem[:0], 0
	}
}

// admitLocked makes c a task at the back of h's queue, unless its URL was
// admitted already (found twice before either was taken), the crawl's
// --max-pages is reached, or a resumed run has its record.
func (f *frontier) admitLocked(h *hostState, c candidate) error {
	crawl := f.cfg.Crawl
	if f.replayDone[c.id] {
		delete(f.replayDone, c.id)
		crawl.claim(hash(c.url))
		f.admitted++
		f.crawled++
		return nil
	}
	if crawl.maxPages > 0 && f.admitted >= crawl.maxPages {
		return nil
	}
	if !crawl.claim(hash(c.url)) {
		return nil
	}
	u, err := url.Parse(c.url)
	if err != nil {
		return fmt.Errorf("frontier holds an unreadable URL %q: %w", c.url, err)
	}
	f.admitted++
	f.crawled++
	f.enqueueLocked(scrape.Task{ID: c.id, URL: c.url, Attempt: 1, Depth: c.depth, Parent: c.parent, Listed: c.listed, Lastmod: c.lastmod}, u)
	return nil
}

// refillLocked moves the next candidates of h's log into its empty queue:
// a chunk from disk, or what mem holds, until a task is admitted or the log
// is empty.
func (f *frontier) refillLocked(h *hostState) error {
	l := &h.log
	for len(h.queue) == 0 && l.n > 0 {
		var cands []candidate
		if len(l.chunks) > 0 {
			var err error
			if cands, err = f.store.read(l.chunks[0]); err != nil {
				return err
			}
			l.chunks = l.chunks[1:]
		} else {
			end := min(len(l.mem), l.read+chunkMax)
			cands = l.mem[l.read:end]
			l.read = end
		}
		l.n -= len(cands)
		f.backlog -= len(cands)
		for _, c := range cands {
			if err := f.admitLocked(h, c); err != nil {
				return err
			}
		}
		f.trimLocked(h)
	}
	return nil
}

// flushFound writes the candidates found since the last flush to the
// frontier's segment files and journals where they are. The collector calls
// it before the commit that acknowledges the results they were found in.
func (f *frontier) flushFound() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	found, err := f.flushFoundLocked()
	if err != nil {
		return err
	}
	f.sink.logged(found)
	return nil
}

func (f *frontier) flushFoundLocked() ([]hostRefs, error) {
	var found []hostRefs
	for _, h := range f.dirty {
		l := &h.log
		refs := make([]chunkRef, 0, (len(l.mem)+chunkMax-1)/chunkMax)
		for a := 0; a < len(l.mem); a += chunkMax {
			b := min(a+chunkMax, len(l.mem))
			ref, err := f.store.write(l.mem[a:b])
			if err != nil {
				return nil, err
			}
			refs = append(refs, ref)
			if b > l.read { // some of it not taken yet
				kept := ref
				kept.Skip = uint32(max(0, l.read-a))
				l.chunks = append(l.chunks, kept)
			}
		}
		l.mem, l.read, l.dirty = nil, 0, false
		found = append(found, hostRefs{Host: h.key, Scheme: h.scheme, Refs: refs})
	}
	clear(f.dirty)
	f.dirty = f.dirty[:0]
	return found, nil
}

// hostLocked returns the state of the host key, made on first sight.
func (f *frontier) hostLocked(key, scheme string) *hostState {
	h := f.hosts[key]
	if h == nil {
		h = &hostState{key: key, scheme: scheme, rate: newHostRate(f.cfg.PerHost, f.cfg.Delay)}
		f.hosts[key] = h
	}
	return h
}

// failLocked keeps the first error of work done under the lock, for
// dispatch to end the run with.
func (f *frontier) failLocked(err error) {
	if f.err == nil {
		f.err = err
	}
}

// failure is the first error of reading or writing the hosts' logs.
func (f *frontier) failure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
