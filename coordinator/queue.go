package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scrape-cluster/scrape/queue"
)

// runQueue is the run's JetStream: the embedded server, or an existing NATS
// server or cluster named with --nats.
type runQueue struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	srv *embeddedServer // nil with --nats
}

// openQueue starts the embedded server in runDir, or connects to the
// configured NATS, and connects the coordinator to it.
func (c *Coordinator) openQueue(ctx context.Context, runDir string) (*runQueue, error) {
	q := &runQueue{}
	if len(c.cfg.NATS) == 0 {
		srv, err := startServer(c.run, c.cfg.Listen, runDir, !c.cfg.Plaintext, certNames(c.cfg.Advertise))
		if err != nil {
			return nil, err
		}
		q.srv = srv
		q.nc, err = nats.Connect("", nats.InProcessServer(srv.srv), srv.login(), nats.Name("scrape coordinator"))
		if err != nil {
			srv.shutdown()
			return nil, fmt.Errorf("connect to queue: %w", err)
		}
	} else {
		opts, err := c.cfg.NATSAuth.Options()
		if err != nil {
			return nil, err
		}
		url := strings.Join(c.cfg.NATS, ",")
		opts = append(opts,
			nats.Name("scrape coordinator"),
			// Workers here may subscribe to _INBOX.> (their rights cannot
			// name their IDs); the results this connection pulls must not
			// come to an inbox there.
			nats.CustomInboxPrefix(queue.CoordinatorInbox),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(time.Second),
			// A server that vanishes without closing its connections (power,
			// network) is noticed in 15 s, as workers do, not the default 4 min.
			nats.PingInterval(5*time.Second),
			nats.MaxPingsOutstanding(3),
			nats.Timeout(c.cfg.ConnectTimeout),
			nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
				if !nc.IsClosed() {
					c.log.Warn("lost the NATS server; reconnecting to another", "err", err)
				}
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				c.log.Warn("reconnected", "nats", nc.ConnectedUrlRedacted())
			}),
		)
		if q.nc, err = nats.Connect(url, opts...); err != nil {
			return nil, fmt.Errorf("connect to NATS %s: %w", url, err)
		}
	}
	js, err := jetstream.New(q.nc)
	if err != nil {
		q.close()
		return nil, fmt.Errorf("connect to queue: %w", err)
	}
	q.js = js
	if len(c.cfg.NATS) > 0 {
		actx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
		defer cancel()
		if _, err := js.AccountInfo(actx); err != nil {
			q.close()
			return nil, fmt.Errorf("NATS %s: JetStream not available to this account: %w", strings.Join(c.cfg.NATS, ","), err)
		}
	}
	return q, nil
}

// forWorker is what the worker with ID id, which dials addr (the
// coordinator's address on its route), needs to reach the embedded queue.
func (q *runQueue) forWorker(addr, id string) ([]string, queue.Auth, error) {
	auth, err := q.srv.workerAuth(id)
	if err != nil {
		return nil, auth, err
	}
	scheme := "nats://"
	if q.srv.pin != "" {
		scheme = "tls://"
	}
	return []string{scheme + net.JoinHostPort(addr, strconv.Itoa(q.srv.port()))}, auth, nil
}

// drop removes every trace of a finished run from a shared NATS.
// On the embedded queue it also makes for a prompt shutdown: deleting the
// streams ends the workers' pending pulls at once.
func (q *runQueue) drop(ctx context.Context, run queue.Run) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return queue.DeleteRun(ctx, q.js, run)
}

// queueOutage is how long the coordinator keeps trying a queue that fails
// before it gives up on the run. A NATS cluster that loses a server takes a
// few seconds to elect new leaders for the run's streams and consumers, and
// clients connected to that server reconnect to another; neither should end
// a run.
const queueOutage = time.Minute

// outage tracks how long the queue has failed without a success in between.
type outage struct {
	since time.Time
}

// failed records a failure. It returns true while the outage is short
// enough to retry, logging its first failure.
func (o *outage) failed(log *slog.Logger, what string, err error) bool {
	if o.since.IsZero() {
		o.since = time.Now()
		log.Warn("queue failed; retrying", "op", what, "err", err)
	}
	return time.Since(o.since) < queueOutage
}

// ok ends an outage.
func (o *outage) ok(log *slog.Logger, what string) {
	if !o.since.IsZero() {
		log.Warn("queue back", "op", what, "after", time.Since(o.since).Round(time.Millisecond))
		o.since = time.Time{}
	}
}

// passing reports whether err is one a NATS cluster gets over by itself: a
// timeout, the system temporarily unavailable, no peers to place a stream
// on (one is offline, or leaders are being elected), or a stream with no
// leader yet to take a message (a stream just made has none for a moment).
func passing(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) {
		return true
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		const noPeers, unavailable = 10005, 10008
		return api.Code == 503 || api.ErrorCode == noPeers || api.ErrorCode == unavailable
	}
	return false
}

// pause waits a little before the next try, or until ctx ends.
func pause(ctx context.Context) {
	t := time.NewTimer(250 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (q *runQueue) close() {
	if q.nc != nil {
		q.nc.Close()
	}
	if q.srv != nil {
		q.srv.shutdown()
	}
}

// lostEvery is how often the run checks that its queue is still there.
const lostEvery = 2 * time.Second

// ErrQueueLost is a run whose streams or consumers vanished from under it:
// deleted by someone with the rights to, or lost with a NATS server's store.
// Nothing the run waits for can arrive any more.
var ErrQueueLost = errors.New("the run's queue is gone")

// watchQueue checks every lostEvery that the run's streams and consumers are
// there, and fails once one of them is not, rather than leaving the run to
// wait for work nobody can deliver. A check that cannot be answered (a NATS
// cluster electing a leader) is no news.
func (q *runQueue) watchQueue(ctx context.Context, run queue.Run, done <-chan struct{}) error {
	t := time.NewTicker(lostEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			return nil
		case <-t.C:
		}
		for _, part := range []struct{ stream, consumer string }{
			{run.TaskStream(), queue.WorkerConsumer},
			{run.ResultStream(), queue.CoordinatorConsumer},
		} {
			cctx, cancel := context.WithTimeout(ctx, lostEvery)
			_, err := q.js.Consumer(cctx, part.stream, part.consumer)
			cancel()
			if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				return fmt.Errorf("%w: %s/%s: %v", ErrQueueLost, part.stream, part.consumer, err)
			}
		}
	}
}
