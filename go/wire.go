package tunnelrpc

import (
	"encoding/binary"
	"math"
	"sync"
)

// Message types of wire-v1 (PROTOCOL.md section 1). Each frame payload is one MessagePack array whose first
// element is one of these:
//
//	[0, id, method, params, meta?]   request        client -> server
//	[1, id, error, result]           response       server -> client
//	[2, method, params, meta?]       notification   client -> server
//	[3, id]                          cancel         client -> server
//	[6, data]                        ping           either way
//	[7, data]                        pong           either way
//	[8, lastId, code, message]       goaway         either way
//
// Types 4, 5 and 9 carry streams (PROTOCOL.md 12), which this package neither opens nor accepts.
const (
	typeRequest      = 0
	typeResponse     = 1
	typeNotification = 2
	typeCancel       = 3
	typeStream       = 4
	typeHalfClose    = 5
	typePing         = 6
	typePong         = 7
	typeGoaway       = 8
	typeCredit       = 9
)

// maxPingData is the bound on a ping's encoded data (PROTOCOL.md 5.5).
const maxPingData = 1024

// Frame layout (PROTOCOL.md section 3): a 4-byte big-endian payload length L, 1 <= L <= maxFrameSize, then L bytes.

// framePool holds buffers for encoding frames: frameWriter takes each frame it is given and puts its buffer back
// once written. Buffers that grew past 256 KiB are left to the collector.
var framePool = sync.Pool{New: func() interface{} { b := make([]byte, 0, 4096); return &b }}

func getFrameBuffer() []byte {
	return (*framePool.Get().(*[]byte))[:0]
}

func putFrameBuffer(b []byte) {
	if cap(b) <= 256<<10 {
		framePool.Put(&b)
	}
}

// beginFrame appends a placeholder for the length prefix; endFrame fills it in.
func beginFrame(b []byte) ([]byte, int) {
	return append(b, 0, 0, 0, 0), len(b)
}

func endFrame(b []byte, start int) {
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
}

func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xdc, byte(n>>8), byte(n))
	}
	return append(b, 0xdd, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xde, byte(n>>8), byte(n))
	}
	return append(b, 0xdf, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// appendUint writes n in the smallest unsigned form, as wire-v1 asks for integer fields.
func appendUint(b []byte, n uint64) []byte {
	switch {
	case n <= 0x7f:
		return append(b, byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xcc, byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xcd, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return append(b, 0xce, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	b = append(b, 0xcf)
	return binary.BigEndian.AppendUint64(b, n)
}

func appendString(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

const msgpackNil = 0xc0

// cursor reads the envelope of a payload that scanPayload accepted, so it never runs past the end of a value;
// each read still checks the type it expects and reports false on a mismatch.
type cursor struct {
	b   []byte
	pos int
}

func (c *cursor) done() bool { return c.pos >= len(c.b) }

func (c *cursor) peek() byte { return c.b[c.pos] }

// arrayLen reads an array header.
func (c *cursor) arrayLen() (int, bool) {
	if c.done() {
		return 0, false
	}
	h := c.b[c.pos]
	switch {
	case h >= 0x90 && h <= 0x9f:
		c.pos++
		return int(h & 0x0f), true
	case h == 0xdc:
		c.pos += 3
		return int(readBig(c.b[c.pos-2 : c.pos])), true
	case h == 0xdd:
		c.pos += 5
		return int(readBig(c.b[c.pos-4 : c.pos])), true
	}
	return 0, false
}

// mapLen reads a map header.
func (c *cursor) mapLen() (int, bool) {
	if c.done() {
		return 0, false
	}
	h := c.b[c.pos]
	switch {
	case h >= 0x80 && h <= 0x8f:
		c.pos++
		return int(h & 0x0f), true
	case h == 0xde:
		c.pos += 3
		return int(readBig(c.b[c.pos-2 : c.pos])), true
	case h == 0xdf:
		c.pos += 5
		return int(readBig(c.b[c.pos-4 : c.pos])), true
	}
	return 0, false
}

// integer reads any MessagePack integer form; negative reports whether the value is below zero (then value is
// meaningless to the callers, which all want non-negative numbers).
func (c *cursor) integer() (value uint64, negative bool, ok bool) {
	if c.done() {
		return 0, false, false
	}
	h := c.b[c.pos]
	switch {
	case h <= 0x7f:
		c.pos++
		return uint64(h), false, true
	case h >= 0xe0:
		c.pos++
		return 0, true, true
	case h >= 0xcc && h <= 0xcf:
		width := 1 << (h - 0xcc)
		c.pos += 1 + width
		return readBig(c.b[c.pos-width : c.pos]), false, true
	case h >= 0xd0 && h <= 0xd3:
		width := 1 << (h - 0xd0)
		c.pos += 1 + width
		raw := readBig(c.b[c.pos-width : c.pos])
		shift := uint(64 - 8*width)
		signed := int64(raw<<shift) >> shift
		if signed < 0 {
			return 0, true, true
		}
		return uint64(signed), false, true
	}
	return 0, false, false
}

// uint32Value reads an id or lastId: an integer from 0 to 4294967295.
func (c *cursor) uint32Value() (uint32, bool) {
	value, negative, ok := c.integer()
	if !ok || negative || value > math.MaxUint32 {
		return 0, false
	}
	return uint32(value), true
}

func (c *cursor) isNil() bool {
	if !c.done() && c.b[c.pos] == msgpackNil {
		c.pos++
		return true
	}
	return false
}

// str reads a str; ok is false for any other type.
func (c *cursor) str() (string, bool) {
	if c.done() {
		return "", false
	}
	h := c.b[c.pos]
	var n, width int
	switch {
	case h >= 0xa0 && h <= 0xbf:
		n = int(h & 0x1f)
	case h == 0xd9:
		width = 1
	case h == 0xda:
		width = 2
	case h == 0xdb:
		width = 4
	default:
		return "", false
	}
	if width > 0 {
		n = int(readBig(c.b[c.pos+1 : c.pos+1+width]))
	}
	start := c.pos + 1 + width
	c.pos = start + n
	return string(c.b[start:c.pos]), true
}

// raw returns the bytes of the next value, whatever it is, and moves past it.
func (c *cursor) raw() []byte {
	start := c.pos
	c.pos = skipValue(c.b, c.pos)
	return c.b[start:c.pos]
}
