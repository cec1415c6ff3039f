package worker

import (
	"encoding/json"
	"errors"
	"github.com/scrape-cluster/scrape/internal/testqueue"
	"github.com/scrape-cluster/scrape/queue"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// coordinate answers probes on run's hello subject, as a live coordinator
// does, until the returned function is called.
func coordinate(t *testing.T, q *testQueue, run queue.Run) (stop func()) {
	t.Helper()
	nc, err := nats.Connect(q.url, nats.UserInfo(testqueue.User, testqueue.Password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.Subscribe(run.Hellos(), func(m *nats.Msg) {
		if m.Reply != "" {
			_ = m.Respond([]byte(run.ID))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return func() { _ = sub.Unsubscribe(); _ = nc.Flush() }
}

// TestFindRun: a worker joins the one active run; a run whose coordinator
// is gone does not count; with two active it names both and asks; with none
// it waits, up to its limit.
func TestFindRun(t *testing.T) {
	q := startQueue(t, queue.Job{AckWait: time.Second})
	other := queue.Run{ID: "OTHER"}
	if _, err := queue.CreateRun(t.Context(), q.js, other, queue.Job{AckWait: time.Second}, queue.Streams{MaxMsg: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	find := Find{Servers: []string{q.url}, Auth: queue.Auth{User: "w", Password: "secret"}, Wait: 3 * time.Second, Logger: testLogger(t)}

	// Two runs in the queue, neither with a coordinator: wait, then say so.
	began := time.Now()
	_, err := FindRun(t.Context(), find)
	if !errors.Is(err, ErrNoActiveRun) || !strings.Contains(err.Error(), "no run is active") {
		t.Errorf("no coordinator: %v", err)
	}
	if took := time.Since(began); took < 3*time.Second || took > 8*time.Second {
		t.Errorf("waited %s, want about 3s", took)
	}

	stop := coordinate(t, q, q.run)
	if id, err := FindRun(t.Context(), find); err != nil || id != q.run.ID {
		t.Errorf("one active run: %q, %v; want %s", id, err, q.run.ID)
	}
	stopOther := coordinate(t, q, other)
	_, err = FindRun(t.Context(), find)
	if !errors.Is(err, ErrSeveralRuns) || !strings.Contains(err.Error(), q.run.ID) || !strings.Contains(err.Error(), other.ID) {
		t.Errorf("two active runs: %v", err)
	}
	find.Run = other.ID
	if id, err := FindRun(t.Context(), find); err != nil || id != other.ID {
		t.Errorf("--run %s: %q, %v", other.ID, id, err)
	}

	// A coordinator that comes up while the worker waits is found.
	stopOther()
	stop()
	late, err := nats.Connect(q.url, nats.UserInfo(testqueue.User, testqueue.Password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(late.Close)
	go func() {
		time.Sleep(time.Second)
		_, _ = late.Subscribe(other.Hellos(), func(m *nats.Msg) { _ = m.Respond(nil) })
	}()
	find.Wait = 20 * time.Second
	if id, err := FindRun(t.Context(), find); err != nil || id != other.ID {
		t.Errorf("run that starts later: %q, %v", id, err)
	}
}

// A worker sizes itself from the bootstrap's count when it has one, and
// otherwise, as one that joins by hand without --slots, from the run's
// pages per slot, one slot per CPU.
func TestWorkerFetchesPerSlotOfTheRun(t *testing.T) {
	cpus := runtime.NumCPU()
	tests := []struct {
		name           string
		slots, perSlot int
		want           int
	}{
		{"own count", 5, 16, 5},
		{"default per slot", 0, 16, 16 * cpus},
		{"three per slot", 0, 3, 3 * cpus},
		{"none said", 0, 0, cpus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := startQueue(t, queue.Job{AckWait: time.Second, PerSlot: tt.perSlot})
			nc, err := nats.Connect(q.url, nats.UserInfo(testqueue.User, testqueue.Password))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			hellos := make(chan queue.Hello, 16)
			if _, err := nc.Subscribe(q.run.Hellos(), func(m *nats.Msg) {
				var h queue.Hello
				if json.Unmarshal(m.Data, &h) == nil && len(m.Data) > 0 {
					hellos <- h
				}
			}); err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			startWorker(t, q, tt.slots, nil)
			select {
			case h := <-hellos:
				if h.Slots != tt.want {
					t.Errorf("worker says it fetches %d pages at a time, want %d", h.Slots, tt.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no hello within 10s")
			}
		})
	}
}
