package coordinator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/worker"
)

// inprocLauncher is a Launcher that runs each node's worker as a real
// worker.Worker in a goroutine of the test process, where the race detector
// sees it next to the coordinator. A worker dials the run's queue over
// loopback with the servers and credentials of its bootstrap, as a `scrape
// worker` process does, through a link of its own (see link) that Kill can
// cut.
type inprocLauncher struct {
	t   *testing.T
	log *testLog

	mu    sync.Mutex
	procs map[string]*inprocWorker // by node name
}

func newInprocLauncher(t *testing.T, log *testLog) *inprocLauncher {
	l := &inprocLauncher{t: t, log: log, procs: map[string]*inprocWorker{}}
	// A run reaps its workers before it returns; this catches those a
	// failed test left behind, so none outlives the test it logs to.
	t.Cleanup(func() {
		l.mu.Lock()
		procs := make([]*inprocWorker, 0, len(l.procs))
		for _, p := range l.procs {
			procs = append(procs, p)
		}
		l.mu.Unlock()
		for _, p := range procs {
			p.Kill()
		}
		for _, p := range procs {
			select {
			case <-p.Exited():
			case <-time.After(15 * time.Second):
				t.Errorf("in-process worker of %s still running 15s after it was killed", p.node.Name)
			}
		}
	})
	return l
}

func (l *inprocLauncher) Start(ctx context.Context, n Node) (Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := &inprocWorker{
		node:     n,
		log:      l.log.logger(slog.LevelInfo, "["+n.Name+"] "),
		lifeline: make(chan struct{}),
		exited:   make(chan struct{}),
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, dup := l.procs[n.Name]; dup {
		return nil, fmt.Errorf("node %s launched twice", n.Name)
	}
	l.procs[n.Name] = p
	return p, nil
}

// process is the worker started for the node named name, nil if none was.
func (l *inprocLauncher) process(name string) *inprocWorker {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.procs[name]
}

// inprocWorker is one in-process worker: a Process whose Hand starts
// worker.Run in a goroutine.
type inprocWorker struct {
	node Node
	log  *slog.Logger

	lifeline chan struct{} // closed by Stop: the worker's stdin ending
	stopOnce sync.Once
	exited   chan struct{}
	exitOnce sync.Once

	mu     sync.Mutex
	handed bool
	dead   bool // stopped or killed before its bootstrap came: it never runs
	killed bool
	cancel context.CancelFunc
	links  []*link
	err    error // Run's, once exited
}

// Hand starts the worker on boot, with each of its servers reached through
// a link that Kill cuts.
func (p *inprocWorker) Hand(boot queue.Bootstrap) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.handed:
		return fmt.Errorf("%s: handed a second bootstrap", p.node.Name)
	case p.dead:
		return fmt.Errorf("%s: %s", p.node.Name, p.reasonLocked())
	}
	servers := make([]string, 0, len(boot.Servers))
	for _, s := range boot.Servers {
		l, addr, err := newLink(s)
		if err != nil {
			p.closeLinksLocked()
			return fmt.Errorf("%s: %w", p.node.Name, err)
		}
		p.links = append(p.links, l)
		servers = append(servers, addr)
	}
	boot.Servers = servers
	w, err := worker.New(worker.Config{Bootstrap: boot, Lifeline: p.lifeline, Logger: p.log})
	if err != nil {
		p.closeLinksLocked()
		return fmt.Errorf("%s: %w", p.node.Name, err)
	}
	// Not the launch's context: a worker process outlives its launch, and
	// ends by its lifeline, the run's stop message, or Kill.
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.handed = cancel, true
	go func() {
		err := w.Run(ctx)
		cancel()
		p.mu.Lock()
		p.err = err
		p.closeLinksLocked()
		p.mu.Unlock()
		p.exit()
	}()
	return nil
}

// Stop closes the worker's lifeline. A worker that has no bootstrap yet
// ends, as the process does when its stdin closes before the bootstrap.
func (p *inprocWorker) Stop() {
	p.stopOnce.Do(func() { close(p.lifeline) })
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.handed {
		p.dead = true
		p.exit()
	}
}

// Kill is the worker's sudden death. Its connections to the queue are cut
// first, abruptly, and only then is it cancelled: what it sends from then
// on (the hand-back of its tasks, their results and acknowledgements, its
// bye) never reaches the queue, as with a process killed by a signal or a
// node that lost power. JetStream hands its tasks to another worker once
// their ack wait has passed.
func (p *inprocWorker) Kill() {
	select {
	case <-p.exited:
		return // nothing left to kill
	default:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killed = true
	if !p.handed {
		p.dead = true
		p.exit()
		return
	}
	for _, l := range p.links {
		l.cut()
	}
	p.cancel()
}

func (p *inprocWorker) exit() { p.exitOnce.Do(func() { close(p.exited) }) }

func (p *inprocWorker) Exited() <-chan struct{} { return p.exited }

// Reason is Run's error, and whether the worker was killed; an in-process
// worker prints no lines to quote while it runs.
func (p *inprocWorker) Reason() string {
	select {
	case <-p.exited:
	default:
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reasonLocked()
}

func (p *inprocWorker) reasonLocked() string {
	switch {
	case p.killed && p.err != nil:
		return "killed: " + p.err.Error()
	case p.killed:
		return "killed"
	case p.err != nil:
		return p.err.Error()
	case !p.handed:
		return "exited before its bootstrap"
	}
	return "exited"
}

func (p *inprocWorker) closeLinksLocked() {
	for _, l := range p.links {
		l.cut()
	}
}

// link is a loopback TCP relay between one worker and one queue server. Cut
// resets every connection through it and refuses new ones: the queue sees
// the worker vanish, and the worker finds its queue unreachable.
type link struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns []net.Conn
	done  bool
	wg    sync.WaitGroup
}

// newLink starts a link to the server at serverURL (nats://host:port, or
// tls://...) and returns the URL that reaches the server through it.
func newLink(serverURL string) (*link, string, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Host == "" {
		return nil, "", fmt.Errorf("server %q: not a URL with a host", serverURL)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	l := &link{ln: ln, target: u.Host}
	l.wg.Go(l.serve)
	u.Host = ln.Addr().String()
	return l, u.String(), nil
}

func (l *link) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", l.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		l.mu.Lock()
		if l.done {
			l.mu.Unlock()
			c.Close()
			up.Close()
			return
		}
		l.conns = append(l.conns, c, up)
		l.wg.Go(func() { relay(up, c) })
		l.wg.Go(func() { relay(c, up) })
		l.mu.Unlock()
	}
}

// relay copies src to dst; when either side ends, both do.
func relay(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// cut resets the link's connections and closes it; it returns once its
// goroutines have ended.
func (l *link) cut() {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return
	}
	l.done = true
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	l.ln.Close()
	for _, c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, not a goodbye
		}
		c.Close()
	}
	l.wg.Wait()
}

// testLog routes log lines to t.Log until the test ends, and drops those
// that come later: t.Log panics once its test is over.
type testLog struct {
	t    *testing.T
	mu   sync.Mutex
	over bool
}

func newTestLog(t *testing.T) *testLog {
	l := &testLog{t: t}
	// Registered first, so it runs last: after the launcher has waited for
	// its workers.
	t.Cleanup(func() {
		l.mu.Lock()
		l.over = true
		l.mu.Unlock()
	})
	return l
}

func (l *testLog) logger(level slog.Level, prefix string) *slog.Logger {
	return slog.New(slog.NewTextHandler(&prefixWriter{log: l, prefix: prefix}, &slog.HandlerOptions{Level: level}))
}

type prefixWriter struct {
	log    *testLog
	prefix string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.log.mu.Lock()
	defer w.log.mu.Unlock()
	if !w.log.over {
		w.log.t.Log(w.prefix + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

var _ Launcher = (*inprocLauncher)(nil)
