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
	buffer := new(bytes.Buffer)
	encoder := msgpack.NewEncoder(buffer)
	encoder.SetCustomStructTag("json")
	encoder.UseCompactInts(true)
	encoder.UseCompactFloats(true)
	return &pooledEncoder{buffer: buffer, encoder: encoder}
}}

type pooledEncoder struct {
	buffer  *bytes.Buffer
	encoder *msgpack.Encoder
}

// appendValue appends the MessagePack encoding of value to b.
func appendValue(b []byte, value interface{}) ([]byte, error) {
	if value == nil {
		return append(b, msgpackNil), nil
	}
	pooled := encoderPool.Get().(*pooledEncoder)
	defer encoderPool.Put(pooled)
	pooled.buffer.Reset()
	if err := pooled.encoder.Encode(value); err != nil {
		return b, err
	}
	return append(b, pooled.buffer.Bytes()...), nil
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
	pooled := decoderPool.Get().(*pooledDecoder)
	defer decoderPool.Put(pooled)
	pooled.reader.Reset(raw)
	pooled.decoder.Reset(pooled.reader)
	pooled.decoder.SetCustomStructTag("json")
	pooled.decoder.DisallowUnknownFields(strict)
	return pooled.decoder.Decode(target)
}
