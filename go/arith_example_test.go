package tunnelrpc_test

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/rpc"

	tunnelrpc "github.com/tunnelrpc/tunnelrpc/go"
)

// The net/rpc documentation's own example, unchanged but for two lines: tunnelrpc.HandleHTTP() for
// rpc.HandleHTTP(), and tunnelrpc.DialHTTP for rpc.DialHTTP.

type Args struct {
	A, B int
}

type Quotient struct {
	Quo, Rem int
}

type Arith int

func (t *Arith) Multiply(args *Args, reply *int) error {
	*reply = args.A * args.B
	return nil
}

func (t *Arith) Divide(args *Args, quo *Quotient) error {
	if args.B == 0 {
		return errors.New("divide by zero")
	}
	quo.Quo = args.A / args.B
	quo.Rem = args.A % args.B
	return nil
}

func Example_arith() {
	arith := new(Arith)
	rpc.Register(arith)
	tunnelrpc.HandleHTTP() // was: rpc.HandleHTTP()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal("listen error:", err)
	}
	go http.Serve(l, nil)
	serverAddress := l.Addr().String()

	client, err := tunnelrpc.DialHTTP("tcp", serverAddress) // was: rpc.DialHTTP("tcp", serverAddress)
	if err != nil {
		log.Fatal("dialing:", err)
	}

	// Synchronous call
	args := &Args{7, 8}
	var reply int
	err = client.Call("Arith.Multiply", args, &reply)
	if err != nil {
		log.Fatal("arith error:", err)
	}
	fmt.Printf("Arith: %d*%d=%d\n", args.A, args.B, reply)

	// Asynchronous call
	quotient := new(Quotient)
	divCall := client.Go("Arith.Divide", &Args{17, 5}, quotient, nil)
	replyCall := <-divCall.Done // will be equal to divCall
	fmt.Printf("Arith: 17/5=%d remainder %d (error %v)\n", quotient.Quo, quotient.Rem, replyCall.Error)

	// A plain error from a method arrives as INTERNAL; its text stays in the server's log.
	err = client.Call("Arith.Divide", &Args{1, 0}, quotient)
	var coded *tunnelrpc.Error
	fmt.Println("divide by zero:", errors.As(err, &coded) && coded.Code == tunnelrpc.Internal)
	client.Close()
	// Output:
	// Arith: 7*8=56
	// Arith: 17/5=3 remainder 2 (error <nil>)
	// divide by zero: true
}
