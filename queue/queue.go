package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// resultAckWait is how long the coordinator may hold a result between
// reading it and acknowledging it once it is written.
const resultAckWait = 30 * time.Second

// dedupeWindow is how long a stream remembers message IDs to drop a second
// copy of a message: one published again because the acknowledgement of the
// first was lost, which happens within a publish timeout, or a result of a
// redelivered task. The server keeps every ID of the window in memory, about
// 130 bytes each, so its default of two minutes would cost the coordinator
// over 100 MB at a few thousand pages a second. A duplicate that arrives
// later is still dropped by the coordinator, by task ID.
//
// Only the coordinator publishes a task again after a lost acknowledgement;
// workers hand a task back instead of publishing its result again, so result
// messages carry no ID at all (ResultBatch.Msg), and the result stream's
// window is the least there is.
const (
	dedupeWindow       = 10 * time.Second
	resultDedupeWindow = time.Second
)

// Streams is how a run's streams are stored.
type Streams struct {
	MaxMsg   int32 // largest message
	Replicas int   // copies kept by a NATS cluster; 0 means 1
	// Memory keeps the streams in memory rather than in files. It suits a
	// queue that lives and dies with the coordinator (the embedded one):
	// a worker's death loses nothing either way, the coordinator's takes
	// the queue with it whatever its storage, and a resume makes the queue
	// anew from the journal (it never reads the old streams). A shared NATS
	// keeps files, so that a restarted server still holds the run.
	Memory bool
}

// CreateRun makes a run's streams, consumers and config bucket on js and
// returns the consumer results are read from.
func CreateRun(ctx context.Context, js jetstream.JetStream, run Run, job Job, st Streams) (jetstream.Consumer, error) {
	replicas := max(st.Replicas, 1)
	storage := jetstream.FileStorage
	if st.Memory {
		storage = jetstream.MemoryStorage
	}
	stream := func(name, subject string, dedupe time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:       name,
			Subjects:   []string{subject},
			Retention:  jetstream.WorkQueuePolicy,
			Storage:    storage,
			MaxMsgSize: st.MaxMsg,
			Replicas:   replicas,
			Duplicates: dedupe,
		}
	}
	job.Version = ProtocolVersion
	config, err := json.Marshal(job)
	if err != nil {
		return nil, fmt.Errorf("encode run config: %w", err)
	}

	// The three parts do not depend on each other; made one after another,
	// their round trips were a third of a short run's start-up.
	var results jetstream.Consumer
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		s := stream(run.TaskStream(), run.TaskSubject(), dedupeWindow)
		// Render tasks share the stream on a subject of their own, which
		// a consumer of their own hands out: plain workers never see them.
		s.Subjects = append(s.Subjects, run.RenderSubject())
		if err := createStream(gctx, js, s); err != nil {
			return fmt.Errorf("create stream %s: %w", s.Name, err)
		}
		for _, c := range []struct{ name, subject string }{
			{WorkerConsumer, run.TaskSubject()},
			{RenderConsumer, run.RenderSubject()},
		} {
			_, err := js.CreateOrUpdateConsumer(gctx, s.Name, jetstream.ConsumerConfig{
				Durable:       c.name,
				FilterSubject: c.subject,
				AckPolicy:     jetstream.AckExplicitPolicy,
				AckWait:       job.AckWait,
				MaxDeliver:    -1, // workers give up on a task themselves, with a record
				MaxAckPending: -1,
				Replicas:      replicas,
				MemoryStorage: st.Memory,
			})
			if err != nil {
				return fmt.Errorf("create task consumer %s: %w", c.name, err)
			}
		}
		return nil
	})
	g.Go(func() error {
		s := stream(run.ResultStream(), run.Results(), resultDedupeWindow)
		if err := createStream(gctx, js, s); err != nil {
			return fmt.Errorf("create stream %s: %w", s.Name, err)
		}
		var err error
		results, err = js.CreateOrUpdateConsumer(gctx, s.Name, jetstream.ConsumerConfig{
			Durable:       CoordinatorConsumer,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       resultAckWait,
			MaxAckPending: -1,
			Replicas:      replicas,
			MemoryStorage: st.Memory,
		})
		if err != nil {
			return fmt.Errorf("create result consumer: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		// The bucket's settings never change within a run, and making it
		// again as it is succeeds: nothing to update.
		kv, err := js.CreateKeyValue(gctx, jetstream.KeyValueConfig{Bucket: run.ConfigBucket(), Storage: jetstream.StorageType(storage), Replicas: replicas})
		if err != nil {
			return fmt.Errorf("create config bucket %s: %w", run.ConfigBucket(), err)
		}
		if _, err := kv.Put(gctx, ConfigKey, config); err != nil {
			return fmt.Errorf("store run config: %w", err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return results, nil
}

// createStream makes a stream, or updates the one a previous attempt made.
// CreateOrUpdateStream tries the update first, which costs a fresh run a
// failed round trip per stream.
func createStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	_, err := js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		_, err = js.UpdateStream(ctx, cfg)
	}
	return err
}

// DeleteRun removes a run's streams and config bucket, for a run whose state
// is not kept. Deleting them before the server shuts down also spares the
// shutdown its pause for pull requests still waiting on a consumer (50 ms).
func DeleteRun(ctx context.Context, js jetstream.JetStream, run Run) error {
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i, name := range []string{run.TaskStream(), run.ResultStream()} {
		wg.Go(func() {
			if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				errs[i] = fmt.Errorf("delete stream %s: %w", name, err)
			}
		})
	}
	wg.Go(func() {
		if err := js.DeleteKeyValue(ctx, run.ConfigBucket()); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			errs[2] = fmt.Errorf("delete run config: %w", err)
		}
	})
	wg.Wait()
	return errors.Join(errs...)
}

// ErrProtocol is a coordinator and a worker of builds that cannot talk.
var ErrProtocol = errors.New("run the same scrape version on every node")

// LoadJob reads the run's job from its config bucket, as a worker that
// joined by itself must: it was not handed one in a bootstrap.
func LoadJob(ctx context.Context, js jetstream.JetStream, run Run) (Job, error) {
	var job Job
	kv, err := js.KeyValue(ctx, run.ConfigBucket())
	if err != nil {
		return job, fmt.Errorf("open run %s: %w", run.ID, err)
	}
	e, err := kv.Get(ctx, ConfigKey)
	if err != nil {
		return job, fmt.Errorf("read run %s config: %w", run.ID, err)
	}
	if err := json.Unmarshal(e.Value(), &job); err != nil {
		return job, fmt.Errorf("decode run config: %w", err)
	}
	if job.Version != ProtocolVersion {
		return job, fmt.Errorf("run uses protocol %d, this worker %d: %w", job.Version, ProtocolVersion, ErrProtocol)
	}
	return job, nil
}
