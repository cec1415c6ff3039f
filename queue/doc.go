// Package queue is the wire protocol between a run's coordinator and its
// workers, and the one place both of them import: the names of a run's
// streams, subjects and config bucket; the headers results carry; how a task
// and a result are encoded; the bootstrap a started worker reads on its
// stdin, and the hello and bye it sends; setting a run's queue up and taking
// it down; and how a client logs in (credentials, TLS pin).
//
// ProtocolVersion guards everything here: a change that a coordinator and a
// worker of different builds could misread bumps it, and a mismatch is
// refused when a worker starts.
package queue
