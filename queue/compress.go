package queue

import (
	"fmt"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
)

// A result message travels compressed (s2's block format, some 6× smaller
// on the benchmark site's pages: their links share the site and path). The
// queue server copies each message several times on its way, from the
// worker's TLS connection into the stream, out to the coordinator's pull, and
// every copy is memory the coordinator's collector then sweeps up; those
// per-byte costs were most of what JetStream spent per page once tasks and
// results went in batches. Decompressing is a fraction of what the copies
// cost.

// HeaderEncoding names how a result message's body is compressed; a message
// without it is not.
const HeaderEncoding = "Scrape-Encoding"

// encodingS2 is s2's block format.
const encodingS2 = "s2"

// Compress replaces m's body by its compressed form, built in buf, and
// returns buf's memory for the next call. m's old body is not touched: a
// ResultBatch keeps its buffer. A body that does not shrink stays as it is.
func Compress(m *nats.Msg, buf []byte) []byte {
	z := s2.Encode(buf[:cap(buf)], m.Data)
	if len(z) >= len(m.Data) {
		return z[:0]
	}
	m.Data = z
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	m.Header.Set(HeaderEncoding, encodingS2)
	return z[:0]
}

// ResultData returns the body of a result message as DecodeResults reads it,
// decompressed into memory of its own (what DecodeResults hands on shares
// it) if the header says it is compressed. A body that would decompress to
// more than limit bytes is refused before anything is allocated for it: the
// queue's limit on a message bounds what a worker can make the coordinator
// hold.
func ResultData(h nats.Header, data []byte, limit int) ([]byte, error) {
	switch enc := h.Get(HeaderEncoding); enc {
	case "":
		return data, nil
	case encodingS2:
		n, err := s2.DecodedLen(data)
		if err != nil {
			return nil, fmt.Errorf("decompress results: %w", err)
		}
		if n > limit {
			return nil, fmt.Errorf("decompress results: %d bytes, more than %d", n, limit)
		}
		out, err := s2.Decode(make([]byte, n), data)
		if err != nil {
			return nil, fmt.Errorf("decompress results: %w", err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("results in an unknown encoding %q", enc)
	}
}
