package tunnelrpc

import (
	"bytes"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Values travel as MessagePack (PROTOCOL.md 4.8) through vmihailenco/msgpack, set up to match what a TypeScript
// contract reads: struct fields named by their `json` tags (with omitempty honoured), integers and integral
// floats in their smallest form, time.Time as the timestamp extension, []byte as bin.

var encoderPool = sync.Pool{New: func() interface{} {
	out := new(sliceWriter)
	encoder := msgpack.NewEncoder(out)
	encoder.SetCustomStructTag("json")
	encoder.UseCompactInts(true)
	encoder.UseCompactFloats(true)
	return &pooledEncoder{out: out, encoder: encoder}
}}

type pooledEncoder struct {
	out     *sliceWriter
	encoder *msgpack.Encoder
}

// sliceWriter lets the encoder append to a frame being built, so that a value is written once, in place.
type sliceWriter struct {
	b []byte
}

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *sliceWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

func (w *sliceWriter) WriteString(s string) (int, error) {
	w.b = append(w.b, s...)
	return len(s), nil
}

// appendValue appends the MessagePack encoding of value to b.
func appendValue(b []byte, value interface{}) ([]byte, error) {
	if value == nil {
		return append(b, msgpackNil), nil
	}
	pooled := encoderPool.Get().(*pooledEncoder)
	pooled.out.b = b
	err := pooled.encoder.Encode(value)
	b = pooled.out.b
	pooled.out.b = nil
	encoderPool.Put(pooled)
	return b, err
}

var decoderPool = sync.Pool{New: func() interface{} {
	reader := bytes.NewReader(nil)
	decoder := msgpack.NewDecoder(reader)
	decoder.SetCustomStructTag("json")
	return &pooledDecoder{reader: reader, decoder: decoder}
}}

type pooledDecoder struct {
	reader  *bytes.Reader
	decoder *msgpack.Decoder
}

// decodeValue decodes raw (one value, already scanned) into target, a pointer. strict refuses map keys that name
// no struct field.
func decodeValue(raw []byte, target interface{}, strict bool) error {
	if bytesTarget, ok := target.(*[]byte); ok {
		if data, isBin := binPayload(raw); isBin {
			// append copies into fresh memory without zeroing it first, which the generic path does for every
			// byte of a large payload.
			*bytesTarget = append([]byte(nil), data...)
			return nil
		}
	}
	pooled := decoderPool.Get().(*pooledDecoder)
	defer decoderPool.Put(pooled)
	pooled.reader.Reset(raw)
	pooled.decoder.Reset(pooled.reader)
	pooled.decoder.SetCustomStructTag("json")
	pooled.decoder.DisallowUnknownFields(strict)
	return pooled.decoder.Decode(target)
}

// binPayload returns the bytes of raw when it is one bin value (scanned, so its length is within raw).
func binPayload(raw []byte) ([]byte, bool) {
	if len(raw) < 2 {
		return nil, false
	}
	width := 0
	switch raw[0] {
	case 0xc4:
		width = 1
	case 0xc5:
		width = 2
	case 0xc6:
		width = 4
	default:
		return nil, false
	}
	if len(raw) < 1+width {
		return nil, false
	}
	start := 1 + width
	end := start + int(readBig(raw[1:start]))
	if end != len(raw) {
		return nil, false
	}
	return raw[start:end], true
}
