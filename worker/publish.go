package worker

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/scrape-cluster/scrape/queue"
	"github.com/scrape-cluster/scrape/scrape"
)

// A worker stores its results several to a message: the coordinator's cost
// is mostly per message, not per result. A result waits at most
// resultLinger for others to share its message, and not at all when nothing
// else is on its way (the worker holds no other task: the last pages of a
// run) or when its task says its host waits for the answer (Task.Prompt:
// the host is at its limit in flight, with tasks queued behind it).
//
// The linger is long because nothing waits on it but the coordinator's
// accounts: a slot starts its next page once its page is downloaded, and a
// host that waits for the answer says so (Prompt). At 10 ms and 64 results a
// 64-slot node on the CPU-bound benchmark sent some 24 results a message;
// at 40 ms and 256 some 44, and the coordinator spent about 6 µs less per
// page (43 against 48.5, medians of three alternated runs; README
// Performance).
const (
	resultLinger = 40 * time.Millisecond
	// maxResults and maxBatchBytes bound one message; a record larger than
	// maxBatchBytes goes alone.
	maxResults    = 256
	maxBatchBytes = 1 << 20
)

// publisher gathers results into messages and stores them, one message at a
// time: results that finish while one is being stored wait for the next.
type publisher struct {
	p  *puller
	in chan *outgoing
	// busy counts the tasks delivered to this worker whose result is not
	// handed in yet; idle hears when it drops to zero.
	busy atomic.Int64
	idle chan struct{}
	// zbuf is the memory each message is compressed in (queue.Compress).
	zbuf []byte
}

type outgoing struct {
	frame  []byte
	prompt bool
	done   chan error
}

func newPublisher(p *puller) *publisher {
	return &publisher{p: p, in: make(chan *outgoing, 4*maxResults), idle: make(chan struct{}, 1)}
}

// store hands in the result of task, and returns once the message holding it
// is stored, or storing it failed.
func (pub *publisher) store(task scrape.Task, res *scrape.Result) error {
	o := &outgoing{frame: queue.EncodeResult(task, res, pub.p.job.MaxRecord), prompt: task.Prompt, done: make(chan error, 1)}
	pub.in <- o
	pub.handedIn()
	return <-o.done
}

// handedIn counts one task less on its way to the publisher.
func (pub *publisher) handedIn() {
	if pub.busy.Add(-1) == 0 {
		select {
		case pub.idle <- struct{}{}:
		default:
		}
	}
}

// close ends run once every result handed in is stored.
func (pub *publisher) close() { close(pub.in) }

// run stores what is handed in until close.
func (pub *publisher) run(ctx context.Context) {
	var b queue.ResultBatch
	var waiting []*outgoing
	// A message must fit the server too: a --nats cluster may take less
	// than maxBatchBytes (MaxRecord is its largest, less headers).
	batchBytes := maxBatchBytes
	if m := pub.p.job.MaxRecord; m > 0 {
		batchBytes = min(batchBytes, m)
	}
	linger := time.NewTimer(time.Hour)
	defer linger.Stop()
	send := func() {
		if b.Len() == 0 {
			return
		}
		err := pub.publish(ctx, &b)
		for _, o := range waiting {
			o.done <- err
		}
		b.Reset()
		waiting = waiting[:0]
	}
	add := func(o *outgoing) {
		if b.Len() > 0 && b.Size()+len(o.frame) > batchBytes {
			send()
		}
		b.Add(o.frame)
		waiting = append(waiting, o)
	}
	for {
		o, ok := <-pub.in
		if !ok {
			return
		}
		add(o)
		prompt := o.prompt
		linger.Reset(resultLinger)
	gather:
		for b.Len() < maxResults && !prompt {
			if pub.busy.Load() == 0 {
				// Nothing more is coming soon: take what is here.
				for len(pub.in) > 0 && b.Len() < maxResults {
					o := <-pub.in
					add(o)
				}
				break
			}
			select {
			case o, ok := <-pub.in:
				if !ok {
					break gather
				}
				add(o)
				prompt = o.prompt
			case <-pub.idle:
			case <-linger.C:
				break gather
			}
		}
		send()
	}
}

// publish stores one message of results.
func (pub *publisher) publish(ctx context.Context, b *queue.ResultBatch) error {
	pctx, cancel := storeContext(ctx)
	defer cancel()
	m := b.Msg(pub.p.w.run, pub.p.w.id)
	pub.zbuf = queue.Compress(m, pub.zbuf)
	_, err := pub.p.js.PublishMsg(pctx, m)
	return err
}
