package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scrape-cluster/scrape/queue"
)

// collectBatch is how many results are written between two flushes of the
// output; acknowledgements follow each flush.
const collectBatch = 256

// collector moves results from the queue to the output. It acknowledges a
// result only after the output holding it is flushed, so a result is never
// both gone from the queue and missing from the file.
type collector struct {
	cons     jetstream.Consumer
	frontier *frontier
	sink     *sink
	log      *slog.Logger
}

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

// batch writes one pull's worth of results and returns how many arrived.
func (c *collector) batch(ctx context.Context, wait time.Duration) (int, error) {
	fctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	b, err := c.cons.Fetch(collectBatch, jetstream.FetchContext(fctx))
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil
		}
		return 0, &queueError{err}
	}
	var acks []jetstream.Msg
	for msg := range b.Messages() {
		acks = append(acks, msg)
		meta, err := queue.DecodeResultMeta(msg.Headers())
		if err != nil {
			c.log.Error("dropping unreadable result", "err", err)
			continue
		}
		v, task := c.frontier.answer(meta, time.Now())
		if v != write {
			continue
		}
		if err := c.sink.write(msg.Data(), meta); err != nil {
			return len(acks), err
		}
		if meta.Kind == "" && c.frontier.cfg.Crawl != nil && task.Depth < c.frontier.cfg.Crawl.depth {
			var page struct {
				Links []string `json:"links"`
			}
			if err := json.Unmarshal(msg.Data(), &page); err == nil {
				c.frontier.discover(task, page.Links)
			}
		}
		if c.frontier.outstanding() == 0 {
			// The last record the run waits for: flush and acknowledge it
			// now rather than wait out the rest of the batch.
			cancel()
		}
	}
	if err := c.sink.flush(); err != nil {
		return len(acks), err
	}
	for _, m := range acks {
		_ = m.Ack()
	}
	c.frontier.settle()
	if err := b.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && !errors.Is(err, jetstream.ErrNoMessages) {
		return len(acks), &queueError{err}
	}
	return len(acks), nil
}
