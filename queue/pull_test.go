package queue

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scrape-cluster/scrape/internal/testqueue"
)

// pullStream makes a work-queue stream with a pull consumer whose AckWait is
// far beyond the test: a message the server counts delivered but nobody
// read would not come back within it.
func pullStream(t *testing.T) (jetstream.JetStream, jetstream.Consumer) {
	t.Helper()
	js := testqueue.Connect(t, testqueue.Start(t))
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "PULL", Subjects: []string{"pull.>"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.MemoryStorage,
	}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "PULL", jetstream.ConsumerConfig{
		Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 10 * time.Minute, MaxAckPending: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return js, cons
}

// Messages published while short pulls come and go, many of them arriving
// as a pull expires, all reach the puller: none is delivered to a pull its
// client has already given up. With the client's deadline ahead of the
// server's expiry (jetstream.FetchContext), a loaded machine lost some,
// for the consumer's AckWait.
func TestPullLosesNothingAtExpiry(t *testing.T) {
	js, cons := pullStream(t)
	const total = 600
	published := make(chan error, 1)
	go func() {
		for i := range total {
			if _, err := js.Publish(t.Context(), "pull.x", fmt.Appendf(nil, "%d", i)); err != nil {
				published <- err
				return
			}
			if i%20 == 0 {
				time.Sleep(3 * time.Millisecond)
			}
		}
		published <- nil
	}()
	seen := map[string]bool{}
	// Bounded: the publisher is done in well under a second, and the last
	// pulls find what it left.
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) < total && time.Now().Before(deadline) {
		_, err := Pull(t.Context(), cons, 7, 5*time.Millisecond, func(m jetstream.Msg) {
			seen[string(m.Data())] = true
			_ = m.Ack()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	if len(seen) != total {
		t.Fatalf("pulled %d of %d messages: the rest were delivered to pulls that no longer listened", len(seen), total)
	}
}

// A stop does not wait for a pull's expiry.
func TestPullStopsAtOnce(t *testing.T) {
	_, cons := pullStream(t)
	const wait = time.Minute
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	n, err := Pull(ctx, cons, 10, wait, func(jetstream.Msg) { t.Error("a message from an empty stream") })
	if !errors.Is(err, context.Canceled) || n != 0 {
		t.Fatalf("Pull = %d, %v; want 0, context.Canceled", n, err)
	}
	if took := time.Since(start); took > wait/2 {
		t.Fatalf("the stopped pull returned after %v: it waited for the server's expiry", took)
	}
}
