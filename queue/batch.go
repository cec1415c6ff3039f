package queue

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scrape-cluster/scrape/scrape"
)

// Tasks and results travel in batches: one message carries several tasks,
// and one several results. The embedded JetStream's cost is per message
// (storing it, delivering it, its ack, removing it from a work queue), and it
// was most of the coordinator's CPU at one message per task and per result.

// MaxTaskBatch bounds the tasks of one task message. The coordinator sets the
// run's batch (Job.TaskBatch) from its nodes' slots, below this.
const MaxTaskBatch = 32

// EncodeTasks builds the message that releases ts, in that order, to the
// task stream. Its message ID is its first task's: a task attempt is
// released once, in one batch, so the ID names the batch.
func EncodeTasks(run Run, ts []scrape.Task) (*nats.Msg, error) {
	if len(ts) == 0 {
		return nil, errors.New("encode tasks: none")
	}
	data, err := json.Marshal(ts)
	if err != nil {
		return nil, fmt.Errorf("encode task %d: %w", ts[0].ID, err)
	}
	m := nats.NewMsg(run.TaskSubject())
	m.Data = data
	// The message ID lets JetStream drop a batch published twice (a
	// coordinator retrying a publish whose ack was lost).
	m.Header.Set(nats.MsgIdHdr, msgID(ts[0].ID, ts[0].Attempt))
	return m, nil
}

// DecodeTasks reads a task message.
func DecodeTasks(data []byte) ([]scrape.Task, error) {
	var ts []scrape.Task
	if err := json.Unmarshal(data, &ts); err != nil {
		return nil, fmt.Errorf("decode tasks: %w", err)
	}
	if len(ts) == 0 {
		return nil, errors.New("decode tasks: none")
	}
	for _, t := range ts {
		if t.ID == 0 || t.URL == "" {
			return nil, errors.New("decode tasks: a task without id or url")
		}
	}
	return ts, nil
}

// HeaderResults is the number of results a result message carries.
const HeaderResults = "Scrape-Results"

// ResultBatch is the body of one result message: each result as a frame of
// its task, attempt and token, then the record, in a binary form the
// coordinator reads without reflection (decoding JSON was a tenth of its CPU
// per page). It goes to the worker's own result subject.
type ResultBatch struct {
	buf []byte
	n   int
}

// Len is the number of results in b; Size its encoded length.
func (b *ResultBatch) Len() int  { return b.n }
func (b *ResultBatch) Size() int { return len(b.buf) }

// Reset empties b, keeping its buffer.
func (b *ResultBatch) Reset() { b.buf, b.n = b.buf[:0], 0 }

// EncodeResult encodes r, the answer to task t, as one frame of a result
// batch. A record larger than maxRecord loses its links (then headings) and
// says so, rather than being refused by the server and retried forever.
func EncodeResult(t scrape.Task, r *scrape.Result, maxRecord int) []byte {
	frame := appendFrame(nil, t, r)
	if maxRecord > 0 && len(frame) > maxRecord {
		trimmed := *r
		trimmed.Links, trimmed.Headings = nil, nil
		if trimmed.Error == nil {
			trimmed.Error = scrape.Errorf(scrape.KindTooLarge, "record of %d bytes exceeds the queue's %d: links and headings dropped", len(frame), maxRecord)
		}
		frame = appendFrame(frame[:0], t, &trimmed)
	}
	return frame
}

// Add appends a frame made by EncodeResult.
func (b *ResultBatch) Add(frame []byte) {
	b.buf = append(b.buf, frame...)
	b.n++
}

// Msg is the message that carries b from the worker with ID worker. Results
// carry no message ID: a worker never publishes a result again (it hands
// its task back instead), so the stream has no copy to drop, and the
// coordinator drops the answer of a redelivered task by task and attempt.
func (b *ResultBatch) Msg(run Run, worker string) *nats.Msg {
	m := nats.NewMsg(run.ResultSubject(worker))
	m.Data = b.buf
	m.Header.Set(HeaderResults, strconv.Itoa(b.n))
	return m
}

// ResultMeta is what the coordinator accounts a result by: the frame's task,
// attempt and token, the sender from the subject, and the rest from the
// record.
type ResultMeta struct {
	Task       uint64
	Attempt    int
	Token      string
	Worker     string // the sender, from the subject the queue let it use
	Kind       string
	Node       string
	Bytes      int64
	Status     int
	RetryAfter time.Duration
	// Message is the record's error message.
	Message string
}

// DecodeResults reads a result message from subject and calls each for every
// result in order. A message that is not a whole batch is an error, and none
// of its results is handed on: a worker of this protocol never sends one.
func DecodeResults(run Run, subject string, data []byte, each func(ResultMeta, *scrape.Result)) error {
	worker := run.WorkerOf(subject)
	type answer struct {
		meta ResultMeta
		r    scrape.Result
	}
	var all []answer
	d := decoder{data: data}
	for len(d.data) > 0 {
		var a answer
		a.meta.Task = d.uvarint()
		a.meta.Attempt = d.small()
		a.meta.Token = d.str()
		d.record(&a.r)
		if d.err != nil {
			return fmt.Errorf("result %d of the message: %w", len(all)+1, d.err)
		}
		if a.meta.Task == 0 {
			return fmt.Errorf("result %d of the message: no task", len(all)+1)
		}
		m := &a.meta
		m.Worker, m.Status, m.Bytes, m.RetryAfter = worker, a.r.Status, a.r.Bytes, a.r.RetryAfter
		if a.r.Error != nil {
			m.Kind, m.Message = a.r.Error.Kind, a.r.Error.Message
		}
		all = append(all, a)
	}
	if len(all) == 0 {
		return errors.New("a result message without results")
	}
	for i := range all {
		each(all[i].meta, &all[i].r)
	}
	return nil
}

// appendFrame encodes one result. The record's fields go in a fixed order,
// all of them: the coordinator replaces URL, line, depth, parent and node
// with the task's own and the sender's, but a record read back is whole.
func appendFrame(b []byte, t scrape.Task, r *scrape.Result) []byte {
	b = binary.AppendUvarint(b, t.ID)
	b = binary.AppendUvarint(b, uint64(max(t.Attempt, 0)))
	b = appendStr(b, t.Token)
	b = appendStr(b, r.URL)
	b = binary.AppendVarint(b, int64(r.Line))
	b = binary.AppendVarint(b, int64(r.Depth))
	b = appendStr(b, r.Parent)
	b = appendStr(b, r.Node)
	b = appendStr(b, r.FinalURL)
	b = binary.AppendVarint(b, int64(r.Status))
	b = appendStr(b, r.ContentType)
	b = appendStr(b, r.Title)
	b = appendStr(b, r.Description)
	b = appendStrs(b, r.Headings)
	b = appendStrs(b, r.Links)
	b = binary.AppendUvarint(b, uint64(len(r.Fields)))
	for k, v := range r.Fields {
		b = appendStr(b, k)
		b = appendStrs(b, v)
	}
	b = appendStr(b, r.Text)
	b = binary.AppendVarint(b, r.Bytes)
	b = binary.AppendVarint(b, r.DurationMS)
	var at int64
	if !r.FetchedAt.IsZero() {
		at = r.FetchedAt.UnixNano()
	}
	b = binary.AppendVarint(b, at)
	b = appendStr(b, r.Worker)
	b = binary.AppendVarint(b, int64(r.Attempts))
	if r.Error == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = appendStr(b, r.Error.Kind)
		b = appendStr(b, r.Error.Message)
	}
	return binary.AppendVarint(b, int64(r.RetryAfter))
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrs(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

// decoder reads frames; its first error sticks, and every length is checked
// against what is left, so a hostile message costs no more memory than its
// own size.
type decoder struct {
	data []byte
	err  error
}

var errShort = errors.New("truncated or malformed")

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.data)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.data = d.data[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.data)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.data = d.data[n:]
	return v
}

// small reads an unsigned varint that must fit 31 bits.
func (d *decoder) small() int {
	v := d.uvarint()
	if v > 1<<31-1 {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *decoder) signed() int {
	v := d.varint()
	if v < -1<<31 || v > 1<<31 {
		d.fail()
	}
	return int(v)
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errShort
	}
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.data)) {
		d.fail()
		return ""
	}
	s := string(d.data[:n])
	d.data = d.data[n:]
	return s
}

func (d *decoder) strs() []string {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return nil
	}
	if n > uint64(len(d.data)) { // each string takes a byte at least
		d.fail()
		return nil
	}
	ss := make([]string, 0, n)
	for range n {
		ss = append(ss, d.str())
	}
	return ss
}

func (d *decoder) record(r *scrape.Result) {
	r.URL = d.str()
	r.Line = d.signed()
	r.Depth = d.signed()
	r.Parent = d.str()
	r.Node = d.str()
	r.FinalURL = d.str()
	r.Status = d.signed()
	r.ContentType = d.str()
	r.Title = d.str()
	r.Description = d.str()
	r.Headings = d.strs()
	r.Links = d.strs()
	if n := d.uvarint(); n > 0 && d.err == nil {
		if n > uint64(len(d.data)) {
			d.fail()
		} else {
			r.Fields = make(map[string][]string, n)
			for range n {
				k := d.str()
				r.Fields[k] = d.strs()
			}
		}
	}
	r.Text = d.str()
	r.Bytes = d.varint()
	r.DurationMS = d.varint()
	if at := d.varint(); at != 0 {
		r.FetchedAt = time.Unix(0, at).UTC()
	}
	r.Worker = d.str()
	r.Attempts = d.signed()
	if d.err != nil || len(d.data) == 0 {
		d.fail()
		return
	}
	hasErr := d.data[0]
	d.data = d.data[1:]
	switch hasErr {
	case 0:
	case 1:
		r.Error = &scrape.Error{Kind: d.str(), Message: d.str()}
	default:
		d.fail()
	}
	r.RetryAfter = time.Duration(d.varint())
}
