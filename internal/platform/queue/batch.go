package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// BatchContentType is the body of a send to devhost's queue endpoint when DevhostSender posts it: the
// messages length-prefixed, as they are, with no JSON and no base64. A 50-item webhook POST queues about
// 170 KB of message bodies; as JSON that cost a base64 encoding in the handler and two scans, an unquote
// and a base64 decoding in devhost, which was a third of devhost's CPU on the webhook path. devhost
// still accepts SendRequest as JSON (application/json).
//
// Layout: the byte 1 (the version), the message count, then per message: ID, SessionID, ContentType,
// Subject, Body, the number of application properties and each key and value, then 0 (not scheduled) or
// 1 and ScheduledEnqueueTime in Unix nanoseconds. Counts, lengths and the time are uvarints (the time a
// varint); a string is its length and its bytes.
const BatchContentType = "application/x-connecthub-queue-batch"

const batchVersion = 1

// AppendBatch appends msgs in the batch layout to dst.
func AppendBatch(dst []byte, msgs []Message) []byte {
	dst = append(dst, batchVersion)
	dst = binary.AppendUvarint(dst, uint64(len(msgs)))
	for _, m := range msgs {
		dst = appendField(dst, m.ID)
		dst = appendField(dst, m.SessionID)
		dst = appendField(dst, m.ContentType)
		dst = appendField(dst, m.Subject)
		dst = binary.AppendUvarint(dst, uint64(len(m.Body)))
		dst = append(dst, m.Body...)
		dst = binary.AppendUvarint(dst, uint64(len(m.ApplicationProperties)))
		for k, v := range m.ApplicationProperties {
			dst = appendField(dst, k)
			dst = appendField(dst, v)
		}
		if m.ScheduledEnqueueTime == nil {
			dst = append(dst, 0)
			continue
		}
		dst = append(dst, 1)
		dst = binary.AppendVarint(dst, m.ScheduledEnqueueTime.UnixNano())
	}
	return dst
}

// batchSize is the length of msgs in the batch layout, give or take the varints' widths: AppendBatch's
// buffer is allocated once.
func batchSize(msgs []Message) int {
	n := 1 + binary.MaxVarintLen64
	for _, m := range msgs {
		n += len(m.ID) + len(m.SessionID) + len(m.ContentType) + len(m.Subject) + len(m.Body) + 7*binary.MaxVarintLen64
		for k, v := range m.ApplicationProperties {
			n += len(k) + len(v) + 2*binary.MaxVarintLen64
		}
	}
	return n
}

func appendField(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

var errBatch = errors.New("malformed queue batch")

// DecodeBatch reads a batch written by AppendBatch. The bodies are slices of b, which the caller hands
// over: it must not change b afterwards (one buffer per batch kept, rather than a copy per message).
// The short strings repeated from message to message (content type, subject, property names and
// values) are one copy per batch. A message without application properties has a nil map, as JSON
// decoding leaves it.
func DecodeBatch(b []byte) ([]Message, error) {
	d := batchReader{b: b}
	if v := d.byte(); v != batchVersion {
		return nil, fmt.Errorf("decode queue batch: version %d: %w", v, errBatch)
	}
	n := d.uvarint()
	// Each message takes at least 7 bytes: this bounds what a bad count may allocate.
	if d.err != nil || n > uint64(len(d.b))/7 {
		return nil, fmt.Errorf("decode queue batch: count: %w", errBatch)
	}
	msgs := make([]Message, n)
	for i := range msgs {
		m := &msgs[i]
		m.ID = d.str()
		m.SessionID = d.str()
		m.ContentType = d.repeated(0)
		m.Subject = d.repeated(1)
		m.Body = d.bytes()
		if np := d.uvarint(); np > 0 {
			if np > uint64(len(d.b))/2 {
				return nil, fmt.Errorf("decode queue batch: properties: %w", errBatch)
			}
			m.ApplicationProperties = make(map[string]string, np)
			for j := range np {
				slot := 2 + 2*min(j, 3)
				k := d.repeated(int(slot))
				m.ApplicationProperties[k] = d.repeated(int(slot) + 1)
			}
		}
		switch d.byte() {
		case 0:
		case 1:
			t := time.Unix(0, d.varint())
			m.ScheduledEnqueueTime = &t
		default:
			d.fail()
		}
		if d.err != nil {
			return nil, fmt.Errorf("decode queue batch: message %d: %w", i, d.err)
		}
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("decode queue batch: %d bytes after the last message: %w", len(d.b), errBatch)
	}
	return msgs, nil
}

// batchReader reads the layout's pieces; after the first failure every read returns zero values and err
// says why.
type batchReader struct {
	b    []byte
	err  error
	last [10]string // repeated's strings, by slot
}

// repeated reads a string that is likely the one read last in the same slot (a field of the previous
// message), and returns that one again when it is.
func (d *batchReader) repeated(slot int) string {
	b := d.bytes()
	if string(b) == d.last[slot] {
		return d.last[slot]
	}
	d.last[slot] = string(b)
	return d.last[slot]
}

func (d *batchReader) fail() {
	if d.err == nil {
		d.err = errBatch
	}
	d.b = nil
}

func (d *batchReader) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *batchReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *batchReader) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns the next length-prefixed piece, aliasing the input; nil when it is empty.
func (d *batchReader) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	if n == 0 {
		return nil
	}
	return p
}

func (d *batchReader) str() string { return string(d.bytes()) }
