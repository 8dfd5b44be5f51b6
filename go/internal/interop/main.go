// Command interop is the Go side of the cross-language tests in the repository's mocha suite
// (test/e2e/go-interop.test.ts): it runs one scenario against a tunnelrpc server and prints what happened as one
// JSON line per step. Scenarios that need the test to act in between print {"waiting":...} and read a line from
// stdin before they go on.
//
//	interop -addr 127.0.0.1:PORT -scenario typed|concurrent|deadline|cancel|errors|goaway
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/rpc"
	"os"
	"strconv"
	"time"

	tunnelrpc "github.com/tunnelrpc/tunnelrpc/go"
)

// AddParams is Echo.add's params.
type AddParams struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}

// Values is Probe.values' params and result: a TypeScript z.bigint(), z.date() and Uint8Array.
type Values struct {
	Big  int64     `json:"big"`
	At   time.Time `json:"at"`
	Blob []byte    `json:"blob"`
}

// MsParams is the params of Probe.hold and Echo.sleep.
type MsParams struct {
	Ms int `json:"ms"`
}

func emit(value interface{}) {
	line, _ := json.Marshal(value)
	fmt.Println(string(line))
}

func codeOf(err error) map[string]interface{} {
	var coded *tunnelrpc.Error
	if !errors.As(err, &coded) {
		return map[string]interface{}{"error": fmt.Sprint(err)}
	}
	return map[string]interface{}{"code": coded.Code, "message": coded.Message, "mayHaveRun": coded.MayHaveRun}
}

func waitForLine() {
	bufio.NewScanner(os.Stdin).Scan()
}

func main() {
	addr := flag.String("addr", "", "host:port of the server")
	scenario := flag.String("scenario", "", "what to run")
	flag.Parse()
	client, err := tunnelrpc.DialHTTP("tcp", *addr)
	if err != nil {
		emit(map[string]interface{}{"dial": codeOf(err)})
		os.Exit(1)
	}
	defer client.Close()
	switch *scenario {
	case "typed":
		var sum float64
		err := client.Call("Echo.add", AddParams{A: 1, B: 2}, &sum)
		var back Values
		sent := Values{Big: 9007199254740993, At: time.UnixMilli(1_700_000_000_123).UTC(), Blob: []byte{1, 2, 3}}
		valuesErr := client.Call("Probe.values", sent, &back)
		emit(map[string]interface{}{
			"sum": sum, "addError": fmt.Sprint(err), "valuesError": fmt.Sprint(valuesErr),
			"big": strconv.FormatInt(back.Big, 10), "at": back.At.UTC().Format(time.RFC3339Nano), "blob": back.Blob,
		})
	case "concurrent":
		done := make(chan *rpc.Call, 1000)
		sums := make([]float64, 1000)
		for i := range sums {
			client.Go("Echo.add", AddParams{A: float64(i), B: 1}, &sums[i], done)
		}
		failures := 0
		for range sums {
			if call := <-done; call.Error != nil {
				failures++
			}
		}
		correct := 0
		for i, sum := range sums {
			if sum == float64(i+1) {
				correct++
			}
		}
		emit(map[string]int{"correct": correct, "failures": failures})
	case "deadline":
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		emit(codeOf(client.CallContext(ctx, "Probe.hold", MsParams{Ms: 60_000}, nil)))
	case "cancel":
		ctx, cancel := context.WithCancel(context.Background())
		result := make(chan error, 1)
		go func() { result <- client.CallContext(ctx, "Probe.hold", MsParams{Ms: 60_000}, nil) }()
		emit(map[string]string{"waiting": "cancel"})
		waitForLine()
		cancel()
		emit(codeOf(<-result))
	case "errors":
		codes := map[string]interface{}{}
		for _, code := range tunnelrpc.Codes {
			err := client.Call("Echo.fail", map[string]string{"code": string(code), "message": "asked for " + string(code)}, nil)
			codes[string(code)] = codeOf(err)
		}
		emit(map[string]interface{}{
			"fail":      codes,
			"crash":     codeOf(client.Call("Echo.crash", nil, nil)),
			"unknown":   codeOf(client.Call("Echo.nope", nil, nil)),
			"badParams": codeOf(client.Call("Echo.add", map[string]string{"a": "x"}, nil)),
		})
	case "goaway":
		var slept map[string]interface{}
		call := client.Go("Probe.slow", MsParams{Ms: 300}, &slept, nil)
		emit(map[string]string{"waiting": "goaway"})
		done := <-call.Done
		after := client.Call("Echo.add", AddParams{A: 1, B: 2}, new(float64))
		emit(map[string]interface{}{"inflightError": fmt.Sprint(done.Error), "slept": slept["slept"], "after": codeOf(after)})
	default:
		emit(map[string]string{"error": "unknown scenario " + *scenario})
		os.Exit(2)
	}
}
