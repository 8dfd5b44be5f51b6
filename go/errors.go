package tunnelrpc

import (
	"fmt"
	"net/rpc"
	"strings"
)

// Code is one of the 16 error codes of wire-v1 (PROTOCOL.md section 6). The list is closed: a response carrying
// any other string is reported as Unknown.
type Code string

// The wire-v1 error codes, spelled as they travel.
const (
	Canceled           Code = "CANCELLED"
	Unknown            Code = "UNKNOWN"
	InvalidArgument    Code = "INVALID_ARGUMENT"
	DeadlineExceeded   Code = "DEADLINE_EXCEEDED"
	NotFound           Code = "NOT_FOUND"
	AlreadyExists      Code = "ALREADY_EXISTS"
	PermissionDenied   Code = "PERMISSION_DENIED"
	ResourceExhausted  Code = "RESOURCE_EXHAUSTED"
	FailedPrecondition Code = "FAILED_PRECONDITION"
	Aborted            Code = "ABORTED"
	OutOfRange         Code = "OUT_OF_RANGE"
	Unimplemented      Code = "UNIMPLEMENTED"
	Internal           Code = "INTERNAL"
	Unavailable        Code = "UNAVAILABLE"
	DataLoss           Code = "DATA_LOSS"
	Unauthenticated    Code = "UNAUTHENTICATED"
)

// Codes lists every wire-v1 error code in the order of PROTOCOL.md section 6.
var Codes = []Code{
	Canceled, Unknown, InvalidArgument, DeadlineExceeded, NotFound, AlreadyExists, PermissionDenied,
	ResourceExhausted, FailedPrecondition, Aborted, OutOfRange, Unimplemented, Internal, Unavailable, DataLoss,
	Unauthenticated,
}

// Known reports whether c is one of the 16 wire-v1 codes.
func (c Code) Known() bool {
	for _, known := range Codes {
		if c == known {
			return true
		}
	}
	return false
}

// Error is the only error the client returns, and the coded error a method returns to choose its code. Match it
// with errors.As and branch on Code; Message is for humans and may change.
type Error struct {
	// Code is one of Codes.
	Code Code
	// Message says what happened and what to do.
	Message string
	// MayHaveRun is false only when the call certainly had no effect on the server, so that a retry is safe.
	MayHaveRun bool
	// Data is the structured detail the server sent (decoded maps are map[string]interface{}), or nil.
	Data interface{}
	// shutdown marks calls failed because this client was closed, so that errors.Is(err, rpc.ErrShutdown) holds
	// as it does for a net/rpc client.
	shutdown bool
}

// Errorf returns an *Error with the code and a formatted message, for a method to return: the server sends that
// code and message. net/rpc carries only an error's text from a method to the codec, so the text
// "CODE: message" is what travels; Data set on it is not sent.
func Errorf(code Code, format string, args ...interface{}) *Error {
	if !code.Known() {
		code = Unknown
	}
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), MayHaveRun: true}
}

// Error returns "CODE: message", the form the server reads back from net/rpc (see Errorf).
func (e *Error) Error() string {
	return string(e.Code) + ": " + e.Message
}

// Is makes errors.Is(err, rpc.ErrShutdown) hold for calls refused or failed because Close was called.
func (e *Error) Is(target error) bool {
	return e.shutdown && target == rpc.ErrShutdown
}

// parseCodedText reads back the text of an *Error that net/rpc reduced to a string: "CODE: message" with CODE
// one of the 16 codes. ok is false for any other text.
func parseCodedText(text string) (code Code, message string, ok bool) {
	colon := strings.Index(text, ": ")
	if colon <= 0 || colon > len("FAILED_PRECONDITION") {
		return "", "", false
	}
	code = Code(text[:colon])
	if !code.Known() {
		return "", "", false
	}
	return code, text[colon+2:], true
}

// codeFromStatus maps a refused handshake's HTTP status onto a code (PROTOCOL.md 2.4).
func codeFromStatus(status int) Code {
	switch status {
	case 401:
		return Unauthenticated
	case 403:
		return PermissionDenied
	case 404, 405:
		return Unimplemented
	case 408:
		return DeadlineExceeded
	case 429:
		return ResourceExhausted
	case 502, 503, 504:
		return Unavailable
	}
	return Unknown
}

func notRun(code Code, format string, args ...interface{}) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), MayHaveRun: false}
}

func mayHaveRun(code Code, format string, args ...interface{}) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), MayHaveRun: true}
}
