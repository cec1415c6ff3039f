package queue

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Pull asks cons for up to n messages and calls each for every one as it
// arrives, until n have come, the server ends the request after wait, or
// ctx ends. It returns how many came.
//
// The server, not the client, ends the request. A pull whose client gives
// up first (a context's deadline, as jetstream.FetchContext sets it, only a
// tenth ahead of the server's expiry) loses what the server sent it in that
// last moment: the server counts such a message delivered, and no one sees
// it again until its consumer's AckWait has passed. A run's last result
// lost so waited 30 s (the result consumer's AckWait) for nothing, and a
// task 15 s, in a few runs of a busy machine. Here the server's expiry
// closes the request behind every message it sent, on the same
// connection.
//
// A ctx that ends returns at once, without waiting for the expiry: that is
// a stop, and the messages that arrive after it are left unacknowledged,
// so the server hands them to someone else after AckWait, as it does those
// of a worker that stopped.
func Pull(ctx context.Context, cons jetstream.Consumer, n int, wait time.Duration, each func(jetstream.Msg)) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	b, err := cons.Fetch(n, jetstream.FetchMaxWait(wait))
	if err != nil {
		return 0, err
	}
	msgs := b.Messages()
	got := 0
	for {
		select {
		case msg, ok := <-msgs:
			if !ok {
				err := b.Error()
				if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded) {
					err = nil
				}
				return got, err
			}
			got++
			each(msg)
		case <-ctx.Done():
			return got, ctx.Err()
		}
	}
}
