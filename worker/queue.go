package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
const dedupeWindow = 10 * time.Second

// Streams is how a run's streams are stored.
type Streams struct {
	MaxMsg   int32 // largest message
	Replicas int   // copies kept by a NATS cluster; 0 means 1
}

// CreateRun makes a run's streams, consumers and config bucket on js and
// returns the consumer results are read from. Both work-queue streams are
// file-backed, so neither tasks nor results are lost with a process.
func CreateRun(ctx context.Context, js jetstream.JetStream, run Run, job Job, st Streams) (jetstream.Consumer, error) {
	replicas := max(st.Replicas, 1)
	for _, s := range []jetstream.StreamConfig{
		{Name: run.TaskStream(), Subjects: []string{run.TaskSubject()}},
		{Name: run.ResultStream(), Subjects: []string{run.ResultSubject()}},
	} {
		s.Retention = jetstream.WorkQueuePolicy
		s.Storage = jetstream.FileStorage
		s.MaxMsgSize = st.MaxMsg
		s.Replicas = replicas
		s.Duplicates = dedupeWindow
		if _, err := js.CreateOrUpdateStream(ctx, s); err != nil {
			return nil, fmt.Errorf("create stream %s: %w", s.Name, err)
		}
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, run.TaskStream(), jetstream.ConsumerConfig{
		Durable:       WorkerConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       job.AckWait,
		MaxDeliver:    -1, // workers give up on a task themselves, with a record
		MaxAckPending: -1,
		Replicas:      replicas,
	}); err != nil {
		return nil, fmt.Errorf("create task consumer: %w", err)
	}
	results, err := js.CreateOrUpdateConsumer(ctx, run.ResultStream(), jetstream.ConsumerConfig{
		Durable:       CoordinatorConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       resultAckWait,
		MaxAckPending: -1,
		Replicas:      replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create result consumer: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: run.ConfigBucket(), Storage: jetstream.FileStorage, Replicas: replicas})
	if err != nil {
		return nil, fmt.Errorf("create run config: %w", err)
	}
	job.Version = ProtocolVersion
	data, err := json.Marshal(job)
	if err != nil {
		return nil, fmt.Errorf("encode run config: %w", err)
	}
	if _, err := kv.Put(ctx, ConfigKey, data); err != nil {
		return nil, fmt.Errorf("store run config: %w", err)
	}
	return results, nil
}

// DeleteRun removes a run's streams and config bucket, for a run whose state
// is not kept. Deleting them before the server shuts down also spares the
// shutdown its pause for pull requests still waiting on a consumer (50 ms).
func DeleteRun(ctx context.Context, js jetstream.JetStream, run Run) error {
	var errs []error
	for _, name := range []string{run.TaskStream(), run.ResultStream()} {
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, fmt.Errorf("delete stream %s: %w", name, err))
		}
	}
	if err := js.DeleteKeyValue(ctx, run.ConfigBucket()); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		errs = append(errs, fmt.Errorf("delete run config: %w", err))
	}
	return errors.Join(errs...)
}
