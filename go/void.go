package tunnelrpc

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Void is the argument or reply of a method that takes or returns nothing, what a TypeScript contract writes as
// z.void(): it travels as nil, and as an argument accepts nil or an empty map (PROTOCOL.md 5.0 rule 6). A
// struct{} would travel as an empty map.
type Void struct{}

// EncodeMsgpack writes nil.
func (*Void) EncodeMsgpack(encoder *msgpack.Encoder) error {
	return encoder.EncodeNil()
}

// DecodeMsgpack accepts nil or an empty map.
func (*Void) DecodeMsgpack(decoder *msgpack.Decoder) error {
	value, err := decoder.DecodeInterface()
	if err != nil {
		return err
	}
	if fields, isMap := value.(map[string]interface{}); value == nil || (isMap && len(fields) == 0) {
		return nil
	}
	return fmt.Errorf("expected nil or an empty map for a method that takes nothing")
}
