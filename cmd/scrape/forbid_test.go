package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
	"github.com/scrape-cluster/scrape/worker"
)

// What a worker's login must not be able to do on a run's queue, tried with
// a real NATS client, for the embedded queue's join key and for the worker
// user README gives for an existing NATS.

// forgedURL and forgedTitle mark what a test forges, so that the output can
// be searched for them.
const (
	forgedURL   = "http://forged.invalid/"
	forgedTitle = "FORGED BY THE TEST"
)

// violations collects the permission violations a server reports to a
// client, which arrive asynchronously.
type violations struct {
	mu   sync.Mutex
	seen []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) {
		v.mu.Lock()
		v.seen = append(v.seen, err.Error())
		v.mu.Unlock()
	}
}

// has reports whether a violation naming what (`publish to "S"`) arrived.
func (v *violations) has(what string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, s := range v.seen {
		if strings.Contains(strings.ToLower(s), strings.ToLower(what)) {
			return true
		}
	}
	return false
}

func (v *violations) String() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return strings.Join(v.seen, "\n")
}

// forbidden is one thing a worker must be refused: a publish to pub (with
// the reply to the client's own inbox, where an answer would show that it
// went through), or a subscription to sub.
type forbidden struct {
	name string
	pub  string
	data []byte
	sub  string
}

func (f forbidden) violation() string {
	if f.sub != "" {
		return `subscription to "` + f.sub + `"`
	}
	return `publish to "` + f.pub + `"`
}

// workerForbidden is what no worker of run may do, whatever its login: feed
// the queue, change or delete it, or read what others put in it.
func workerForbidden(run queue.Run) []forbidden {
	task, _ := json.Marshal(scrape.Task{ID: 1 << 40, URL: forgedURL, Line: 1, Attempt: 1})
	tasks, results := run.TaskStream(), run.ResultStream()
	return []forbidden{
		{name: "publish a task", pub: run.TaskSubject(), data: task},
		{name: "delete the task stream", pub: "$JS.API.STREAM.DELETE." + tasks},
		{name: "purge the task stream", pub: "$JS.API.STREAM.PURGE." + tasks},
		{name: "update the task stream", pub: "$JS.API.STREAM.UPDATE." + tasks,
			data: []byte(`{"name":"` + tasks + `","subjects":["scrape.>"],"retention":"workqueue"}`)},
		{name: "delete the result stream", pub: "$JS.API.STREAM.DELETE." + results},
		{name: "delete the workers' consumer", pub: "$JS.API.CONSUMER.DELETE." + tasks + "." + queue.WorkerConsumer},
		{name: "create a consumer on the results", pub: "$JS.API.CONSUMER.CREATE." + results + ".spy",
			data: []byte(`{"stream_name":"` + results + `","config":{"durable_name":"spy","ack_policy":"none"}}`)},
		{name: "pull from the coordinator's consumer", pub: "$JS.API.CONSUMER.MSG.NEXT." + results + "." + queue.CoordinatorConsumer,
			data: []byte(`{"batch":10,"expires":1000000000}`)},
		{name: "get a result by its sequence", pub: "$JS.API.STREAM.MSG.GET." + results, data: []byte(`{"seq":1}`)},
		{name: "subscribe to the results", sub: run.Results()},
		{name: "stop the run's workers", pub: run.ControlSubject(), data: []byte(queue.ControlStop)},
	}
}

// tryForbidden makes each attempt on nc, whose own inbox is inbox, and
// fails the test for each the server does not refuse as a permissions
// violation (reported to v), or that gets any answer.
func tryForbidden(t *testing.T, nc *nats.Conn, inbox string, v *violations, attempts []forbidden) {
	t.Helper()
	answers, err := nc.SubscribeSync(inbox + ".>")
	if err != nil {
		t.Fatal(err)
	}
	defer answers.Unsubscribe()
	for i, f := range attempts {
		var err error
		if f.sub != "" {
			_, err = nc.Subscribe(f.sub, func(m *nats.Msg) {
				t.Errorf("%s: got a message on %s", f.name, m.Subject)
			})
		} else {
			err = nc.PublishRequest(f.pub, inbox+".answer"+string(rune('a'+i)), f.data)
		}
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, f := range attempts {
		for !v.has(f.violation()) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if v.has(f.violation()) {
			t.Logf("%s: refused", f.name)
		} else {
			t.Errorf("%s: no permissions violation for %s; the server said:\n%s", f.name, f.violation(), v)
		}
	}
	// A refused publish gets no answer; one answer would be an attempt
	// that went through (a stream deleted, a result read).
	if m, err := answers.NextMsg(500 * time.Millisecond); err == nil {
		t.Errorf("an attempt was answered on %s: %s %q", m.Subject, m.Header, m.Data)
	}
}

// activeRun is the one run a worker's login (nc, with worker ID id) finds
// active, as a joiner looks for it.
func activeRun(t *testing.T, nc *nats.Conn, id, whose string) queue.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	runs, err := worker.ActiveRuns(ctx, nc, id)
	if err != nil || len(runs) != 1 {
		t.Fatalf("%s finds active runs %v: %v", whose, runs, err)
	}
	return queue.Run{ID: runs[0]}
}
