package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/scrape-cluster/scrape/internal/syncbuf"
	"github.com/scrape-cluster/scrape/internal/testbin"
	"github.com/scrape-cluster/scrape/internal/testsite"
)

// natsRun is one finished scrape run --nats.
type natsRun struct {
	err    error
	stderr string
	took   time.Duration
	out    string
	want   map[int]string
}

// runAgainstNATS scrapes pages test pages with two local workers through
// the NATS at url, with the extra flags given.
func runAgainstNATS(t *testing.T, base string, pages int, url string, extra ...string) natsRun {
	t.Helper()
	var urls strings.Builder
	want := map[int]string{}
	for i := range pages {
		u := fmt.Sprintf("%s/page/%d", base, i)
		urls.WriteString(u + "\n")
		want[i+1] = u
	}
	r := natsRun{out: filepath.Join(t.TempDir(), "out.json"), want: want}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	args := append([]string{"run", "-q", "-f", writeFile(t, "mf", "localhost:2\n127.0.0.1:2\n"),
		writeFile(t, "urls.txt", urls.String()), "-o", r.out}, extra...)
	if url != "" {
		args = append(args, "--nats", url)
	}
	cmd := scrapeCmd(t, ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	r.err = cmd.Run()
	r.took = time.Since(start)
	r.stderr = stderr.String()
	return r
}

// TestRunNATSAuth runs scrape run --nats against a real server for each kind
// of NATS login, with a coordinator user and a workers' user that have
// README's rights and no more; then with a wrong login for the coordinator,
// and with a wrong one for the workers, each of which must fail fast and
// say why.
func TestRunNATSAuth(t *testing.T) {
	_, base := startSite(t, 10)
	op := newOperator(t)
	ca, otherCA := newTestCA(t), newTestCA(t)
	coordPerm, workerPerm := readmePermissions(t)
	coord, work, stranger := newNATSUser(t), newNATSUser(t), newNATSUser(t)
	strangerAccount, _ := nkeys.CreateAccount()
	nkeyUsers := func(o *server.Options) {
		o.Nkeys = []*server.NkeyUser{{Nkey: coord.pub, Permissions: coordPerm}, {Nkey: work.pub, Permissions: workerPerm}}
	}

	// Each case logs the coordinator in with coordinator and the workers
	// with worker; a wrong login replaces one of them.
	tests := []struct {
		name                          string
		server                        func(*server.Options)
		coordinator, worker           func(t *testing.T) []string
		wrongCoordinator, wrongWorker func(t *testing.T) []string
		wantErr                       string // for the wrong coordinator
	}{
		{
			name: "user and password files",
			server: func(o *server.Options) {
				o.Users = []*server.User{
					{Username: "scrape-coordinator", Password: "pass word", Permissions: coordPerm},
					{Username: "scrape-worker", Password: "w0rk", Permissions: workerPerm},
				}
			},
			coordinator: func(t *testing.T) []string {
				return []string{"--nats-user", "scrape-coordinator", "--nats-password-file", writeFile(t, "pw", "pass word\n")}
			},
			worker: func(t *testing.T) []string {
				return []string{"--worker-user", "scrape-worker", "--worker-password-file", writeFile(t, "wpw", "w0rk\n")}
			},
			wrongCoordinator: func(t *testing.T) []string {
				return []string{"--nats-user", "scrape-coordinator", "--nats-password-file", writeFile(t, "pw", "guess\n")}
			},
			// The workers' user with the coordinator's password.
			wrongWorker: func(t *testing.T) []string {
				return []string{"--worker-user", "scrape-worker", "--worker-password-file", writeFile(t, "wpw", "pass word\n")}
			},
			wantErr: "authorization violation",
		},
		{
			name: "token files",
			server: func(o *server.Options) {
				o.CustomClientAuthentication = tokenUsers{
					"c0ordinator": {Username: "scrape-coordinator", Permissions: coordPerm},
					"w0rker":      {Username: "scrape-worker", Permissions: workerPerm},
				}
			},
			coordinator: func(t *testing.T) []string {
				return []string{"--nats-token-file", writeFile(t, "token", "c0ordinator\n")}
			},
			worker: func(t *testing.T) []string {
				return []string{"--worker-token-file", writeFile(t, "wtoken", "w0rker\n")}
			},
			wrongCoordinator: func(t *testing.T) []string { return []string{"--nats-token-file", writeFile(t, "token", "guess\n")} },
			wrongWorker:      func(t *testing.T) []string { return []string{"--worker-token-file", writeFile(t, "wtoken", "guess\n")} },
			wantErr:          "authorization violation",
		},
		{
			name:             "nkey seed files",
			server:           nkeyUsers,
			coordinator:      func(t *testing.T) []string { return []string{"--nkey", coord.seedFile(t, "c.nk")} },
			worker:           func(t *testing.T) []string { return []string{"--worker-nkey", work.seedFile(t, "w.nk")} },
			wrongCoordinator: func(t *testing.T) []string { return []string{"--nkey", stranger.seedFile(t, "c.nk")} },
			wrongWorker:      func(t *testing.T) []string { return []string{"--worker-nkey", stranger.seedFile(t, "w.nk")} },
			wantErr:          "authorization violation",
		},
		{
			name:   "creds files (operator mode)",
			server: op.trust,
			coordinator: func(t *testing.T) []string {
				return []string{"--creds", writeFile(t, "c.creds", op.creds(t, nil, coordPerm))}
			},
			worker: func(t *testing.T) []string {
				return []string{"--worker-creds", writeFile(t, "w.creds", op.creds(t, nil, workerPerm))}
			},
			wrongCoordinator: func(t *testing.T) []string {
				return []string{"--creds", writeFile(t, "c.creds", op.creds(t, strangerAccount, coordPerm))}
			},
			wrongWorker: func(t *testing.T) []string {
				return []string{"--worker-creds", writeFile(t, "w.creds", op.creds(t, strangerAccount, workerPerm))}
			},
			wantErr: "authorization violation",
		},
		{
			// The workers check the servers with the coordinator's CA.
			name:   "TLS CA file",
			server: func(o *server.Options) { nkeyUsers(o); ca.serveTLS(o) },
			coordinator: func(t *testing.T) []string {
				return []string{"--nkey", coord.seedFile(t, "c.nk"), "--tls-ca", writeFile(t, "ca.pem", string(ca.pem))}
			},
			worker: func(t *testing.T) []string { return []string{"--worker-nkey", work.seedFile(t, "w.nk")} },
			wrongCoordinator: func(t *testing.T) []string {
				return []string{"--nkey", coord.seedFile(t, "c.nk"), "--tls-ca", writeFile(t, "ca.pem", string(otherCA.pem))}
			},
			wrongWorker: func(t *testing.T) []string { return []string{"--worker-nkey", stranger.seedFile(t, "w.nk")} },
			wantErr:     "certificate signed by unknown authority",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, url := startNATS(t, tt.server)
			r := runAgainstNATS(t, base, 10, url, append(tt.coordinator(t), tt.worker(t)...)...)
			if r.err != nil {
				t.Fatalf("run: %v\n%s", r.err, r.stderr)
			}
			t.Logf("run with %s took %s", tt.name, r.took.Round(time.Millisecond))
			byLine(t, readJSON(t, r.out), r.want)

			for _, wrong := range []struct {
				who     string
				args    []string
				wantErr []string
			}{
				{"the coordinator", append(tt.wrongCoordinator(t), tt.worker(t)...), []string{tt.wantErr, url}},
				{"the workers", append(tt.coordinator(t), tt.wrongWorker(t)...),
					[]string{"no worker could start", "refused our credentials", "authorization violation", "--worker-", url}},
			} {
				r = runAgainstNATS(t, base, 10, url, wrong.args...)
				var ee *exec.ExitError
				if !errors.As(r.err, &ee) || ee.ExitCode() != exitFailed {
					t.Fatalf("run with a wrong login for %s: exit %v, want code %d\n%s", wrong.who, r.err, exitFailed, r.stderr)
				}
				for _, want := range wrong.wantErr {
					if !strings.Contains(strings.ToLower(r.stderr), strings.ToLower(want)) {
						t.Errorf("with a wrong login for %s, stderr does not say %q:\n%s", wrong.who, want, r.stderr)
					}
				}
				if r.took > 10*time.Second {
					t.Errorf("run with a wrong login for %s took %s to fail", wrong.who, r.took)
				}
				t.Logf("a wrong login for %s failed in %s", wrong.who, r.took.Round(time.Millisecond))
			}
		})
	}
}

// tokenUsers logs clients in by token, each token a user with rights of
// its own. nats-server's own configuration takes one token for all, with one
// set of rights; scrape's coordinator and workers need two.
type tokenUsers map[string]*server.User

func (u tokenUsers) Check(c server.ClientAuthentication) bool {
	user, ok := u[c.GetOpts().Token]
	if ok {
		c.RegisterUser(user)
	}
	return ok
}

// TestRunNATSRefuses checks that a NATS the run cannot use, and flags that
// cannot work, stop the run at once with a message that says why.
func TestRunNATSRefuses(t *testing.T) {
	_, base := startSite(t, 3)
	_, noJS := startNATS(t, func(o *server.Options) { o.JetStream = false })
	_, single := startNATS(t, nil)
	closed := "nats://" + testsite.ClosedPort(t)
	tests := []struct {
		name     string
		url      string
		args     []string
		wantCode int
		wantErr  []string
	}{
		{"server without JetStream", noJS, nil, exitFailed, []string{noJS, "JetStream not available"}},
		{"more replicas than servers", single, []string{"--replicas", "3"}, exitFailed, []string{"set up the run's queue", "replicas"}},
		{"nothing listening", closed, nil, exitFailed, []string{"connect to NATS " + closed}},
		{"password file without user", single, []string{"--nats-password-file", writeFile(t, "pw", "x")}, exitUsage, []string{"needs --nats-user"}},
		{"replicas without --nats", "", []string{"--replicas", "3"}, exitUsage, []string{"--replicas"}},
		{"no replicas", single, []string{"--replicas", "0"}, exitUsage, []string{"--replicas must be 1 or more"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runAgainstNATS(t, base, 3, tt.url, tt.args...)
			var ee *exec.ExitError
			if !errors.As(r.err, &ee) || ee.ExitCode() != tt.wantCode {
				t.Fatalf("exit %v, want code %d\n%s", r.err, tt.wantCode, r.stderr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
				}
			}
			if r.took > 15*time.Second {
				t.Errorf("took %s to fail", r.took)
			}
			t.Logf("failed in %s: %s", r.took.Round(time.Millisecond), strings.TrimSpace(r.stderr))
		})
	}
}

// TestRunsShareNATS runs two scrapes at once on one NATS server that also
// holds a stream of someone else's: each run writes its own records exactly
// once, and afterwards its streams and bucket are gone and the other stream
// is not.
func TestRunsShareNATS(t *testing.T) {
	_, url := startNATS(t, nil)
	js := jsClient(t, url)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}}); err != nil {
		t.Fatal(err)
	}

	type run struct {
		cmd    *exec.Cmd
		out    string
		want   map[int]string
		stderr *syncbuf.Buffer
	}
	var runs []run
	for range 2 {
		cmd, out, want, stderr := slowRun(t, 60, 100*time.Millisecond, "localhost:2\n", "-q", "--nats", url)
		runs = append(runs, run{cmd, out, want, stderr})
	}
	waitFor(t, 30*time.Second, "both runs' streams on the server", func() bool {
		tasks := 0
		for _, name := range runStreams(t, js) {
			if strings.HasSuffix(name, "_TASKS") {
				tasks++
			}
		}
		return tasks == 2
	})
	for i, r := range runs {
		if err := r.cmd.Wait(); err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, r.stderr)
		}
		byLine(t, readJSON(t, r.out), r.want)
	}
	if left := runStreams(t, js); len(left) != 0 {
		t.Errorf("finished runs left %v on the server", left)
	}
	if _, err := js.Stream(ctx, "OTHER"); err != nil {
		t.Errorf("another user's stream: %v", err)
	}
}

// TestRunNATSClusterFailover runs on a real three-node JetStream cluster with
// R3 streams and stops the server leading the run's task stream mid-run. The
// coordinator and its workers, given every URL, must carry on through the
// others and write every record exactly once.
func TestRunNATSClusterFailover(t *testing.T) {
	// The coordinator and the workers with README's rights; the test
	// itself as an administrator, to look at the streams and move leaders.
	coordPerm, workerPerm := readmePermissions(t)
	coord, work, admin := newNATSUser(t), newNATSUser(t), newNATSUser(t)
	cl := startNATSCluster(t, 3, func(o *server.Options) {
		o.Nkeys = []*server.NkeyUser{{Nkey: coord.pub, Permissions: coordPerm}, {Nkey: work.pub, Permissions: workerPerm}, {Nkey: admin.pub}}
	})
	js := jsClient(t, strings.Join(cl.urls, ","), admin.login(t))
	cl.probe(t, js)

	const pages = 300
	start := time.Now()
	cmd, out, want, stderr := slowRun(t, pages, 100*time.Millisecond, "localhost:4\n127.0.0.1:4\n",
		"--nats", strings.Join(cl.urls, ","), "--nkey", coord.seedFile(t, "coordinator.nk"), "--worker-nkey", work.seedFile(t, "worker.nk"), "--replicas", "3", "--ack-wait", "3s", "-v", "--progress-interval", "1s")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("scrape run's stderr:\n%s", stderr)
		}
	})
	exited := make(chan struct{})
	var runErr error
	go func() { runErr = cmd.Wait(); close(exited) }()
	records := func(n int) func() bool {
		return func() bool {
			select {
			case <-exited:
				t.Fatalf("run ended with %d records: %v", outputRecords(out), runErr)
			default:
			}
			return outputRecords(out) >= n
		}
	}
	waitFor(t, 60*time.Second, "30 records", records(30))

	// Stop the server the coordinator is connected to, after making it the
	// leader of the run's streams: the replicas on the other two must take
	// over, and the coordinator (and any worker there) must reconnect.
	victim := cl.serverOf(t, "scrape coordinator")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var streams []string
	for _, name := range runStreams(t, js) {
		if strings.HasSuffix(name, "_TASKS") || strings.HasSuffix(name, "_RESULTS") {
			streams = append(streams, name)
		}
	}
	if len(streams) != 2 {
		t.Fatalf("run streams on the cluster: %v", streams)
	}
	for _, name := range streams {
		leadStream(t, ctx, js, name, victim.Name())
	}
	before := outputRecords(out)
	clients := victim.NumClients() - 1 // the test's own client may be there too
	stopped := time.Now()
	victim.Shutdown()
	victim.WaitForShutdown()
	t.Logf("stopped %s (leader of the run's streams, with the coordinator and %d other clients) at %d records, %s into the run", victim.Name(), clients, before, stopped.Sub(start).Round(time.Millisecond))
	waitFor(t, 60*time.Second, "a record after the stop", records(before+1))
	t.Logf("first record %s after the stop", time.Since(stopped).Round(time.Millisecond))
	waitFor(t, 60*time.Second, "50 records after the stop", records(before+50))
	t.Logf("50 more records %s after the stop", time.Since(stopped).Round(time.Millisecond))

	select {
	case <-exited:
		if runErr != nil {
			t.Fatalf("run failed after a cluster member stopped: %v", runErr)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("run did not finish after a cluster member stopped")
	}
	t.Logf("run took %s", time.Since(start).Round(time.Millisecond))
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "warning") {
			t.Log(l)
		}
	}
	got := byLine(t, readJSON(t, out), want)
	for line, r := range got {
		if r.Error != nil {
			t.Errorf("line %d: %+v", line, r.Error)
		}
	}
	if left := runStreams(t, js); len(left) != 0 {
		t.Errorf("the finished run left %v on the cluster", left)
	}
	if pids := testbin.Workers(testbin.Path(t)); len(pids) != 0 {
		t.Errorf("workers still running after the run: %v", pids)
	}
}

// serverOf is the running server a client of that name is connected to.
func (c *natsCluster) serverOf(t *testing.T, client string) *server.Server {
	t.Helper()
	for _, srv := range c.servers {
		cz, err := srv.Connz(&server.ConnzOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ci := range cz.Conns {
			if ci.Name == client {
				return srv
			}
		}
	}
	t.Fatalf("no server has a client called %q", client)
	return nil
}

// leadStream moves the leadership of a stream to the server called leader.
func leadStream(t *testing.T, ctx context.Context, js jetstream.JetStream, stream, leader string) {
	t.Helper()
	req, _ := json.Marshal(server.JSApiLeaderStepdownRequest{Placement: &server.Placement{Preferred: leader}})
	for {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatalf("stream %s: %v", stream, err)
		}
		info := s.CachedInfo()
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: replicas %d, cluster %+v; want R3", stream, info.Config.Replicas, info.Cluster)
		}
		if info.Cluster.Leader == leader {
			return
		}
		if info.Cluster.Leader != "" {
			if _, err := js.Conn().RequestWithContext(ctx, fmt.Sprintf("$JS.API.STREAM.LEADER.STEPDOWN.%s", stream), req); err != nil {
				t.Fatalf("move leader of %s: %v", stream, err)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream %s is still led by %s, not %s", stream, info.Cluster.Leader, leader)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
