package render

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/scrape-cluster/scrape/internal/bytesize"
)

// A browser that serves page after page grows: its caches, documents a
// page's scripts keep alive, a renderer process that never gives back what
// it took. Crawlee's and Puppeteer's pools retire a browser after so many
// pages for that reason, and so does the Renderer, or sooner when its
// process group takes more than Config.MemoryLimit. Retiring is not
// killing: new pages go to a browser started in its place, the pages
// rendering in the old one finish there (each bounded by its own timeout),
// and then it is closed and its process group killed. A browser that died
// goes the same way, its pages failing at once. Close kills the ones still
// draining.

// DefaultMaxPages is the pages a browser renders before it is retired.
const DefaultMaxPages = 1000

// memCheckEvery is how often the browser's memory is read, after a page.
// A read took 15 to 35 ms on this 2-CPU machine under load (a scan of
// /proc for the group, 4 ms; smaps_rollup, whose kernel walks each
// process's page tables, 10 ms for a browser's 9 processes), so it runs
// beside the pages rather than in one page's time.
const memCheckEvery = 5 * time.Second

// acquire returns the browser for a new page, which counts the page as in
// it until release. A browser that died or is to retire is replaced first:
// one caller starts the new one while the others wait for it (or for their
// ctx to end).
func (r *Renderer) acquire(ctx context.Context) (*browser, error) {
	r.mu.Lock()
	for {
		if r.closed {
			r.mu.Unlock()
			return nil, errClosed
		}
		if b := r.cur; b != nil && b.alive() && b.retire == "" {
			b.pages++
			b.inflight++
			if r.cfg.MaxPages > 0 && b.pages >= r.cfg.MaxPages {
				b.retire = fmt.Sprintf("the page bound (%d) reached", b.pages)
			}
			r.mu.Unlock()
			return b, nil
		}
		if wait := r.starting; wait != nil {
			r.mu.Unlock()
			select {
			case <-wait:
			case <-ctx.Done():
				return nil, fmt.Errorf("wait for a browser: %w", ctx.Err())
			}
			r.mu.Lock()
			continue
		}
		if err := r.replace(); err != nil {
			r.mu.Unlock()
			return nil, err
		}
	}
}

// release ends a page in b. The last page of a browser retired closes it;
// a page of the current browser has its memory read, every memCheckEvery.
func (r *Renderer) release(b *browser) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b.inflight--
	r.closeIfDrained(b)
	if r.cfg.MemoryLimit > 0 && r.cur == b && b.retire == "" && time.Since(b.measured) >= memCheckEvery {
		b.measured = time.Now()
		r.closing.Go(func() { r.measure(b) })
	}
}

// measure reads b's memory and has it retired if it is over the limit.
func (r *Renderer) measure(b *browser) {
	mem, ok := groupMemory(b.pid)
	if !ok || mem <= r.cfg.MemoryLimit {
		return
	}
	r.mu.Lock()
	if b.retire == "" {
		b.retire = fmt.Sprintf("its processes take %s, over the limit of %s", bytesize.Format(mem), bytesize.Format(r.cfg.MemoryLimit))
	}
	r.mu.Unlock()
}

// replace starts a browser in place of r.cur, which died, is to retire, or
// failed to start. It is called with r.mu held, which it lets go while the
// browser starts (a second or so), so that pages finishing in the old one
// are not held up.
func (r *Renderer) replace() error {
	old := r.cur
	r.cur = nil
	if old != nil {
		if old.alive() {
			r.retired++
			r.log.Info("retiring the browser; starting another", "pid", old.pid, "why", old.retire, "pages", old.pages, "rendering", old.inflight)
		} else {
			r.log.Warn("browser died; starting another", "pid", old.pid)
		}
		r.draining = append(r.draining, old)
		r.closeIfDrained(old)
	}
	idle := r.idle // all old's: putTab keeps only the current browser's
	r.idle = nil
	done := make(chan struct{})
	r.starting = done
	gen := r.started
	r.closing.Add(1)
	defer r.closing.Done()
	r.mu.Unlock()

	for _, t := range idle {
		t.cancel()
	}
	b, err := launch(r.base, r.cfg, r.nowhere.addr(), gen)

	r.mu.Lock()
	r.starting = nil
	close(done)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	if r.closed { // Close came while it started: it is not Close's to kill
		r.mu.Unlock()
		_ = b.close()
		r.mu.Lock()
		return errClosed
	}
	r.cur = b
	r.started++
	r.log.Info("browser started", "pid", b.pid, "browsers", r.started)
	return nil
}

// closeIfDrained closes b, in the background, if it is retired or dead and
// no page is left in it. r.mu is held.
func (r *Renderer) closeIfDrained(b *browser) {
	i := slices.Index(r.draining, b)
	if i < 0 || b.inflight > 0 {
		return
	}
	r.draining = slices.Delete(r.draining, i, i+1)
	r.closing.Go(func() {
		if err := b.close(); err != nil {
			r.log.Debug("close a retired browser", "pid", b.pid, "err", err)
		}
		r.log.Debug("browser closed", "pid", b.pid, "pages", b.pages)
	})
}

// isClosed reports whether Close was called.
func (r *Renderer) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}
