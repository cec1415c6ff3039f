package coordinator

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scrape-cluster/scrape/output"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// collectBatch is how many results are written between two flushes of the
// output; acknowledgements follow each flush.
const collectBatch = 256

// collector moves results from the queue to the output. It acknowledges a
// result only after the output holding it is flushed, so a result is never
// both gone from the queue and missing from the file.
type collector struct {
	runID    queue.Run
	cons     jetstream.Consumer
	frontier *frontier
	sink     *sink
	log      *slog.Logger
	// nodeOf names the node of a worker ID; rejected counts and reports the
	// results refused, by sender.
	nodeOf   func(worker string) string
	rejected rejections
	// rec is the buffer records are encoded in: the sink copies each.
	rec []byte
	// pull is the most messages one pull takes (0: collectBatch). Their
	// data is held until the flush that acknowledges them, so with bodies
	// in them (--warc) it is fewer.
	pull int
}

// archiveBatch is collectBatch with bodies in the results: a message
// holds up to the worker's batch of 1 MiB (one larger result alone), so a
// pull holds some tens of MiB, not hundreds.
const archiveBatch = 16

func (c *collector) run(ctx context.Context) error {
	var o outage
	for {
		select {
		case <-c.frontier.done:
			return nil
		case <-ctx.Done():
			return nil
		default:
		}
		_, err := c.batch(ctx, 250*time.Millisecond)
		var qe *queueError
		switch {
		case err == nil:
			o.ok(c.log, "read results")
		case errors.As(err, &qe) && o.failed(c.log, "read results", qe.err):
			pause(ctx)
		default:
			return err
		}
	}
}

// queueError is a failure to read from the queue, as opposed to one to
// write the output: the first may pass (see outage), the second does not.
type queueError struct{ err error }

func (e *queueError) Error() string { return "read results: " + e.err.Error() }
func (e *queueError) Unwrap() error { return e.err }

// drain takes what workers stored after the run was cut short.
func (c *collector) drain() error {
	for range 10_000 {
		n, err := c.batch(context.Background(), 200*time.Millisecond)
		if err != nil || n == 0 {
			return err
		}
	}
	return nil
}

// batch writes one pull's worth of result messages and returns how many
// arrived.
func (c *collector) batch(ctx context.Context, wait time.Duration) (int, error) {
	// The server ends the pull (queue.Pull): a result it sent as the pull
	// ended is still read, not left to wait out resultAckWait. A run's
	// last record comes sooner than that: the pull stops once nothing is
	// outstanding.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var acks []jetstream.Msg
	var werr error
	_, err := queue.Pull(pctx, c.cons, cmp.Or(c.pull, collectBatch), wait, func(msg jetstream.Msg) {
		if werr != nil {
			return // left unacknowledged: read again after resultAckWait
		}
		acks = append(acks, msg)
		if werr = c.message(msg); werr != nil {
			cancel()
			return
		}
		// The tasks this message answered made room: release more now,
		// in one batch, rather than one per answer.
		c.frontier.poke()
		if c.frontier.outstanding() == 0 {
			// The last record the run waits for: flush and acknowledge it
			// now rather than wait out the rest of the pull.
			cancel()
		}
	})
	if werr != nil {
		return len(acks), werr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		if ctx.Err() == nil {
			err = &queueError{err}
		} else {
			err = nil
		}
	} else {
		err = nil
	}
	// The pages found are on disk and in the commit before the results
	// they were found in are acknowledged.
	if err := c.frontier.flushFound(); err != nil {
		return len(acks), err
	}
	if err := c.sink.flush(); err != nil {
		return len(acks), err
	}
	for _, m := range acks {
		_ = m.Ack()
	}
	c.frontier.settle()
	if err := c.frontier.checkpointIfDue(time.Now()); err != nil {
		return len(acks), err
	}
	return len(acks), err
}

// message writes the results of one message that are their task's final
// answer. A message that is no batch of results is rejected whole.
func (c *collector) message(msg jetstream.Msg) error {
	data, err := queue.ResultData(msg.Headers(), msg.Data(), maxPayload)
	if err != nil {
		c.rejected.add(c.log, c.runID.WorkerOf(msg.Subject()), "not a batch of results: "+err.Error())
		return nil
	}
	var werr error
	err = queue.DecodeResults(c.runID, msg.Subject(), data, func(meta queue.ResultMeta, r *scrape.Result) {
		if werr != nil {
			return
		}
		rec, meta2, task, ok := c.check(meta, r)
		if !ok {
			return
		}
		if werr = c.sink.writePage(rec, meta2.ResultMeta, output.Page{URL: r.URL, Target: r.FinalURL, Date: r.FetchedAt, Exchange: r.Exchange, Resources: r.Resources}); werr != nil {
			return
		}
		if jar := c.frontier.cfg.Jar; jar != nil && len(r.SetCookies) > 0 {
			// Before its links are queued: the pages behind a login are
			// released with the cookie the login set.
			jar.store(task, r.SetCookies)
		}
		if meta2.Kind == "" && c.frontier.cfg.Crawl != nil && task.Depth < c.frontier.cfg.Crawl.depth {
			// The links share the message's memory (DecodeResults); what
			// the crawl keeps of them must not hold the whole message.
			links := make([]string, len(meta2.links))
			for i, l := range meta2.links {
				links[i] = strings.Clone(l)
			}
			c.frontier.discover(task, links)
		}
	})
	if err != nil {
		c.rejected.add(c.log, c.runID.WorkerOf(msg.Subject()), "not a batch of results: "+err.Error())
	}
	return werr
}

// checked is a result the collector accepted: the meta it is accounted by,
// and its links for the crawl.
type checked struct {
	queue.ResultMeta
	links []string
}

// check decides what becomes of one result, and returns the record to write
// for the one that is its task's final answer. The record is the
// coordinator's own encoding of what it decoded, with the task's own URL,
// line and place in the crawl and the sender's node as the queue knows it:
// a worker can at most lie about a page it was given, never write into the
// output bytes of its choosing, answer a task it was not given, or claim to
// be another node. The frontier's decision rests on the record's own
// fields, which DecodeResults put in meta.
func (c *collector) check(meta queue.ResultMeta, r *scrape.Result) ([]byte, checked, scrape.Task, bool) {
	meta.Node = c.nodeOf(meta.Worker)
	v, task := c.frontier.answer(meta, time.Now())
	switch v {
	case reject:
		c.rejected.add(c.log, meta.Worker, fmt.Sprintf("answers task %d attempt %d, which was not delivered to it", meta.Task, meta.Attempt))
		return nil, checked{}, task, false
	case write:
	default:
		return nil, checked{}, task, false
	}
	r.URL, r.Line, r.Depth, r.Parent, r.Node = task.URL, task.Line, task.Depth, task.Parent, meta.Node
	r.Lastmod = task.Lastmod
	if len(r.Data) > 0 && (!c.frontier.cfg.Structured || len(r.Data) > scrape.MaxData || !json.Valid(r.Data)) {
		// Structured data the run did not ask for, over its bound, or no
		// JSON at all: the page's other fields stand, the data does not.
		c.rejected.add(c.log, meta.Worker, fmt.Sprintf("task %d: data of %d bytes that is not what --structured makes: dropped", meta.Task, len(r.Data)))
		r.Data = nil
	}
	if r.Error != nil && r.Error.Kind == "" {
		r.Error.Kind = scrape.KindFetch
	}
	if s := c.frontier.cfg.Since; s != nil {
		s.apply(r, task, c.frontier.cfg.Structured, c.log)
	}
	// What the summary counts is the record as written.
	meta.Unchanged = r.Unchanged
	rec, err := appendRecord(c.rec[:0], r)
	if err != nil {
		// Nothing decoded fails to encode but a date past year 9999;
		// should one, the task still gets its one record.
		rec, _ = json.Marshal(scrape.Result{URL: task.URL, Line: task.Line, Depth: task.Depth, Parent: task.Parent,
			Error: scrape.Errorf(scrape.KindFetch, "unencodable result: %v", err)})
	}
	c.rec = rec[:0]
	return rec, checked{ResultMeta: meta, links: r.Links}, task, true
}

// rejections counts the results the collector refused, and logs the first
// from each sender.
type rejections struct {
	mu     sync.Mutex
	n      int
	logged map[string]bool
}

func (r *rejections) add(log *slog.Logger, sender, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	if r.logged == nil {
		r.logged = map[string]bool{}
	}
	if !r.logged[sender] {
		r.logged[sender] = true
		log.Warn("rejected a result; further ones from this sender are counted, not logged", "sender", sender, "why", why)
	}
}

func (r *rejections) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}
