package coordinator

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// Verdicts of frontier.answer.
type verdict int

const (
	drop   verdict = iota // a duplicate, or the answer to an attempt already retried
	retry                 // not written: the task is queued again
	write                 // the final record for its task
	reject                // not from the worker the attempt was delivered to
)

// answer accounts for a result. The caller writes a result judged write,
// passes on its links when crawling, pokes the dispatch once the message's
// results are answered (so that the room they made is filled in one batch),
// and calls settle after its batch.
func (f *frontier) answer(meta queue.ResultMeta, now time.Time) (verdict, scrape.Task) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.pending[meta.Task]
	if !ok || meta.Attempt != e.task.Attempt {
		return drop, scrape.Task{}
	}
	if subtle.ConstantTimeCompare([]byte(meta.Token), []byte(e.task.Token)) != 1 {
		return reject, scrape.Task{}
	}
	delete(f.pending, meta.Task)
	e.host.inflight--
	f.answeredLocked(e, meta.Node, meta.Took)
	f.adaptLocked(e, meta, now)
	say := f.breakerLocked(e, meta, now)
	if meta.NeedsRender != "" && !e.task.Render && say != finalTask && !f.noRender {
		// --render auto: the page came over HTTP and looks as though its
		// scripts make it. It goes again, at once and to the front, as a
		// render task, which only workers with a browser pull; it is no
		// failure, so no retry is counted. With no worker that renders,
		// the plain record is written, its needs_render saying so.
		e.task.Attempt++
		e.task.Render = true
		e.host.queue = append([]*entry{e}, e.host.queue...)
		f.queued++
		f.activateLocked(e.host)
		return retry, e.task
	}
	if say == finalTask || e.task.Attempt > f.cfg.Retries || !retryable(meta) {
		return write, e.task
	}
	e.task.Attempt++
	e.retried = true
	f.retryWaiting++
	e.notBefore = now.Add(backoff(f.cfg.Backoff, e.task.Attempt, meta.RetryAfter))
	if say == holdTask {
		e.notBefore = time.Time{} // the breaker says when the host is tried again
	}
	// To the front: the host asked us to slow down, not to reorder.
	e.host.queue = append([]*entry{e}, e.host.queue...)
	f.queued++
	f.activateLocked(e.host)
	return retry, e.task
}

// open reports whether the task of that ID and attempt still waits for an
// answer, asked with its delivery's token.
func (f *frontier) open(id uint64, attempt int, token string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.pending[id]
	return ok && e.task.Attempt == attempt && subtle.ConstantTimeCompare([]byte(token), []byte(e.task.Token)) == 1
}

// serveOpen answers the workers' questions about redelivered batches
// (queue.EncodeOpenQuery). A question it cannot read gets no answer: the
// worker then fetches the whole batch, as it would without asking.
func (f *frontier) serveOpen(nc *nats.Conn, subject string) (*nats.Subscription, error) {
	return nc.Subscribe(subject, func(m *nats.Msg) {
		if answer, err := queue.AnswerOpenQuery(m.Data, f.open); err == nil {
			_ = m.Respond(answer)
		}
	})
}

// newToken makes the token of one delivery of a task.
func newToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
