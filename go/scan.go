package tunnelrpc

import (
	"encoding/binary"
	"fmt"
)

// violation is a fault that costs the connection: goaway with code, then close (PROTOCOL.md section 9). Its text
// never holds bytes from the peer.
type violation struct {
	code    Code // ProtocolError or ResourceExhausted
	message string
}

func (v *violation) Error() string { return v.message }

// goawayProtocolError is the goaway code for violations; it is not an error code of responses.
const goawayProtocolError Code = "PROTOCOL_ERROR"

func protocolError(format string, args ...interface{}) *violation {
	return &violation{code: goawayProtocolError, message: "protocol violation: " + fmt.Sprintf(format, args...)}
}

// scanLimits are the decoding limits of PROTOCOL.md 4.7.
type scanLimits struct {
	maxDepth int
	maxItems int
}

// scanResult is what the scan learned on the way, for limits checked per call.
type scanResult struct {
	items   int
	maxKeys int // keys of the largest map in the frame
}

// scanPayload checks one frame payload in a single left-to-right pass before anything decodes it: exactly one
// MessagePack value, no c1, only the three timestamp forms as extensions, scalar non-bin map keys, no header
// declaring more elements than bytes left, depth and item limits. The first fault met decides the code
// (PROTOCOL.md 4.7 "Order of checks").
func scanPayload(payload []byte, limits scanLimits) (scanResult, *violation) {
	s := scanner{b: payload, limits: limits}
	if v := s.value(1, false); v != nil {
		return s.result, v
	}
	if s.pos != len(payload) {
		return s.result, protocolError("%d bytes left over after the MessagePack value; a frame carries exactly one value", len(payload)-s.pos)
	}
	return s.result, nil
}

type scanner struct {
	b      []byte
	pos    int
	limits scanLimits
	result scanResult
}

var errTruncated = protocolError("truncated MessagePack value; a length, count or fixed-size value runs past the end of the frame")

func (s *scanner) need(n uint64) *violation {
	if uint64(len(s.b)-s.pos) < n {
		return errTruncated
	}
	return nil
}

// size reads an n-byte big-endian length or count.
func (s *scanner) size(n int) (uint64, *violation) {
	if v := s.need(uint64(n)); v != nil {
		return 0, v
	}
	var value uint64
	for _, c := range s.b[s.pos : s.pos+n] {
		value = value<<8 | uint64(c)
	}
	s.pos += n
	return value, nil
}

func (s *scanner) skip(n uint64) *violation {
	if v := s.need(n); v != nil {
		return v
	}
	s.pos += int(n)
	return nil
}

// value checks one value; level is the nesting level a container here would have (the message array is 1).
func (s *scanner) value(level int, isKey bool) *violation {
	s.result.items++
	if s.result.items > s.limits.maxItems {
		return &violation{code: ResourceExhausted, message: fmt.Sprintf("frame holds more than maxItemsPerFrame %d MessagePack values; send bulk data as bin or str, or raise maxItemsPerFrame", s.limits.maxItems)}
	}
	if v := s.need(1); v != nil {
		return v
	}
	c := s.b[s.pos]
	s.pos++
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return nil
	case c >= 0x80 && c <= 0x8f:
		return s.container(level, uint64(c&0x0f), true, isKey)
	case c >= 0x90 && c <= 0x9f:
		return s.container(level, uint64(c&0x0f), false, isKey)
	case c >= 0xa0 && c <= 0xbf:
		return s.skip(uint64(c & 0x1f))
	}
	switch c {
	case 0xc1:
		return protocolError("the never-used byte c1")
	case 0xc4, 0xc5, 0xc6:
		if isKey {
			return protocolError("a bin map key; map keys are scalars and never bin")
		}
		n, v := s.size(1 << (c - 0xc4))
		if v != nil {
			return v
		}
		return s.skip(n)
	case 0xca:
		return s.skip(4)
	case 0xcb:
		return s.skip(8)
	case 0xcc, 0xcd, 0xce, 0xcf:
		return s.skip(1 << (c - 0xcc))
	case 0xd0, 0xd1, 0xd2, 0xd3:
		return s.skip(1 << (c - 0xd0))
	case 0xd9, 0xda, 0xdb:
		n, v := s.size(1 << (c - 0xd9))
		if v != nil {
			return v
		}
		return s.skip(n)
	case 0xdc, 0xdd:
		n, v := s.size(2 << (c - 0xdc))
		if v != nil {
			return v
		}
		return s.container(level, n, false, isKey)
	case 0xde, 0xdf:
		n, v := s.size(2 << (c - 0xde))
		if v != nil {
			return v
		}
		return s.container(level, n, true, isKey)
	case 0xd6, 0xd7, 0xc7:
		if isKey {
			return protocolError("an extension as a map key; map keys are scalars")
		}
		return s.timestamp(c)
	}
	// c8, c9 (ext 16/32), d4, d5 (fixext 1/2), d8 (fixext 16)
	return protocolError("a MessagePack extension other than the timestamp; wire-v1 allows only timestamp -1 in its three forms")
}

func (s *scanner) container(level int, n uint64, isMap bool, isKey bool) *violation {
	if isKey {
		return protocolError("an array or map as a map key; map keys are scalars")
	}
	if level > s.limits.maxDepth {
		return protocolError("nesting deeper than maxDepth %d", s.limits.maxDepth)
	}
	elements := n
	if isMap {
		elements = 2 * n
		if int(n) > s.result.maxKeys {
			s.result.maxKeys = int(n)
		}
	}
	if elements > uint64(len(s.b)-s.pos) {
		return protocolError("an array or map header declares more elements than bytes are left in the frame")
	}
	for i := uint64(0); i < n; i++ {
		if isMap {
			if v := s.value(level+1, true); v != nil {
				return v
			}
		}
		if v := s.value(level+1, false); v != nil {
			return v
		}
	}
	return nil
}

func (s *scanner) timestamp(c byte) *violation {
	var length uint64
	switch c {
	case 0xd6:
		length = 4
	case 0xd7:
		length = 8
	case 0xc7:
		n, v := s.size(1)
		if v != nil {
			return v
		}
		if n != 12 {
			return protocolError("an ext 8 that is not a 12-byte timestamp")
		}
		length = 12
	}
	if v := s.need(1 + length); v != nil {
		return v
	}
	if s.b[s.pos] != 0xff {
		return protocolError("a MessagePack extension other than the timestamp; wire-v1 allows only timestamp -1 in its three forms")
	}
	data := s.b[s.pos+1 : s.pos+1+int(length)]
	s.pos += 1 + int(length)
	switch length {
	case 8:
		if binary.BigEndian.Uint64(data)>>34 >= 1e9 {
			return protocolError("a timestamp with nanoseconds of 1000000000 or more")
		}
	case 12:
		if binary.BigEndian.Uint32(data) >= 1e9 {
			return protocolError("a timestamp with nanoseconds of 1000000000 or more")
		}
		seconds := int64(binary.BigEndian.Uint64(data[4:]))
		const limit = 8_640_000_000_000 // seconds of ±8.64e15 ms, the range of a JavaScript Date
		ms := seconds*1000 + int64(binary.BigEndian.Uint32(data))/1e6
		if seconds > limit+1 || seconds < -limit-1 || ms > limit*1000 || ms < -limit*1000 {
			return protocolError("a timestamp outside the range of ±8.64e15 ms")
		}
	}
	return nil
}

// skipValue returns the offset just past the value at pos, in a payload scanPayload has accepted.
func skipValue(b []byte, pos int) int {
	c := b[pos]
	pos++
	count := 0
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return pos
	case c >= 0x80 && c <= 0x8f:
		count = 2 * int(c&0x0f)
	case c >= 0x90 && c <= 0x9f:
		count = int(c & 0x0f)
	case c >= 0xa0 && c <= 0xbf:
		return pos + int(c&0x1f)
	default:
		switch c {
		case 0xc4, 0xc5, 0xc6, 0xd9, 0xda, 0xdb:
			width := 1
			if c == 0xc5 || c == 0xda {
				width = 2
			} else if c == 0xc6 || c == 0xdb {
				width = 4
			}
			return pos + width + int(readBig(b[pos:pos+width]))
		case 0xca, 0xd6:
			return pos + 4 + boolInt(c == 0xd6)
		case 0xcb:
			return pos + 8
		case 0xd7:
			return pos + 9
		case 0xc7:
			return pos + 2 + int(b[pos])
		case 0xcc, 0xcd, 0xce, 0xcf:
			return pos + 1<<(c-0xcc)
		case 0xd0, 0xd1, 0xd2, 0xd3:
			return pos + 1<<(c-0xd0)
		case 0xdc:
			count = int(readBig(b[pos : pos+2]))
			pos += 2
		case 0xdd:
			count = int(readBig(b[pos : pos+4]))
			pos += 4
		case 0xde:
			count = 2 * int(readBig(b[pos:pos+2]))
			pos += 2
		case 0xdf:
			count = 2 * int(readBig(b[pos:pos+4]))
			pos += 4
		}
	}
	for i := 0; i < count; i++ {
		pos = skipValue(b, pos)
	}
	return pos
}

func readBig(b []byte) uint64 {
	var value uint64
	for _, c := range b {
		value = value<<8 | uint64(c)
	}
	return value
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
