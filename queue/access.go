package queue

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// Every worker has an ID of its own within a run, made of random bytes: the
// run hands one to each worker it starts, and a worker that joins by itself
// makes its own. The ID is part of the subjects the worker may use (its
// results, hellos, byes, and the inbox its replies come to), and the queue's
// permissions bind those subjects to the worker's login, so the subject a
// result arrives on says which worker sent it, and no worker can read the
// replies meant for another: it would need that worker's ID, which crosses
// the network only inside TLS.

// NewWorkerID makes a worker ID.
func NewWorkerID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return "w" + hex.EncodeToString(b)
}

// ValidWorkerID reports whether id is one NewWorkerID could have made: a
// single subject token, so it cannot widen a permission that embeds it.
func ValidWorkerID(id string) bool {
	if len(id) != 25 || id[0] != 'w' {
		return false
	}
	_, err := hex.DecodeString(id[1:])
	return err == nil && strings.ToLower(id) == id
}

// InboxPrefix is where the replies to worker id's requests come.
func InboxPrefix(id string) string { return "_INBOX." + id }

// CoordinatorInbox is where replies to the coordinator's requests come on an
// existing NATS (--nats): the results it pulls among them. Workers there
// share one user whose rights cannot name a worker ID, so they may subscribe
// to all of _INBOX.>; the coordinator's replies stay out of it.
const CoordinatorInbox = "_SCRAPE_COORDINATOR"

// ClientName is the name a worker gives its NATS connection: the queue reads
// the worker's ID from it when it logs in.
func ClientName(id, node string) string { return "scrape-worker " + id + " " + node }

// WorkerIDFromName is the worker ID in a ClientName, if it holds a valid one.
func WorkerIDFromName(name string) (string, bool) {
	f := strings.Fields(name)
	if len(f) < 2 || f[0] != "scrape-worker" || !ValidWorkerID(f[1]) {
		return "", false
	}
	return f[1], true
}

// Permissions are the subjects a client may publish to and subscribe to.
type Permissions struct {
	Publish   []string
	Subscribe []string
}

// WorkerPermissions is all a worker of run needs, and no more: pull the
// run's tasks (plain and render), acknowledge, hand back or extend its own deliveries, publish
// its results, hellos and byes, ask for start leases and which tasks of a
// redelivered batch are still open, read the run's job and
// hear its stop; replies come only to its own inbox. It cannot publish a
// task, read results, change or delete a stream or consumer, or touch
// another run.
//
// Acknowledgements go to subjects named after the delivery, which JetStream
// checks: a worker can only acknowledge a message it was delivered.
func WorkerPermissions(run Run, id string) Permissions {
	config := "KV_" + run.ConfigBucket()
	return Permissions{
		Publish: []string{
			"$JS.API.CONSUMER.MSG.NEXT." + run.TaskStream() + "." + WorkerConsumer,
			"$JS.API.CONSUMER.INFO." + run.TaskStream() + "." + WorkerConsumer,
			"$JS.ACK." + run.TaskStream() + "." + WorkerConsumer + ".>",
			"$JS.API.CONSUMER.MSG.NEXT." + run.TaskStream() + "." + RenderConsumer,
			"$JS.API.CONSUMER.INFO." + run.TaskStream() + "." + RenderConsumer,
			"$JS.ACK." + run.TaskStream() + "." + RenderConsumer + ".>",
			"$JS.API.STREAM.INFO." + config,
			"$JS.API.STREAM.NAMES", // a joiner looks for its run
			"$JS.API.DIRECT.GET." + config + ".>",
			"$JS.API.STREAM.MSG.GET." + config,
			run.ResultSubject(id),
			run.HelloSubject(id),
			run.ByeSubject(id),
			run.LeaseSubject(),
			run.OpenSubject(),
		},
		Subscribe: []string{
			InboxPrefix(id) + ".>",
			run.ControlSubject(),
		},
	}
}
