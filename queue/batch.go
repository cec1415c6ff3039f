package queue

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

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
	subject := run.TaskSubject()
	if ts[0].Render {
		// A batch is all render tasks or none (frontier.publish).
		subject = run.RenderSubject()
	}
	m := nats.NewMsg(subject)
	m.Data = data
	// The message ID lets JetStream drop a batch published twice (a
	// coordinator retrying a publish whose ack was lost).
	m.Header.Set(nats.MsgIdHdr, msgID(ts[0].ID, ts[0].Attempt))
	return m, nil
}

// EncodeTasksAgain is EncodeTasks for deliveries offered a second time, at
// the end of a run, to take them from a slow node: a message ID of its own
// keeps JetStream from dropping it as the first offer's duplicate. The
// coordinator offers a task attempt again at most once.
func EncodeTasksAgain(run Run, ts []scrape.Task) (*nats.Msg, error) {
	m, err := EncodeTasks(run, ts)
	if err != nil {
		return nil, err
	}
	m.Header.Set(nats.MsgIdHdr, msgID(ts[0].ID, ts[0].Attempt)+againSuffix)
	return m, nil
}

// againSuffix ends the message ID of a task message offered again.
const againSuffix = ".again"

// Again reports whether the headers are those of a task message offered a
// second time (EncodeTasksAgain): its worker asks which of its tasks are
// still open before it fetches any, and leaves it to another node if it
// holds one of them already.
func Again(h nats.Header) bool {
	return strings.HasSuffix(h.Get(nats.MsgIdHdr), againSuffix)
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

// A batch delivered again (its worker died, or handed it back) may hold
// tasks whose answers the coordinator already has. Before it fetches any, the
// worker asks on Run.OpenSubject which are still open, so a page is fetched
// twice only if it was in flight. The question names each task by ID,
// attempt and token, which only a holder of the batch knows; the answer is a
// byte per task, '1' for open.

type openTask struct {
	ID      uint64 `json:"id"`
	Attempt int    `json:"attempt"`
	Token   string `json:"token"`
}

// EncodeOpenQuery asks which of ts are open.
func EncodeOpenQuery(ts []scrape.Task) []byte {
	q := make([]openTask, len(ts))
	for i, t := range ts {
		q[i] = openTask{t.ID, t.Attempt, t.Token}
	}
	data, _ := json.Marshal(q) // nothing here fails to encode
	return data
}

// AnswerOpenQuery answers a query with open, which says whether the task of
// that ID, attempt and token still waits for an answer.
func AnswerOpenQuery(query []byte, open func(id uint64, attempt int, token string) bool) ([]byte, error) {
	var q []openTask
	if err := json.Unmarshal(query, &q); err != nil {
		return nil, fmt.Errorf("decode open query: %w", err)
	}
	if len(q) > MaxTaskBatch {
		return nil, fmt.Errorf("open query of %d tasks, more than a batch", len(q))
	}
	answer := make([]byte, len(q))
	for i, t := range q {
		answer[i] = '0'
		if open(t.ID, t.Attempt, t.Token) {
			answer[i] = '1'
		}
	}
	return answer, nil
}

// OpenTasks keeps the tasks of ts that answer, the reply to their query,
// says are open. An answer that does not fit ts keeps them all.
func OpenTasks(ts []scrape.Task, answer []byte) []scrape.Task {
	if len(answer) != len(ts) {
		return ts
	}
	var open []scrape.Task
	for i, t := range ts {
		if answer[i] == '1' {
			open = append(open, t)
		}
	}
	return open
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
	if maxRecord > 0 && len(frame) > maxRecord && len(r.Resources) > 0 {
		// A rendered page's resources go first, the last asked for
		// first: the page's own exchange and record matter more.
		over := len(frame) - maxRecord
		keep := len(r.Resources)
		for keep > 0 && over > 0 {
			keep--
			ex := &r.Resources[keep]
			over -= len(ex.URL) + len(ex.Request) + len(ex.Response) + len(ex.IP) + len(ex.Body)
		}
		trimmed := *r
		trimmed.Resources = r.Resources[:keep]
		frame = appendFrame(frame[:0], t, &trimmed)
		r = &trimmed
	}
	if ex := r.Exchange; maxRecord > 0 && len(frame) > maxRecord && ex != nil && len(ex.Body) > 0 {
		// An archived body is what makes a page's frame large: it is cut
		// to fit the message, and the archive says it was (WARC-Truncated).
		cut := *ex
		cut.Body = ex.Body[:max(0, len(ex.Body)-(len(frame)-maxRecord))]
		cut.Truncated = true
		trimmed := *r
		trimmed.Exchange = &cut
		frame = appendFrame(frame[:0], t, &trimmed)
		r = &trimmed
	}
	if maxRecord > 0 && len(frame) > maxRecord {
		trimmed := *r
		trimmed.Links, trimmed.Headings, trimmed.Data = nil, nil, nil
		if trimmed.Error == nil {
			trimmed.Error = scrape.Errorf(scrape.KindTooLarge, "record of %d bytes exceeds the queue's %d: links, headings and data dropped", len(frame), maxRecord)
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
	Took       time.Duration // the page's duration_ms, as its node measured it
	Bytes      int64
	Status     int
	RetryAfter time.Duration
	// Message is the record's error message.
	Message string
	// NeedsRender is the result's NeedsRender (--render auto).
	NeedsRender string
	// Unchanged is the result's Unchanged, as the worker sent it; the
	// coordinator's --since may mark the record unchanged after.
	Unchanged bool
}

// DecodeResults reads a result message from subject and calls each for every
// result in order. A message that is not a whole batch is an error, and none
// of its results is handed on: a worker of this protocol never sends one.
//
// The strings of every result point into data, which must not change
// afterwards: copying each of them (a record's twenty links, its title...)
// was most of what decoding cost. A caller that keeps one past the message
// should clone it (strings.Clone), or it keeps the whole message. The
// result handed to each is reused for the next.
func DecodeResults(run Run, subject string, data []byte, each func(ResultMeta, *scrape.Result)) error {
	if len(data) == 0 {
		return errors.New("a result message without results")
	}
	// A first pass checks the whole message without building anything, so
	// that a bad one hands on nothing.
	check := decoder{data: unsafe.String(unsafe.SliceData(data), len(data)), skip: true}
	for n := 1; len(check.data) > 0; n++ {
		var r scrape.Result
		if task, _, _ := check.frame(&r); check.err != nil || task == 0 {
			return fmt.Errorf("result %d of the message: %w", n, cmp.Or(check.err, errors.New("no task")))
		}
	}
	worker := run.WorkerOf(subject)
	d := decoder{data: unsafe.String(unsafe.SliceData(data), len(data))}
	var r scrape.Result
	for len(d.data) > 0 {
		r = scrape.Result{}
		task, attempt, token := d.frame(&r)
		m := ResultMeta{Task: task, Attempt: attempt, Token: token, Worker: worker,
			Status: r.Status, Bytes: r.Bytes, RetryAfter: r.RetryAfter, Took: time.Duration(r.DurationMS) * time.Millisecond,
			NeedsRender: r.NeedsRender, Unchanged: r.Unchanged}
		if r.Error != nil {
			m.Kind, m.Message = r.Error.Kind, r.Error.Message
		}
		each(m, &r)
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
	b = binary.AppendVarint(b, int64(r.RetryAfter))
	b = appendStr(b, string(r.Data))
	b = appendStr(b, r.Proxy)
	b = binary.AppendUvarint(b, uint64(len(r.SetCookies)))
	for _, c := range r.SetCookies {
		b = appendStr(appendStr(b, c.URL), c.Header)
	}
	// --since (protocol 7): the page's validators, its body's sum, and
	// whether it answered 304 to the task's validators.
	b = appendStr(b, r.ETag)
	b = appendStr(b, r.LastModified)
	b = appendStr(b, r.SHA256)
	b = appendBool(b, r.Unchanged)
	// --render (protocol 8).
	b = appendBool(b, r.Rendered)
	b = appendStr(b, r.NeedsRender)
	// --warc (protocol 9).
	b = appendExchange(b, r.Exchange)
	// A rendered page's other exchanges (protocol 11).
	b = binary.AppendUvarint(b, uint64(len(r.Resources)))
	for i := range r.Resources {
		b = appendStr(b, r.Resources[i].URL)
		b = appendExchange(b, &r.Resources[i])
	}
	return b
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendExchange encodes a page's request and response (--warc): a byte
// that says whether there is one, then its parts.
func appendExchange(b []byte, ex *scrape.Exchange) []byte {
	if ex == nil {
		return append(b, 0)
	}
	flags := byte(1)
	if ex.Truncated {
		flags |= 2
	}
	b = append(b, flags)
	b = appendStr(b, ex.Request)
	b = appendStr(b, ex.Response)
	b = appendStr(b, ex.IP)
	return appendStr(b, ex.Body)
}

// exchange reads what appendExchange wrote: nil for none, or when the data
// is not an exchange (d.err says which).
func (d *decoder) exchange() *scrape.Exchange {
	if d.err != nil || len(d.data) == 0 {
		d.fail()
		return nil
	}
	flags := d.data[0]
	d.data = d.data[1:]
	if flags == 0 {
		return nil
	}
	if flags&^2 != 1 {
		d.fail()
		return nil
	}
	ex := scrape.Exchange{Truncated: flags&2 != 0, Request: d.str(), Response: d.str(), IP: d.str(), Body: d.str()}
	if d.err != nil {
		return nil
	}
	return &ex
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
	data string
	err  error
	// skip reads lists without keeping them: the check of a message.
	skip bool
}

// frame reads one result.
func (d *decoder) frame(r *scrape.Result) (task uint64, attempt int, token string) {
	task = d.uvarint()
	attempt = d.small()
	token = d.str()
	d.record(r)
	return task, attempt, token
}

var errShort = errors.New("truncated or malformed")

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := uvarint(d.data)
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
	ux, n := uvarint(d.data)
	v := int64(ux >> 1)
	if ux&1 != 0 {
		v = ^v
	}
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

// uvarint is binary.Uvarint of a string.
func uvarint(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		b := s[i]
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				return 0, -(i + 1) // overflow
			}
			return x | uint64(b)<<shift, i + 1
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, 0
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
	s := d.data[:n]
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
	if d.skip {
		for range n {
			d.str()
		}
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
			if !d.skip {
				r.Fields = make(map[string][]string, n)
			}
			for range n {
				k := d.str()
				if vs := d.strs(); !d.skip {
					r.Fields[k] = vs
				}
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
	if data := d.str(); data != "" && !d.skip {
		r.Data = json.RawMessage(data)
	}
	r.Proxy = d.str()
	if n := d.uvarint(); n > 0 && d.err == nil {
		// Each takes two bytes at least: more than that is a lie.
		if n > uint64(len(d.data))/2 {
			d.fail()
			return
		}
		if !d.skip {
			r.SetCookies = make([]scrape.SetCookie, 0, n)
		}
		for range n {
			c := scrape.SetCookie{URL: d.str(), Header: d.str()}
			if !d.skip {
				r.SetCookies = append(r.SetCookies, c)
			}
		}
	}
	// --since (protocol 7).
	r.ETag = d.str()
	r.LastModified = d.str()
	r.SHA256 = d.str()
	r.Unchanged = d.bool()
	// --render (protocol 8).
	r.Rendered = d.bool()
	r.NeedsRender = d.str()
	// --warc (protocol 9).
	if ex := d.exchange(); ex != nil && !d.skip {
		r.Exchange = ex
	}
	if n := d.uvarint(); n > 0 && d.err == nil {
		// Each takes three bytes at least: more than that is a lie.
		if n > uint64(len(d.data))/3 {
			d.fail()
			return
		}
		for range n {
			url := d.str()
			ex := d.exchange()
			if ex == nil {
				d.fail()
				return
			}
			if !d.skip {
				ex.URL = url
				r.Resources = append(r.Resources, *ex)
			}
		}
	}
}

// bool reads the byte appendBool wrote.
func (d *decoder) bool() bool {
	if d.err != nil || len(d.data) == 0 {
		d.fail()
		return false
	}
	v := d.data[0]
	d.data = d.data[1:]
	if v > 1 {
		d.fail()
	}
	return v == 1
}
