package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scrape-cluster/scrape/coordinator"
	"github.com/scrape-cluster/scrape/internal/testsite"
	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// workerReady is the coordinator's -v line for a worker it started, with
// that worker's ID.
var workerReady = regexp.MustCompile(`msg="worker ready" .*worker=(w[0-9a-f]{24})`)

// TestJoinKeyHolderCannotTamper gives a real NATS client what a worker
// joining by hand holds, the run's join key and certificate, and has it do
// its worst. It cannot log in as a worker the run started, nor under a name
// that is no worker ID; logged in as a worker of its own, it finds the run
// as a joiner does, and then each thing no worker may do is refused by the
// queue (feed, change or delete the queue, read results, listen on another
// worker's inbox, speak as another worker). What it may publish, results on
// its own subject, it forges, answering tasks it was not given with a token
// of its own making, and garbles: the collector rejects all of them. The run
// ends with every line once, nothing forged in the output, and the rejected
// count in --stats exactly the forged and garbled results.
func TestJoinKeyHolderCannotTamper(t *testing.T) {
	addr := testsite.ClosedPort(t)
	state := filepath.Join(t.TempDir(), "state")
	stats := filepath.Join(t.TempDir(), "stats.json")
	// 80 pages of 300 ms on two slots: 12 s. --per-host 64 lets the run
	// release 64 tasks at once, so tasks 50 to 52 wait in the queue, pending,
	// while the test answers them.
	cmd, out, want, stderr := slowRun(t, 80, 300*time.Millisecond, "localhost:2\n",
		"--listen", addr, "--state", state, "--per-host", "64", "--stats", stats, "-v")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var started string
	waitFor(t, 30*time.Second, "the started worker's ID and first records", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("run ended early: %v\n%s", err, stderr)
		default:
		}
		if m := workerReady.FindStringSubmatch(stderr.String()); m != nil {
			started = m[1]
		}
		return started != "" && outputRecords(out) >= 2
	})
	files := queue.AuthFiles{NKey: filepath.Join(state, coordinator.JoinKeyFile), CA: filepath.Join(state, coordinator.CertFile)}
	auth, err := files.Load()
	if err != nil {
		t.Fatal(err)
	}
	login, err := auth.Options()
	if err != nil {
		t.Fatal(err)
	}
	connect := func(name string, opts ...nats.Option) (*nats.Conn, error) {
		return nats.Connect("nats://"+addr, append(append(opts, login...), nats.Name(name), nats.Timeout(5*time.Second), nats.NoReconnect())...)
	}

	// Logins the join key does not give.
	for _, name := range []string{
		queue.ClientName(started, "mallory"), // the started worker's ID, its rights and inbox
		"scrape-worker > mallory",            // an ID that would widen a worker's rights to all
		"mallory",                            // no ID at all
	} {
		nc, err := connect(name)
		if err == nil {
			nc.Close()
			t.Errorf("the join key logged in as %q", name)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("the join key as %q: %v, want an authorization violation", name, err)
		}
	}

	var v violations
	id := queue.NewWorkerID()
	nc, err := connect(queue.ClientName(id, "mallory"), nats.CustomInboxPrefix(queue.InboxPrefix(id)), nats.ErrorHandler(v.handler))
	if err != nil {
		t.Fatalf("the join key, as a worker of its own: %v", err)
	}
	defer nc.Close()
	run := activeRun(t, nc, id, "the join key")
	forgedResult, _ := json.Marshal(scrape.Result{URL: forgedURL, Title: forgedTitle, Status: 200})
	attempts := append(workerForbidden(run),
		forbidden{name: "subscribe to the started worker's inbox", sub: queue.InboxPrefix(started) + ".>"},
		forbidden{name: "subscribe to every inbox", sub: "_INBOX.>"},
		forbidden{name: "answer as the started worker", pub: run.ResultSubject(started), data: forgedResult},
		forbidden{name: "say goodbye for the started worker", pub: run.ByeSubject(started), data: []byte(`{"node":"localhost"}`)},
	)
	tryForbidden(t, nc, queue.InboxPrefix(id), &v, attempts)

	// Its own result subject takes anything; the collector decides.
	if n := len(partialRecords(out)); n >= 40 {
		t.Fatalf("the run had %d records before the forgeries: tasks 50 to 52 may be answered already", n)
	}
	var sent int
	for task := uint64(50); task <= 52; task++ {
		var b queue.ResultBatch
		b.Add(queue.EncodeResult(scrape.Task{ID: task, Attempt: 1, Token: fmt.Sprintf("made-up-%d", task)},
			&scrape.Result{URL: forgedURL, Title: forgedTitle, Line: int(task), Status: 200}, 0))
		if err := nc.PublishMsg(b.Msg(run, id)); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	garbled := nats.NewMsg(run.ResultSubject(id))
	garbled.Header.Set(queue.HeaderResults, "1")
	garbled.Data = []byte("{not a record")
	for _, m := range []*nats.Msg{{Subject: run.ResultSubject(id), Data: []byte("garbage, no headers")}, garbled} {
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, stderr)
		}
	case <-time.After(time.Minute):
		t.Fatalf("run did not finish\n%s", stderr)
	}
	if v.has(`publish to "` + run.ResultSubject(id)) {
		t.Errorf("the client's own result subject was refused:\n%s", &v)
	}
	for line, r := range byLine(t, readJSON(t, out), want) {
		if r.Node != "localhost" || r.Error != nil || r.Title == forgedTitle {
			t.Errorf("line %d: node %q, title %q, error %+v", line, r.Node, r.Title, r.Error)
		}
	}
	data, err := os.ReadFile(stats)
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Rejected int `json:"rejected"`
	}
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Rejected != sent {
		t.Errorf("--stats: rejected %d, want the %d results forged or garbled\n%s", sum.Rejected, sent, data)
	}
	// Logged once for the sender, counted for every one.
	if n := strings.Count(stderr.String(), "rejected a result; further ones from this sender are counted, not logged\" component=coordinator run="+run.ID+" sender="+id); n != 1 {
		t.Errorf("stderr logs %d rejections from %s, want 1:\n%s", n, id, stderr)
	}
	if want := fmt.Sprintf("rejected: %d results not written", sent); !strings.Contains(stderr.String(), want) {
		t.Errorf("the summary lacks %q:\n%s", want, stderr)
	}
}
