// Package tunnelrpc speaks wire-v1, the tunnelrpc protocol (PROTOCOL.md), with the shape of net/rpc, so that a
// net/rpc program moves onto it by changing its dial and its HandleHTTP line, and a Go service and a TypeScript
// tunnelrpc service can call each other.
//
// A server keeps its net/rpc receivers, registered with rpc.Register, and serves them on a path of an ordinary
// http.Server:
//
//	rpc.Register(new(Arith))
//	tunnelrpc.HandleHTTP() // was rpc.HandleHTTP()
//	http.Serve(listener, nil)
//
// A client dials and calls as with net/rpc, and may add a per-call deadline and cancellation with CallContext:
//
//	client, err := tunnelrpc.DialHTTP("tcp", "127.0.0.1:1234") // was rpc.DialHTTP
//	err = client.Call("Arith.Multiply", &Args{7, 8}, &reply)
//	ctx, cancel := context.WithTimeout(ctx, time.Second)
//	err = client.CallContext(ctx, "Arith.Multiply", &Args{7, 8}, &reply)
//
// Every failed call returns an *Error with one of the 16 wire-v1 codes; use errors.As to read it. Values travel as
// MessagePack: structs as maps named by their json tags, time.Time as the timestamp extension, int64 as what a
// TypeScript contract reads as bigint, []byte as bin. Streams (PROTOCOL.md 12) are not supported: a server answers
// a stream opening UNIMPLEMENTED, as any peer that knows no streams does.
package tunnelrpc
