package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/scrape-cluster/scrape/coordinator"
	"github.com/scrape-cluster/scrape/queue"
)

// README's nats-server configuration for scrape's two users, on real
// servers: the exact text, found in README by its first line.

// readmeUsersMarker is the first line of the snippet in README.
const readmeUsersMarker = "# scrape's users: the coordinator's (--nkey) and the workers' (--worker-nkey)"

// The environment variables the snippet takes the users' public keys from.
const (
	envCoordinatorKey = "SCRAPE_COORDINATOR_PUBKEY"
	envWorkerKey      = "SCRAPE_WORKER_PUBKEY"
)

// readmeSnippet is the snippet as README has it: the indented block that
// begins with the marker, without its indent.
func readmeSnippet(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\n")
		if block == nil {
			if strings.TrimSpace(line) == readmeUsersMarker {
				block = []string{readmeUsersMarker}
			}
			continue
		}
		if line != "" && !strings.HasPrefix(line, "    ") {
			break
		}
		block = append(block, strings.TrimPrefix(line, "    "))
	}
	if block == nil {
		t.Fatalf("README has no line %q", readmeUsersMarker)
	}
	return strings.TrimSpace(strings.Join(block, "\n")) + "\n"
}

// natsUser is an NKey user: its public key and seed.
type natsUser struct{ pub, seed string }

func newNATSUser(t *testing.T) natsUser {
	t.Helper()
	pub, seed := nkeyUser(t)
	return natsUser{pub, seed}
}

// seedFile writes the user's seed where --nkey or --worker-nkey reads it.
func (u natsUser) seedFile(t *testing.T, name string) string {
	t.Helper()
	return writeFile(t, name, u.seed+"\n")
}

// login is the nats.go option that logs in as u.
func (u natsUser) login(t *testing.T) nats.Option {
	t.Helper()
	kp, err := nkeys.FromSeed([]byte(u.seed))
	if err != nil {
		t.Fatal(err)
	}
	return nats.Nkey(u.pub, kp.Sign)
}

// readmeNATS is a server configured with README's snippet.
type readmeNATS struct {
	srv                 *server.Server
	log                 *serverLog
	url                 string
	coordinator, worker natsUser
}

// readmeOptions loads README's snippet, around the settings a test server
// needs, as nats-server loads its configuration file, with two new users'
// keys in the environment.
func readmeOptions(t *testing.T) (*server.Options, natsUser, natsUser) {
	t.Helper()
	coord, work := newNATSUser(t), newNATSUser(t)
	t.Setenv(envCoordinatorKey, coord.pub)
	t.Setenv(envWorkerKey, work.pub)
	conf := fmt.Sprintf("server_name: readme\nlisten: 127.0.0.1:-1\nmax_payload: 8MB\njetstream { store_dir: %q }\n\n%s",
		t.TempDir(), readmeSnippet(t))
	path := writeFile(t, "nats-server.conf", conf)
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("README's snippet is not a nats-server configuration: %v\n%s", err, conf)
	}
	opts.NoSigs, opts.NoLog = true, true
	return opts, coord, work
}

// startREADMENATS starts a server from README's snippet.
func startREADMENATS(t *testing.T) readmeNATS {
	t.Helper()
	opts, coord, work := readmeOptions(t)
	log := &serverLog{}
	srv := runNATSLogged(t, opts, log)
	return readmeNATS{srv: srv, log: log, url: "nats://" + srv.Addr().String(), coordinator: coord, worker: work}
}

// serverLog keeps the errors a server logs, among them every permissions
// violation, with the client's connection ID.
type serverLog struct {
	mu     sync.Mutex
	errors []string
}

func (l *serverLog) Errorf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errors = append(l.errors, fmt.Sprintf(format, v...))
}
func (l *serverLog) Noticef(string, ...any) {}
func (l *serverLog) Warnf(string, ...any)   {}
func (l *serverLog) Fatalf(string, ...any)  {}
func (l *serverLog) Debugf(string, ...any)  {}
func (l *serverLog) Tracef(string, ...any)  {}

// violations are the permissions violations logged of clients other than
// the one with connection ID cid.
func (l *serverLog) violations(cid uint64) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.errors {
		if strings.Contains(e, "Violation") && !strings.Contains(e, fmt.Sprintf("cid:%d ", cid)) {
			out = append(out, e)
		}
	}
	return out
}

// readmePermissions are the rights README gives the coordinator and the
// workers, for servers the tests configure in code.
func readmePermissions(t *testing.T) (coord, work *server.Permissions) {
	t.Helper()
	opts, c, w := readmeOptions(t)
	for _, u := range opts.Nkeys {
		switch u.Nkey {
		case c.pub:
			coord = u.Permissions
		case w.pub:
			work = u.Permissions
		}
	}
	if coord == nil || work == nil || coord.Publish == nil || work.Publish == nil || work.Subscribe == nil {
		t.Fatalf("README's snippet does not give both users permissions: %+v", opts.Nkeys)
	}
	return coord, work
}

// TestNATSPermissionsFromREADME runs scrape run --nats on a real server
// configured with exactly README's snippet: the coordinator logs in as its
// user, the workers it starts and one that joins by hand as the workers',
// and the run writes every line once. Mid-run, a client with the workers'
// login tries what a worker must not do, and is refused each time; with the
// _INBOX.> it is allowed, it sees no result pass.
func TestNATSPermissionsFromREADME(t *testing.T) {
	ns := startREADMENATS(t)
	workerKey := ns.worker.seedFile(t, "worker.nk")
	state := filepath.Join(t.TempDir(), "state")
	// 100 pages of 150 ms: 7.5 s on the started worker's two slots alone,
	// time for the joiner to find the run (it looks every 2 s) and for the
	// test to try its worst mid-run.
	cmd, out, want, stderr := slowRun(t, 100, 150*time.Millisecond, "localhost:2\n",
		"--nats", ns.url, "--nkey", ns.coordinator.seedFile(t, "coordinator.nk"), "--worker-nkey", workerKey,
		"--state", state, "--per-host", "64", "-q")
	joiner := start(t, "worker", "--nats", ns.url, "--nkey", workerKey, "--name", "joiner", "--slots", "2", "--wait", "30s")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waitFor(t, 30*time.Second, "the joiner's first record", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("run ended early: %v\n%s\njoiner:\n%s", err, stderr, joiner.stderr)
		default:
		}
		return countNode(partialRecords(out), "joiner") > 0
	})

	// Every worker on the server logged in as the workers' user, the
	// coordinator as its own.
	cz, err := ns.srv.Connz(&server.ConnzOptions{Username: true})
	if err != nil {
		t.Fatal(err)
	}
	workers := 0
	for _, c := range cz.Conns {
		switch {
		case strings.HasPrefix(c.Name, "scrape-worker "):
			workers++
			if c.AuthorizedUser != ns.worker.pub {
				t.Errorf("worker %q logged in as %q, want the workers' user", c.Name, c.AuthorizedUser)
			}
		case c.Name == "scrape coordinator" && c.AuthorizedUser != ns.coordinator.pub:
			t.Errorf("the coordinator logged in as %q, want its own user", c.AuthorizedUser)
		}
	}
	if workers < 2 {
		t.Errorf("%d workers connected, want the started one and the joiner", workers)
	}

	// The workers' login: it finds the run as a joiner does, and may do
	// nothing more than a worker.
	var v violations
	id := queue.NewWorkerID()
	nc, err := nats.Connect(ns.url, ns.worker.login(t), nats.Name(queue.ClientName(id, "mallory")),
		nats.CustomInboxPrefix(queue.InboxPrefix(id)), nats.ErrorHandler(v.handler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var mallory uint64
	if cz, err = ns.srv.Connz(&server.ConnzOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cz.Conns {
		if c.Name == queue.ClientName(id, "mallory") {
			mallory = c.Cid
		}
	}
	run := activeRun(t, nc, id, "the workers' login")
	results := make(chan *nats.Msg, 1)
	all, err := nc.Subscribe("_INBOX.>", func(m *nats.Msg) {
		if m.Header.Get(queue.HeaderResults) != "" {
			select {
			case results <- m:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	attempts := append(workerForbidden(run),
		forbidden{name: "subscribe to the coordinator's inbox", sub: queue.CoordinatorInbox + ".>"})
	tryForbidden(t, nc, queue.InboxPrefix(id), &v, attempts)
	if n := outputRecords(out); n >= len(want) {
		t.Fatalf("the run had all %d records before the attempts were done: results passed before _INBOX.> was watched", n)
	}

	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, stderr)
		}
	case <-time.After(time.Minute):
		t.Fatalf("run did not finish\n%s", stderr)
	}
	if err := all.Unsubscribe(); err != nil {
		t.Error(err)
	}
	select {
	case m := <-results:
		t.Errorf("the workers' login read results on %s (%s of them)", m.Subject, m.Header.Get(queue.HeaderResults))
	default:
	}
	perNode := pagesPerNode(t, byLine(t, readJSON(t, out), want))
	t.Logf("pages per node: %v", perNode)
	if code := joiner.wait(t, 10*time.Second); code != 0 {
		t.Errorf("joiner exit %d:\n%s", code, joiner.stderr)
	}
	// The rights were enough: the server refused the coordinator, the
	// workers and the joiner nothing, and the finished run could remove its
	// streams and bucket.
	if len(ns.log.violations(0)) == 0 {
		t.Error("the server logged none of the refusals: the check below would prove nothing")
	}
	if others := ns.log.violations(mallory); len(others) > 0 {
		t.Errorf("the server refused scrape's own clients:\n%s", strings.Join(others, "\n"))
	}
	jsz, err := ns.srv.Jsz(&server.JSzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if jsz.Streams != 0 {
		t.Errorf("the finished run left %d streams", jsz.Streams)
	}
}

// TestNATSRunFailsWhenItsStreamIsDeleted deletes a run's task stream under
// it, with the coordinator's rights on README's server (an administrator's
// mistake): the run must fail within 10 s, exit 1, name the lost stream and
// say how to resume.
func TestNATSRunFailsWhenItsStreamIsDeleted(t *testing.T) {
	ns := startREADMENATS(t)
	state := filepath.Join(t.TempDir(), "state")
	cmd, out, _, stderr := slowRun(t, 200, 200*time.Millisecond, "localhost:2\n",
		"--nats", ns.url, "--nkey", ns.coordinator.seedFile(t, "coordinator.nk"),
		"--worker-nkey", ns.worker.seedFile(t, "worker.nk"), "--state", state, "-q")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waitFor(t, 30*time.Second, "the first records", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("run ended early: %v\n%s", err, stderr)
		default:
		}
		return outputRecords(out) >= 3
	})
	// The run's ID, from the status file it writes every second.
	var run queue.Run
	waitFor(t, 10*time.Second, "the run's status file", func() bool {
		st, _, err := coordinator.ReadStatus(state)
		if err == nil {
			run.ID = st.Run
		}
		return run.ID != ""
	})
	// The coordinator's rights take replies on its own inbox only.
	js := jsClient(t, ns.url, ns.coordinator.login(t), nats.CustomInboxPrefix(queue.CoordinatorInbox))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, run.TaskStream()); err != nil {
		t.Fatalf("delete %s: %v", run.TaskStream(), err)
	}
	deleted := time.Now()
	var err error
	select {
	case err = <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("run still going 10s after its task stream was deleted\n%s", stderr)
	}
	took := time.Since(deleted)
	t.Logf("run ended %s after its task stream was deleted: %v", took.Round(time.Millisecond), err)
	if code := exitCode(err); code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	for _, want := range []string{"the run's queue is gone: " + run.TaskStream(), "scrape run --resume " + state} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	// The run's other stream stays for the resume.
	if _, err := js.Stream(ctx, run.ResultStream()); err != nil {
		t.Errorf("stream %s after the run: %v", run.ResultStream(), err)
	}
}
