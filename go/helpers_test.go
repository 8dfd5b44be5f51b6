package tunnelrpc_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/rpc"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	tunnelrpc "github.com/tunnelrpc/tunnelrpc/go"
)

// Sleeper is a receiver for the tests: Sleep waits, Add adds, Fail returns a coded error.
type Sleeper struct{}

type SleepArgs struct {
	Ms int `json:"ms"`
}

type AddArgs struct {
	A int64 `json:"a"`
	B int64 `json:"b"`
}

func (*Sleeper) Sleep(args SleepArgs, reply *int) error {
	time.Sleep(time.Duration(args.Ms) * time.Millisecond)
	*reply = args.Ms
	return nil
}

func (*Sleeper) Add(args AddArgs, reply *int64) error {
	*reply = args.A + args.B
	return nil
}

// Values holds one of each type of the README's table.
type Values struct {
	Count   int64     `json:"count"`
	Ratio   float64   `json:"ratio"`
	Name    string    `json:"name"`
	At      time.Time `json:"at"`
	Blob    []byte    `json:"blob"`
	Tags    []string  `json:"tags"`
	Nothing *string   `json:"nothing,omitempty"`
}

func (*Sleeper) Values(args Values, reply *Values) error {
	*reply = args
	return nil
}

func (*Sleeper) Fail(code string, reply *tunnelrpc.Void) error {
	return tunnelrpc.Errorf(tunnelrpc.Code(code), "failed as asked")
}

// startServer serves a Sleeper over wire-v1 on 127.0.0.1:0 and returns its address and handler.
func startServer(t *testing.T, options *tunnelrpc.ServerOptions) (string, *tunnelrpc.Handler) {
	t.Helper()
	server := rpc.NewServer()
	if err := server.Register(new(Sleeper)); err != nil {
		t.Fatal(err)
	}
	handler := tunnelrpc.NewHandler(server, options)
	mux := http.NewServeMux()
	mux.Handle(tunnelrpc.DefaultRPCPath, handler)
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpServer := &http.Server{Handler: mux}
	go httpServer.Serve(listener)
	t.Cleanup(func() {
		httpServer.Close()
		handler.Shutdown(cancelledContext())
	})
	return listener.Addr().String(), handler
}

// rawTunnel is the test's side of a tunnel, speaking bytes.
type rawTunnel struct {
	t      *testing.T
	conn   net.Conn
	reader *bufio.Reader
}

// openTunnel sends the CONNECT head followed by early (already framed) bytes in one write and checks the exact reply.
func openTunnel(t *testing.T, address string, early []byte) *rawTunnel {
	t.Helper()
	conn, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	head := append([]byte("CONNECT /_rpc HTTP/1.0\r\nHost: "+address+"\r\n\r\n"), early...)
	if _, err := conn.Write(head); err != nil {
		t.Fatal(err)
	}
	tunnel := &rawTunnel{t: t, conn: conn, reader: bufio.NewReader(conn)}
	reply := make([]byte, 26)
	if _, err := io.ReadFull(tunnel.reader, reply); err != nil {
		t.Fatal(err)
	}
	if string(reply) != "HTTP/1.0 200 Connected\r\n\r\n" {
		t.Fatalf("reply %q, want exactly HTTP/1.0 200 Connected", reply)
	}
	return tunnel
}

func frame(payload []byte) []byte {
	out := make([]byte, 4, 4+len(payload))
	binary.BigEndian.PutUint32(out, uint32(len(payload)))
	return append(out, payload...)
}

func pack(t *testing.T, value interface{}) []byte {
	t.Helper()
	encoded, err := msgpack.Marshal(value)
	if err != nil {
		t.Fatal(err)
	}
	return encoded
}

func (r *rawTunnel) send(payload []byte) {
	if _, err := r.conn.Write(frame(payload)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawTunnel) sendValue(value interface{}) {
	r.send(pack(r.t, value))
}

// next reads one frame and returns its payload and decoded message.
func (r *rawTunnel) next() ([]byte, []interface{}) {
	r.t.Helper()
	var header [4]byte
	if _, err := io.ReadFull(r.reader, header[:]); err != nil {
		r.t.Fatalf("reading a frame: %v", err)
	}
	payload := make([]byte, binary.BigEndian.Uint32(header[:]))
	if _, err := io.ReadFull(r.reader, payload); err != nil {
		r.t.Fatal(err)
	}
	var message []interface{}
	if err := msgpack.Unmarshal(payload, &message); err != nil {
		r.t.Fatalf("decoding %x: %v", payload, err)
	}
	return payload, message
}

// expectGoawayAndClose reads a goaway with code and then the end of the connection.
func (r *rawTunnel) expectGoawayAndClose(code string) []interface{} {
	r.t.Helper()
	_, message := r.next()
	if toInt(message[0]) != 8 || message[2] != code {
		r.t.Fatalf("got %v, want goaway %s", message, code)
	}
	if _, err := r.reader.ReadByte(); err != io.EOF {
		r.t.Fatalf("after the goaway the connection stays open (%v)", err)
	}
	return message
}

// errorOf returns the error map of response message for id.
func errorOf(t *testing.T, message []interface{}, id int) map[string]interface{} {
	t.Helper()
	if toInt(message[0]) != 1 || toInt(message[1]) != id {
		t.Fatalf("got %v, want the response to %d", message, id)
	}
	errMap, ok := message[2].(map[string]interface{})
	if !ok {
		t.Fatalf("response %v carries no error", message)
	}
	return errMap
}

func toInt(value interface{}) int {
	switch v := value.(type) {
	case int8:
		return int(v)
	case int16:
		return int(v)
	case int32:
		return int(v)
	case int64:
		return int(v)
	case uint8:
		return int(v)
	case uint16:
		return int(v)
	case uint32:
		return int(v)
	case uint64:
		return int(v)
	}
	return -1
}

func hexBytes(t *testing.T, text string) []byte {
	t.Helper()
	var out []byte
	for _, field := range bytes.Fields([]byte(text)) {
		var b byte
		for _, c := range field {
			b <<= 4
			switch {
			case c >= '0' && c <= '9':
				b |= c - '0'
			case c >= 'a' && c <= 'f':
				b |= c - 'a' + 10
			}
		}
		out = append(out, b)
	}
	return out
}
