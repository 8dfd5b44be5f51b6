package tunnelrpc_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/rpc"
	"reflect"
	"testing"
	"time"

	tunnelrpc "github.com/tunnelrpc/tunnelrpc/go"
)

func dial(t *testing.T, address string) *tunnelrpc.Client {
	t.Helper()
	client, err := tunnelrpc.DialHTTP("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func codeOf(t *testing.T, err error) *tunnelrpc.Error {
	t.Helper()
	var coded *tunnelrpc.Error
	if !errors.As(err, &coded) {
		t.Fatalf("error %v (%T) is not a *tunnelrpc.Error", err, err)
	}
	return coded
}

func TestClientThousandConcurrentCallsOnOneConnection(t *testing.T) {
	address, _ := startServer(t, nil)
	client := dial(t, address)
	calls := make([]*rpc.Call, 1000)
	replies := make([]int64, len(calls))
	done := make(chan *rpc.Call, len(calls))
	for i := range calls {
		calls[i] = client.Go("Sleeper.Add", AddArgs{A: int64(i), B: 1 << 40}, &replies[i], done)
	}
	for range calls {
		if call := <-done; call.Error != nil {
			t.Fatal(call.Error)
		}
	}
	for i, reply := range replies {
		if reply != int64(i)+1<<40 {
			t.Fatalf("call %d got %d", i, reply)
		}
	}
}

func TestClientValuesRoundTrip(t *testing.T) {
	address, _ := startServer(t, nil)
	client := dial(t, address)
	sent := Values{Count: 1 << 62, Ratio: 0.25, Name: "ünïcode", At: time.UnixMilli(1_700_000_000_123).UTC(), Blob: []byte{0, 1, 255}, Tags: []string{"a"}}
	var got Values
	if err := client.Call("Sleeper.values", sent, &got); err != nil {
		t.Fatal(err)
	}
	got.At = got.At.UTC()
	if !reflect.DeepEqual(sent, got) {
		t.Fatalf("sent %+v, got %+v", sent, got)
	}
}

func TestClientCallContextCancelAndDeadline(t *testing.T) {
	address, _ := startServer(t, nil)
	client := dial(t, address)
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- client.CallContext(ctx, "Sleeper.Sleep", SleepArgs{Ms: 5000}, new(int)) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if coded := codeOf(t, <-result); coded.Code != tunnelrpc.Canceled || !coded.MayHaveRun {
		t.Fatalf("cancel gave %+v", coded)
	}
	deadline, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	if coded := codeOf(t, client.CallContext(deadline, "Sleeper.Sleep", SleepArgs{Ms: 5000}, new(int))); coded.Code != tunnelrpc.DeadlineExceeded {
		t.Fatalf("deadline gave %+v", coded)
	}
	var sum int64
	if err := client.CallContext(context.Background(), "Sleeper.Add", AddArgs{A: 2, B: 3}, &sum); err != nil || sum != 5 {
		t.Fatalf("the connection is unusable after a cancel: %v %d", err, sum)
	}
	if coded := codeOf(t, client.Call("Sleeper.Fail", "ALREADY_EXISTS", nil)); coded.Code != tunnelrpc.AlreadyExists || coded.Message != "failed as asked" {
		t.Fatalf("coded error arrived as %+v", coded)
	}
}

func TestClientGoawayLetsCallsInFlightFinish(t *testing.T) {
	address, handler := startServer(t, nil)
	client := dial(t, address)
	var slept int
	call := client.Go("Sleeper.Sleep", SleepArgs{Ms: 200}, &slept, nil)
	time.Sleep(50 * time.Millisecond) // let the server take the call
	go handler.Shutdown(context.Background())
	if done := <-call.Done; done.Error != nil || slept != 200 {
		t.Fatalf("the call in flight ended %v %d", done.Error, slept)
	}
	coded := codeOf(t, client.Call("Sleeper.Add", AddArgs{}, new(int64)))
	if coded.Code != tunnelrpc.Unavailable || coded.MayHaveRun {
		t.Fatalf("a call after the goaway gave %+v, want UNAVAILABLE not run", coded)
	}
}

func TestClientCloseIsShutdown(t *testing.T) {
	address, _ := startServer(t, nil)
	client, err := tunnelrpc.DialHTTP("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	client.Close()
	if err := client.Call("Sleeper.Add", AddArgs{}, new(int64)); !errors.Is(err, rpc.ErrShutdown) {
		t.Fatalf("a call after Close gave %v, want rpc.ErrShutdown", err)
	}
	if err := client.Close(); err != rpc.ErrShutdown {
		t.Fatalf("a second Close gave %v", err)
	}
}

// scriptedServer accepts one connection, reads the head, and runs script on it.
func scriptedServer(t *testing.T, script func(conn net.Conn, reader *bufio.Reader)) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener.Close() })
	go func() {
		conn, err := listener.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		reader := bufio.NewReader(conn)
		for {
			line, err := reader.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		script(conn, reader)
	}()
	return listener.Addr().String()
}

func readRawFrame(reader *bufio.Reader) []byte {
	var header [4]byte
	if _, err := io.ReadFull(reader, header[:]); err != nil {
		return nil
	}
	payload := make([]byte, int(header[0])<<24|int(header[1])<<16|int(header[2])<<8|int(header[3]))
	io.ReadFull(reader, payload)
	return payload
}

func TestClientKeepsBytesThatArriveWithTheHead(t *testing.T) {
	pong := make(chan []byte, 1)
	address := scriptedServer(t, func(conn net.Conn, reader *bufio.Reader) {
		// The 200 head and a ping in one write: a client that drops the bytes behind the head never answers.
		conn.Write([]byte("HTTP/1.1 200 Connection established\nX-Proxy: yes\n\n\x00\x00\x00\x03\x92\x06\x2a"))
		pong <- readRawFrame(reader)
	})
	client := dial(t, address)
	if got := <-pong; string(got) != "\x92\x07\x2a" {
		t.Fatalf("pong %x, want 92 07 2a", got)
	}
	_ = client
}

func TestClientGoawayFailsCallsAboveLastIdAsNotRun(t *testing.T) {
	address := scriptedServer(t, func(conn net.Conn, reader *bufio.Reader) {
		conn.Write([]byte("HTTP/1.0 200 Connected\r\n\r\n"))
		readRawFrame(reader) // request 1
		readRawFrame(reader) // request 2
		// goaway lastId 1 "UNAVAILABLE", then the answer to 1, then close.
		conn.Write(frame(hexBytes(t, "94 08 01 ab 55 4e 41 56 41 49 4c 41 42 4c 45 a1 78")))
		conn.Write(frame(hexBytes(t, "94 01 01 c0 07")))
		readRawFrame(reader)
	})
	client := dial(t, address)
	var first, second int64
	one := client.Go("S.a", nil, &first, nil)
	two := client.Go("S.b", nil, &second, nil)
	if coded := codeOf(t, (<-two.Done).Error); coded.Code != tunnelrpc.Unavailable || coded.MayHaveRun {
		t.Fatalf("call 2 above lastId gave %+v, want UNAVAILABLE not run", coded)
	}
	if done := <-one.Done; done.Error != nil || first != 7 {
		t.Fatalf("call 1 gave %v %d", done.Error, first)
	}
}

func TestClientRefusedHandshakeMapsTheStatus(t *testing.T) {
	address := scriptedServer(t, func(conn net.Conn, reader *bufio.Reader) {
		conn.Write([]byte("HTTP/1.0 401 Unauthorized\r\nTunnelrpc-Server: wire-v1\r\nContent-Length: 9\r\n\r\nno token!"))
	})
	_, err := tunnelrpc.DialHTTP("tcp", address)
	coded := codeOf(t, err)
	data, _ := coded.Data.(map[string]interface{})
	if coded.Code != tunnelrpc.Unauthenticated || data["status"] != 401 || data["body"] != "no token!" {
		t.Fatalf("401 gave %+v", coded)
	}
}

func TestClientAnswersAViolationWithGoaway(t *testing.T) {
	goaway := make(chan []byte, 1)
	address := scriptedServer(t, func(conn net.Conn, reader *bufio.Reader) {
		conn.Write([]byte("HTTP/1.0 200 Connected\r\n\r\n"))
		readRawFrame(reader)
		conn.Write(frame(hexBytes(t, "94 01 63 c0 c0"))) // a response for id 99, never sent
		goaway <- readRawFrame(reader)
	})
	client := dial(t, address)
	coded := codeOf(t, client.Call("S.a", nil, nil))
	if coded.Code != tunnelrpc.Unavailable || !coded.MayHaveRun {
		t.Fatalf("the pending call gave %+v", coded)
	}
	if got := <-goaway; len(got) < 4 || got[1] != 8 || string(got[4:18]) != "PROTOCOL_ERROR" {
		t.Fatalf("client sent %q, want goaway PROTOCOL_ERROR", got)
	}
}
