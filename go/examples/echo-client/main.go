// Command echo-client calls the Echo fixture (PROTOCOL.md 11) of a tunnelrpc server, Node or Go, the way a
// net/rpc client would, plus a deadline and a coded error:
//
//	go run ./examples/echo-client -addr 127.0.0.1:8080
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	tunnelrpc "github.com/tunnelrpc/tunnelrpc/go"
)

// AddParams is Echo.add's params; the json tags name the keys of the TypeScript contract.
type AddParams struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}

// SleepParams is Echo.sleep's params, and Slept its result.
type SleepParams struct {
	Ms int `json:"ms"`
}

type Slept struct {
	Slept int `json:"slept"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "host:port of the server")
	flag.Parse()
	client, err := tunnelrpc.DialHTTP("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer client.Close()

	var sum float64
	if err := client.Call("Echo.add", AddParams{A: 1, B: 2}, &sum); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("Echo.add 1 + 2 =", sum)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var slept Slept
	err = client.CallContext(ctx, "Echo.sleep", SleepParams{Ms: 1000}, &slept)
	var coded *tunnelrpc.Error
	if errors.As(err, &coded) {
		fmt.Println("Echo.sleep 1000 ms within 50 ms:", coded.Code)
	}

	err = client.Call("Echo.fail", map[string]string{"code": "NOT_FOUND", "message": "no such key"}, nil)
	if errors.As(err, &coded) {
		fmt.Printf("Echo.fail: %s %q\n", coded.Code, coded.Message)
	}
}
