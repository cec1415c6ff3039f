package queue

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/scrape-cluster/scrape/scrape"
)

// ProtocolVersion changes whenever a coordinator and a worker of different
// builds could misread each other. Mixed clusters run mixed binaries, so a
// mismatch is refused at start-up with a clear message instead of producing
// records nobody can decode. 3: a task carries its host's spacing
// (scrape.Task.Delay), which a worker of protocol 2 would ignore, breaking
// Crawl-delay and the spacing of slowed hosts. 4: tasks and results travel
// in batches (batch.go), results in a binary form. 5: a result ends with
// its structured data (--structured), which a coordinator of protocol 4
// would read as trailing garbage. 6: a result carries its proxy and the
// cookies its page set (--proxy, --session). 7: a task carries its page's
// earlier validators and a result its validators, body sum and unchanged
// flag (--since), which a worker of protocol 6 would not send.
// 8 (--render): a task may go to the render subject, a result says whether
// it was rendered and whether it needs to be, a hello whether its worker
// can render; a worker of protocol 7 would pull none of it.
// 9: a result ends with its request and response (--warc), which a
// coordinator of protocol 8 would read as trailing garbage.
// 10: result messages travel compressed (compress.go), which a
// coordinator of protocol 9 would reject. 11: a result ends with a
// rendered page's other exchanges (--warc), which a coordinator of
// protocol 10 would read as trailing garbage.
const ProtocolVersion = 11

// Consumer names. Both are durable so that a worker or a coordinator that
// reconnects picks up where its predecessor left.
const (
	WorkerConsumer      = "workers"
	CoordinatorConsumer = "coordinator"
	// RenderConsumer hands out the tasks of RenderSubject, to the workers
	// that can render (--render).
	RenderConsumer = "renderers"
)

// Run names every stream, subject and bucket of one run. They all carry the
// run ID so that several runs can share one NATS cluster (--nats).
type Run struct {
	ID string
}

func (r Run) TaskStream() string     { return "SCRAPE_" + r.ID + "_TASKS" }
func (r Run) ResultStream() string   { return "SCRAPE_" + r.ID + "_RESULTS" }
func (r Run) TaskSubject() string    { return "scrape." + r.ID + ".task" }
func (r Run) RenderSubject() string  { return "scrape." + r.ID + ".render" }
func (r Run) ControlSubject() string { return "scrape." + r.ID + ".control" }
func (r Run) ConfigBucket() string   { return "SCRAPE_" + r.ID + "_CONFIG" }
func (r Run) LeaseSubject() string   { return "scrape." + r.ID + ".lease" }
func (r Run) OpenSubject() string    { return "scrape." + r.ID + ".open" }

// A worker's results, hellos and byes go to subjects that end in its ID
// (see WorkerPermissions); the coordinator listens to all of them.
func (r Run) ResultSubject(worker string) string { return "scrape." + r.ID + ".result." + worker }
func (r Run) HelloSubject(worker string) string  { return "scrape." + r.ID + ".hello." + worker }
func (r Run) ByeSubject(worker string) string    { return "scrape." + r.ID + ".bye." + worker }
func (r Run) Results() string                    { return r.ResultSubject("*") }
func (r Run) Hellos() string                     { return r.HelloSubject("*") }
func (r Run) Byes() string                       { return r.ByeSubject("*") }

// WorkerOf is the worker ID a result, hello or bye subject of r ends in.
func (r Run) WorkerOf(subject string) string {
	i := strings.LastIndexByte(subject, '.')
	return subject[i+1:]
}

// RunFromBucket is the run whose config bucket is named bucket, if it is one.
func RunFromBucket(bucket string) (Run, bool) {
	id, ok := strings.CutPrefix(bucket, "SCRAPE_")
	if !ok {
		return Run{}, false
	}
	id, ok = strings.CutSuffix(id, "_CONFIG")
	return Run{ID: id}, ok && id != ""
}

// ConfigKey is the key of the Job in the run's config bucket.
const ConfigKey = "job"

// Job is what every worker of a run must agree on. It lives in the run's
// key-value bucket rather than on the worker's command line, so a worker that
// joins later finds it and nothing about the run is visible in ps.
type Job struct {
	Version int           `json:"version"`
	Fetch   scrape.Config `json:"fetch"`
	// AckWait is how long a task may go without a sign of life before
	// JetStream hands it to another worker.
	AckWait time.Duration `json:"ack_wait"`
	// MaxDeliver is how many deliveries a task gets before a worker records
	// it as lost instead of fetching it again.
	MaxDeliver int `json:"max_deliver"`
	// MaxRecord is the largest encoded result the queue accepts.
	MaxRecord int `json:"max_record"`
	// Delay, when set, makes a worker ask the coordinator for a start time
	// (a lease on LeaseSubject) before each request, so that requests to
	// one host start at least Delay apart across the whole cluster. A task
	// whose Delay is set asks for one too: its host has a spacing of its
	// own (a Crawl-delay, or a pace lowered by 429s and 503s).
	Delay time.Duration `json:"delay,omitempty"`
	// TaskBatch is the most tasks one task message carries (0 means 1). A
	// worker asks for as many messages as its free places hold batches, so
	// it holds at most a batch less one beyond them per pull.
	TaskBatch int `json:"task_batch,omitempty"`
	// PerSlot is the pages fetched at a time per slot of a node: a worker
	// that joins by itself without a count of its own fetches this many per
	// CPU. The run's own workers get their count in their Bootstrap.
	PerSlot int `json:"per_slot,omitempty"`
	// RenderSlots is --render-slots: the pages a worker renders at a time
	// (tabs of its browser); 0 sizes it by the node's memory.
	RenderSlots int `json:"render_slots,omitempty"`
}

// HostKey is what politeness limits count by: the URL's host and port, as
// the coordinator and every worker must compute it alike.
func HostKey(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" || (port == "80" && u.Scheme == "http") || (port == "443" && u.Scheme == "https") {
		return host
	}
	return net.JoinHostPort(host, port)
}

// Bootstrap is everything a worker needs to join a run. The coordinator
// writes it as one JSON line on the worker's standard input (through the SSH
// session for a remote node), which is how the run's secret stays off every
// command line.
type Bootstrap struct {
	Version int      `json:"version"`
	Servers []string `json:"servers"`
	Auth
	Run  string `json:"run"`
	Node string `json:"node"`
	// Worker is the worker's ID, which its login to the queue is bound to.
	Worker string `json:"worker"`
	// Slots is how many pages the worker fetches at a time: its node's
	// machinefile slots times the run's pages per slot.
	Slots int `json:"slots"`
	// Proxies are the node's own (machinefile proxy=), which replace the
	// run's pool (Job.Fetch.Proxies) on this node.
	Proxies []string `json:"proxies,omitempty"`
	// LogLevel is the coordinator's verbosity, so that -v on scrape run
	// also makes the workers talk.
	LogLevel string `json:"log_level,omitempty"`
	// Render is the node's machinefile render=: "no" keeps the worker from
	// rendering, "yes" makes a worker without a browser fail, "" (unset)
	// renders if a browser is found.
	Render string `json:"render,omitempty"`
	// Job is the run's configuration, which a worker would otherwise read
	// from the run's config bucket: one round trip less before its first
	// page. Workers that join by themselves have no bootstrap and read it.
	Job *Job `json:"job,omitempty"`
}

// maxBootstrap bounds what ReadBootstrap accepts, so a worker started by
// hand with a file on stdin fails fast instead of reading it all.
const maxBootstrap = 64 << 10

// ErrNoBootstrap is a worker's stdin that holds no bootstrap: it was not
// started by a run.
var ErrNoBootstrap = errors.New("read bootstrap from stdin")

// ReadBootstrap reads the bootstrap line from r. It reads no further than the
// line, so the caller can go on watching r for end of file.
func ReadBootstrap(r *bufio.Reader) (Bootstrap, error) {
	var b Bootstrap
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxBootstrap {
		return b, errors.New("read bootstrap: line too long")
	}
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		return b, fmt.Errorf("%w: %w", ErrNoBootstrap, err)
	}
	if len(bytes.TrimSpace(line)) == 0 {
		return b, fmt.Errorf("%w: empty line", ErrNoBootstrap)
	}
	if err := json.Unmarshal(line, &b); err != nil {
		return b, fmt.Errorf("decode bootstrap: %w", err)
	}
	if b.Version != ProtocolVersion {
		return b, fmt.Errorf("coordinator speaks protocol %d, this worker %d: run the same scrape version on every node", b.Version, ProtocolVersion)
	}
	if len(b.Servers) == 0 || b.Run == "" {
		return b, errors.New("bootstrap names no server or run")
	}
	return b, nil
}

// Hello is what a worker announces once it is connected and ready, so the
// coordinator knows the launch worked and on what kind of machine. A worker
// repeats it every HelloInterval while it runs: for a worker that joined by
// itself, that is the coordinator's only sign that it is still there.
//
// A request on HelloSubject with an empty body is a probe: a run's
// coordinator answers it for as long as the run takes workers, and a run
// whose coordinator is gone has no responder.
type Hello struct {
	Node    string `json:"node"`
	Worker  string `json:"worker"`
	Slots   int    `json:"slots"` // pages it fetches at a time
	OS      string `json:"os"`
	Arch    string `json:"arch"`
	Version string `json:"version"`
	// Joined is set by a worker started by hand (scrape worker --nats)
	// rather than by the run: its node need not be in the machinefile.
	Joined bool `json:"joined,omitempty"`
	// RenderSlots is how many pages the worker renders at a time, 0 if
	// it cannot render (no browser, or render=no): it pulls render tasks
	// only if it can.
	RenderSlots int `json:"render_slots,omitempty"`
}

// HelloInterval is how often a worker repeats its Hello.
const HelloInterval = 5 * time.Second

// Bye is what a worker says on ByeSubject when it leaves, after it has
// stored or handed back every task it held.
type Bye struct {
	Node   string `json:"node"`
	Worker string `json:"worker"`
}

// Control messages the coordinator sends on ControlSubject.
const ControlStop = "stop"

func msgID(id uint64, attempt int) string {
	return strconv.FormatUint(id, 10) + "." + strconv.Itoa(attempt)
}
