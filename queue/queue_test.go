package queue

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scrape-cluster/scrape/internal/testqueue"
)

// testRun is one run set up on a real JetStream server.
type testRun struct {
	js  jetstream.JetStream
	run Run
}

func startQueue(t *testing.T, job Job) testRun {
	t.Helper()
	js := testqueue.Connect(t, testqueue.Start(t))
	q := testRun{js: js, run: Run{ID: "T" + strings.ToUpper(t.Name())}}
	if _, err := CreateRun(t.Context(), js, q.run, job, Streams{MaxMsg: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	return q
}

// CreateRun can be tried again, as the coordinator does while a NATS cluster
// heals: the same run again is no error, and a changed one updates the
// streams, consumers and config it made.
func TestCreateRunAgain(t *testing.T) {
	q := startQueue(t, Job{AckWait: time.Second})
	for _, tt := range []struct {
		name   string
		job    Job
		maxMsg int32
	}{
		{"the same run", Job{AckWait: time.Second}, 1 << 20},
		{"a changed run", Job{AckWait: 3 * time.Second, MaxDeliver: 7}, 2 << 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := CreateRun(t.Context(), q.js, q.run, tt.job, Streams{MaxMsg: tt.maxMsg}); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{q.run.TaskStream(), q.run.ResultStream()} {
				s, err := q.js.Stream(t.Context(), name)
				if err != nil {
					t.Fatal(err)
				}
				if got := s.CachedInfo().Config.MaxMsgSize; got != tt.maxMsg {
					t.Errorf("%s: largest message %d, want %d", name, got, tt.maxMsg)
				}
			}
			c, err := q.js.Consumer(t.Context(), q.run.TaskStream(), WorkerConsumer)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.CachedInfo().Config.AckWait; got != tt.job.AckWait {
				t.Errorf("task consumer ack wait %v, want %v", got, tt.job.AckWait)
			}
			job, err := LoadJob(t.Context(), q.js, q.run)
			if err != nil {
				t.Fatal(err)
			}
			if job.AckWait != tt.job.AckWait || job.MaxDeliver != tt.job.MaxDeliver {
				t.Errorf("stored job %+v, want %+v", job, tt.job)
			}
		})
	}
	names := q.js.StreamNames(t.Context())
	n := 0
	for range names.Name() {
		n++
	}
	if err := names.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("%d streams after creating the run three times, want 3: two queues and the config bucket", n)
	}
}
