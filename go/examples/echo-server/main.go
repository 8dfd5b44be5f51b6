// Command echo-server serves the unary methods of the Echo fixture (PROTOCOL.md 11) with net/rpc receivers over
// wire-v1, as the Node example server does: it prints `listening http://HOST:PORT/_rpc` once it accepts
// connections and shuts down gracefully on SIGINT or SIGTERM. The stream methods (ticks, sum, chat) are not
// served: they get UNIMPLEMENTED, as from any server that knows no streams.
//
//	go run ./examples/echo-server -port 0 [-host 127.0.0.1]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/rpc"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	tunnelrpc "github.com/tunnelrpc/tunnelrpc/go"
)

// Echo is the fixture's service. Wire names are lower case ("Echo.add"); the package maps them onto these
// exported methods.
type Echo struct {
	received int64
}

// AddParams is Echo.add's params.
type AddParams struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}

// SleepParams is Echo.sleep's params, and Slept its result.
type SleepParams struct {
	Ms int64 `json:"ms"`
}

// Slept is Echo.sleep's result.
type Slept struct {
	Slept int64 `json:"slept"`
}

// FailParams is Echo.fail's params.
type FailParams struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Echo returns its params unchanged.
func (*Echo) Echo(params interface{}, reply *interface{}) error {
	*reply = params
	return nil
}

// Add adds two numbers.
func (*Echo) Add(params AddParams, reply *float64) error {
	*reply = params.A + params.B
	return nil
}

// Sleep waits ms milliseconds. net/rpc cannot stop it early: a cancel or a deadline is answered at once by the
// package, and this method's late result is dropped.
func (*Echo) Sleep(params SleepParams, reply *Slept) error {
	if params.Ms < 0 || params.Ms > 300_000 {
		return tunnelrpc.Errorf(tunnelrpc.InvalidArgument, "ms must be an integer from 0 to 300000")
	}
	time.Sleep(time.Duration(params.Ms) * time.Millisecond)
	reply.Slept = params.Ms
	return nil
}

// Fail answers an error with exactly the code and message asked for.
func (*Echo) Fail(params FailParams, reply *tunnelrpc.Void) error {
	code := tunnelrpc.Code(params.Code)
	if !code.Known() || len(params.Message) > 1000 {
		return tunnelrpc.Errorf(tunnelrpc.InvalidArgument, "code must be one of the 16 codes and message at most 1000 characters")
	}
	return tunnelrpc.Errorf(code, "%s", params.Message)
}

// Crash returns a plain error, whose text stays in the server's log.
func (*Echo) Crash(params *tunnelrpc.Void, reply *tunnelrpc.Void) error {
	return errors.New("crash(): secret internal detail that must stay on the server")
}

// Notify counts its invocations, as a notification or a request.
func (e *Echo) Notify(params interface{}, reply *tunnelrpc.Void) error {
	atomic.AddInt64(&e.received, 1)
	return nil
}

// Count returns how many times Notify ran.
func (e *Echo) Count(params *tunnelrpc.Void, reply *int64) error {
	*reply = atomic.LoadInt64(&e.received)
	return nil
}

func main() {
	port := flag.Int("port", 0, "port to listen on (0 picks a free port)")
	host := flag.String("host", "127.0.0.1", "host to listen on")
	flag.Parse()
	server := rpc.NewServer()
	if err := server.Register(new(Echo)); err != nil {
		fmt.Fprintln(os.Stderr, "echo server:", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	handler := tunnelrpc.NewHandler(server, &tunnelrpc.ServerOptions{StrictParams: true})
	mux.Handle(tunnelrpc.DefaultRPCPath, handler)
	listener, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo server:", err)
		os.Exit(1)
	}
	httpServer := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 8 << 10}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		httpServer.Shutdown(ctx)
		handler.Shutdown(ctx)
		os.Exit(0)
	}()
	address := listener.Addr().(*net.TCPAddr)
	note := ""
	if address.IP.IsLoopback() {
		note = " (loopback only; --host 0.0.0.0 listens on every interface)"
	}
	fmt.Printf("listening http://%s/_rpc%s\n", net.JoinHostPort(address.IP.String(), strconv.Itoa(address.Port)), note)
	if err := httpServer.Serve(listener); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "echo server:", err)
		os.Exit(1)
	}
	select {}
}
