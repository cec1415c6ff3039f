// Package worker is the process that runs on every node: it pulls URL tasks
// from the run's JetStream work queue, fetches them with the node's slots in
// parallel and publishes one result per task. A task is acknowledged only
// after its result is stored, so a worker that dies loses nothing: JetStream
// hands its unacknowledged tasks to another worker. A worker of a run with
// --render that finds a browser also pulls the run's render tasks, with
// slots of their own (render.go).
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// Defaults for Config.
const (
	// DefaultGrace is how long a worker survives without its coordinator
	// before it exits by itself.
	DefaultGrace = 30 * time.Second
	// pullWait bounds one pull request, so a stop is noticed promptly.
	pullWait = 2 * time.Second
)

// Config is how a worker joins a run.
type Config struct {
	queue.Bootstrap
	// Lifeline, when set, is closed when the coordinator that started the
	// worker (or the SSH session to it) is gone, and the worker stops. The
	// process reads its stdin for that (see Watch): a read of a pipe cannot
	// be interrupted everywhere, so it is the process's to own, not Run's.
	Lifeline <-chan struct{}
	// Grace is how long the worker waits for a lost NATS connection to come
	// back before it gives up. Zero means DefaultGrace.
	Grace time.Duration
	// Joined is set for a worker started by hand (scrape worker --nats)
	// rather than by the run; its hello says so.
	Joined bool
	// Browser is the Chromium to render with (--browser); "" looks for
	// one on PATH (render.Find) when the run renders.
	Browser string
	// RenderSlots, when set, is the pages rendered at a time here, in
	// place of the run's --render-slots.
	RenderSlots int
	// RenderMemory, when set, is the memory the browser here may take
	// before it is retired, in place of the run's --render-memory.
	RenderMemory int64
	Logger       *slog.Logger
}

// Worker pulls and fetches tasks until its context ends, the coordinator
// says stop, or the coordinator is lost.
type Worker struct {
	cfg Config
	run queue.Run
	id  string // the queue's name for it, bound to its login
	// label is how records and logs name the worker: its host and process.
	label string
	log   *slog.Logger
	stop  chan struct{}
	once  sync.Once
	// leaving is set once the worker has said bye: the queue going away
	// after that is no news.
	leaving atomic.Bool
	// renderSlots is the pages rendered at a time, 0 if the worker does
	// not render; set before the first hello.
	renderSlots int
}

// New validates cfg.
func New(cfg Config) (*Worker, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("worker: no NATS server given")
	}
	if cfg.Run == "" {
		return nil, errors.New("worker: no run ID given")
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	host, _ := os.Hostname()
	if cfg.Node == "" {
		cfg.Node = host
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// A worker the run started has its ID from the run, which its login
	// is bound to; one that joined by itself makes its own.
	id := cfg.Worker
	if id == "" {
		id = queue.NewWorkerID()
	}
	if !queue.ValidWorkerID(id) {
		return nil, fmt.Errorf("worker: invalid worker ID %q", id)
	}
	return &Worker{
		cfg:   cfg,
		run:   queue.Run{ID: cfg.Run},
		id:    id,
		label: host + ":" + strconv.Itoa(os.Getpid()),
		log:   cfg.Logger.With("component", "worker", "node", cfg.Node),
		stop:  make(chan struct{}),
	}, nil
}

// Run blocks until the worker is told to stop or loses its coordinator. A
// stop by the coordinator or by ctx is not an error.
func (w *Worker) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	if gone := w.cfg.Lifeline; gone != nil {
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			select {
			case <-gone:
				cancel(errLifeline)
			case <-ctx.Done():
			}
		}()
		defer func() {
			cancel(nil)
			<-watched
		}()
	}

	nc, err := w.connect(ctx, cancel)
	if err != nil {
		return err
	}
	defer nc.Close()

	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("worker: jetstream: %w", err)
	}
	var job queue.Job
	var cons jetstream.Consumer
	err = w.retry(ctx, func() error {
		// Round trips that do not depend on each other.
		g, gctx := errgroup.WithContext(ctx)
		if w.cfg.Job != nil {
			job = *w.cfg.Job
		} else {
			g.Go(func() (err error) {
				job, err = queue.LoadJob(gctx, js, w.run)
				return err
			})
		}
		g.Go(func() (err error) {
			if cons, err = js.Consumer(gctx, w.run.TaskStream(), queue.WorkerConsumer); err != nil {
				return fmt.Errorf("worker: open task consumer: %w", err)
			}
			return nil
		})
		return g.Wait()
	})
	if err != nil {
		return err
	}
	ctl, err := nc.Subscribe(w.run.ControlSubject(), func(m *nats.Msg) {
		if string(m.Data) == queue.ControlStop {
			cancel(errStopped)
		}
	})
	if err != nil {
		return fmt.Errorf("worker: subscribe control: %w", err)
	}
	defer ctl.Unsubscribe()

	if w.cfg.Slots <= 0 {
		// A worker that joined by itself without --slots: the run's pages
		// per slot, one slot per CPU, as a run without a machinefile has.
		w.cfg.Slots = runtime.NumCPU() * max(job.PerSlot, 1)
	}
	fetch := job.Fetch
	if len(w.cfg.Proxies) > 0 {
		fetch.Proxies = w.cfg.Proxies
	}
	fetcher := scrape.NewFetcher(withParallelism(fetch, w.cfg.Slots))
	defer fetcher.Close()
	rend, err := w.openRenderer(ctx, js, job, fetch)
	if err != nil {
		return err
	}
	defer rend.close()

	// The first pull goes out right behind the hello, on the same
	// connection and so after it; a connection too broken to take the
	// hello fails the pulls too.
	if err := w.announce(nc); err != nil {
		return err
	}
	w.log.Info("worker ready", "run", w.run.ID, "worker", w.label, "slots", w.cfg.Slots)
	beats := make(chan struct{})
	go func() {
		defer close(beats)
		t := time.NewTicker(queue.HelloInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// A tick and the end can be ready together; select would
				// pick either, and a hello to a lost queue waits.
				if ctx.Err() != nil {
					return
				}
				_ = w.hello(ctx, nc)
			}
		}
	}()

	p := &puller{w: w, js: js, cons: cons, job: job, slots: w.cfg.Slots, get: fetcher.FetchReleasing, held: &heldTasks{}}
	var pulls sync.WaitGroup
	if rend != nil {
		pulls.Go(func() { rend.puller(p).loop(ctx) })
	}
	p.loop(ctx)
	pulls.Wait()
	<-beats

	cause := context.Cause(ctx)
	if errors.Is(cause, errLost) {
		return cause // nobody is left to say goodbye to
	}
	// Every task is stored or handed back by now: say so, and make sure
	// the hand-backs left with it before the connection closes. The
	// coordinator may close the queue as soon as it has the bye.
	w.leaving.Store(true)
	w.bye(nc)
	w.log.Debug("worker stopped", "why", cause)
	return nil
}

var (
	errLifeline = errors.New("coordinator closed the session")
	errStopped  = errors.New("coordinator said stop")
	errLost     = errors.New("lost the coordinator")
)

// connect dials NATS. Reconnects are unlimited, but a disconnection that lasts
// longer than the grace period cancels the run: a worker must never outlive
// its coordinator by more than that.
func (w *Worker) connect(ctx context.Context, cancel context.CancelCauseFunc) (*nats.Conn, error) {
	var mu sync.Mutex
	var timer *time.Timer
	auth, err := w.cfg.Auth.Options()
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	opts := append(auth,
		nats.Name(queue.ClientName(w.id, w.cfg.Node)),
		nats.CustomInboxPrefix(queue.InboxPrefix(w.id)),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.PingInterval(5*time.Second),
		nats.MaxPingsOutstanding(3),
		nats.Timeout(10*time.Second),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() || w.leaving.Load() {
				return // the end of the run
			}
			// The queue may be one member of a NATS cluster (--nats) rather
			// than the coordinator, and another member may take over.
			w.log.Warn("lost connection to the queue; reconnecting", "err", err, "grace", w.cfg.Grace)
			mu.Lock()
			defer mu.Unlock()
			if timer == nil {
				timer = time.AfterFunc(w.cfg.Grace, func() {
					cancel(fmt.Errorf("%w: disconnected for %s", errLost, w.cfg.Grace))
				})
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			w.log.Info("reconnected to the queue", "nats", nc.ConnectedUrlRedacted())
			mu.Lock()
			defer mu.Unlock()
			if timer != nil {
				timer.Stop()
				timer = nil
			}
		}),
	)
	url := strings.Join(w.cfg.Servers, ",")
	deadline := time.Now().Add(w.cfg.Grace)
	for {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			return nc, nil
		}
		// Authorization failures will not heal; a coordinator that is still
		// starting or briefly unreachable may.
		if errors.Is(err, nats.ErrAuthorization) {
			return nil, fmt.Errorf("worker: %w", refused(url, err))
		}
		if untrusted(err) {
			return nil, fmt.Errorf("worker: %s: %w (%w)", url, ErrUntrusted, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("worker: connect to %s: %w", url, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("worker: connect to %s: %w", url, context.Cause(ctx))
		case <-time.After(time.Second):
		}
	}
}

// helloTimeout bounds the wait for the server to take one hello.
const helloTimeout = 10 * time.Second

// hello announces the worker, and says it is still alive. It returns once
// the server has the hello, or when ctx ends: a worker that has given up its
// queue must not wait on it.
func (w *Worker) hello(ctx context.Context, nc *nats.Conn) error {
	if err := w.announce(nc); err != nil {
		return err
	}
	fctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		return fmt.Errorf("worker: announce: %w", err)
	}
	return nil
}

// announce sends a hello without waiting for the server to have it.
func (w *Worker) announce(nc *nats.Conn) error {
	data, _ := json.Marshal(queue.Hello{
		Node: w.cfg.Node, Worker: w.label, Slots: w.cfg.Slots,
		OS: runtime.GOOS, Arch: runtime.GOARCH, Version: scrape.Version,
		Joined: w.cfg.Joined,

		RenderSlots: w.renderSlots,
	})
	if err := nc.Publish(w.run.HelloSubject(w.id), data); err != nil {
		return fmt.Errorf("worker: announce: %w", err)
	}
	return nil
}

// bye tells the coordinator this worker is gone, so it stops counting it.
func (w *Worker) bye(nc *nats.Conn) {
	data, _ := json.Marshal(queue.Bye{Node: w.cfg.Node, Worker: w.label})
	if err := nc.Publish(w.run.ByeSubject(w.id), data); err == nil {
		_ = nc.FlushTimeout(time.Second)
	}
}

// retry runs open until it succeeds or Grace has passed. A NATS cluster that
// is electing leaders (just started, or a member just lost) times out
// JetStream API calls for a few seconds; that is no reason to give up a node.
func (w *Worker) retry(ctx context.Context, open func() error) error {
	deadline := time.Now().Add(w.cfg.Grace)
	for {
		err := open()
		if err == nil || errors.Is(err, queue.ErrProtocol) || time.Now().After(deadline) {
			return err
		}
		w.log.Warn("open the run, trying again", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

func withParallelism(c scrape.Config, slots int) scrape.Config {
	c.Parallelism = slots
	return c
}
