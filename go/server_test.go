package tunnelrpc_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	tunnelrpc "github.com/tunnelrpc/tunnelrpc/go"
)

func TestServerAnswersFramesSentWithTheHead(t *testing.T) {
	address, _ := startServer(t, nil)
	// [0, 1, "Sleeper.add", {a: 1, b: 2}] in the same write as the CONNECT head.
	tunnel := openTunnel(t, address, frame(pack(t, []interface{}{0, 1, "Sleeper.add", map[string]int{"a": 1, "b": 2}})))
	payload, _ := tunnel.next()
	if !bytes.Equal(payload, hexBytes(t, "94 01 01 c0 03")) {
		t.Fatalf("response %x, want [1, 1, nil, 3]", payload)
	}
	response, err := http.Get("http://" + address + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(response.Body)
	response.Body.Close()
	if string(body) != "ok" {
		t.Fatalf("the http.Server's other route answered %q", body)
	}
}

func TestServerRefusesAGetWithout405(t *testing.T) {
	address, _ := startServer(t, nil)
	response, err := http.Get("http://" + address + "/_rpc")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(response.Body)
	response.Body.Close()
	if response.StatusCode != 405 || string(body) != "405 must CONNECT\n" || response.Header.Get("Tunnelrpc-Server") != "wire-v1" {
		t.Fatalf("GET /_rpc got %d %q (marker %q)", response.StatusCode, body, response.Header.Get("Tunnelrpc-Server"))
	}
}

func TestServerAcceptsTheUpgradeHandshake(t *testing.T) {
	address, _ := startServer(t, nil)
	conn, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "GET /_rpc HTTP/1.1\r\nHost: " + address + "\r\nConnection: Upgrade\r\nUpgrade: tunnelrpc\r\n\r\n"
	conn.Write(append([]byte(head), frame(hexBytes(t, "92 06 2a"))...))
	want := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: tunnelrpc\r\nConnection: Upgrade\r\n\r\n\x00\x00\x00\x03\x92\x07\x2a"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != want {
		t.Fatalf("got %q (%v), want the 101 reply then the pong", got, err)
	}
}

func TestServerViolationsCostOneConnection(t *testing.T) {
	deep := []byte{0x94, 0x00, 0x01, 0xa1, 0x6d}
	for i := 0; i < 32; i++ {
		deep = append(deep, 0x91)
	}
	deep = append(deep, 0xc0)
	cases := []struct {
		name  string
		bytes []byte // raw bytes after the head, frames included
		code  string
	}{
		{"a zero-length frame", hexBytes(t, "00 00 00 00"), "PROTOCOL_ERROR"},
		{"a header one over maxFrameSize", hexBytes(t, "00 80 00 01"), "RESOURCE_EXHAUSTED"},
		{"the byte c1", frame(hexBytes(t, "92 06 c1")), "PROTOCOL_ERROR"},
		{"trailing bytes", frame(hexBytes(t, "92 06 01 02")), "PROTOCOL_ERROR"},
		{"a truncated str", frame(hexBytes(t, "92 06 a5 61 62")), "PROTOCOL_ERROR"},
		{"an array header declaring more than the bytes left", frame(hexBytes(t, "92 06 dd 00 01 00 00 c0")), "PROTOCOL_ERROR"},
		{"an ext other than the timestamp", frame(hexBytes(t, "92 06 d6 69 00 00 00 01")), "PROTOCOL_ERROR"},
		{"a timestamp with 1e9 nanoseconds", frame(hexBytes(t, "92 06 d7 ff ee 6b 28 00 00 00 00 00")), "PROTOCOL_ERROR"},
		{"a map as a map key", frame(hexBytes(t, "92 06 81 80 01")), "PROTOCOL_ERROR"},
		{"params 32 arrays deep", frame(append(deep, 0xc0)[:len(deep)]), "PROTOCOL_ERROR"},
		{"a response from the client", frame(hexBytes(t, "94 01 01 c0 c0")), "PROTOCOL_ERROR"},
		{"message type 10", frame(hexBytes(t, "91 0a")), "PROTOCOL_ERROR"},
		{"a stream message for no stream", frame(hexBytes(t, "93 04 07 01")), "PROTOCOL_ERROR"},
		{"a method that is not a str", frame(hexBytes(t, "94 00 01 01 c0")), "PROTOCOL_ERROR"},
		{"an id of 2^32", frame(hexBytes(t, "94 00 cf 00 00 00 01 00 00 00 00 a1 6d c0")), "PROTOCOL_ERROR"},
		{"meta that is a str", frame(hexBytes(t, "95 00 01 a1 6d c0 a1 78")), "PROTOCOL_ERROR"},
		{"ping data of 1025 bytes", frame(append(hexBytes(t, "92 06 c5 04 00"), make([]byte, 1022)...)), "PROTOCOL_ERROR"},
	}
	address, _ := startServer(t, &tunnelrpc.ServerOptions{MinPingInterval: time.Nanosecond})
	healthy := openTunnel(t, address, nil)
	for _, each := range cases {
		t.Run(each.name, func(t *testing.T) {
			tunnel := openTunnel(t, address, nil)
			tunnel.conn.Write(each.bytes)
			tunnel.expectGoawayAndClose(each.code)
			healthy.sendValue([]interface{}{6, 1})
			if _, message := healthy.next(); toInt(message[0]) != 7 {
				t.Fatalf("the other connection got %v, want a pong", message)
			}
		})
	}
}

func TestServerDepthAndItemLimitsAtTheBoundary(t *testing.T) {
	address, _ := startServer(t, nil)
	// [6, A]: A nested 31 deep reaches level 32 and passes; 262141 nils make 262144 items and pass.
	nested := hexBytes(t, "92 06")
	for i := 0; i < 31; i++ {
		nested = append(nested, 0x91)
	}
	nested = append(nested, 0xc0)
	tunnel := openTunnel(t, address, nil)
	for _, payload := range [][]byte{nested} {
		tunnel.send(payload)
		if _, message := tunnel.next(); toInt(message[0]) != 7 {
			t.Fatalf("got %v, want a pong", message)
		}
	}
	// A ping too large for the 1024-byte bound would be a violation, so the item limit is tested on a request.
	items := append(hexBytes(t, "94 00 01 ac 53 6c 65 65 70 65 72 2e 65 63 68 6f dd 00 03 ff fb"), bytes.Repeat([]byte{0xc0}, 262139)...)
	tunnel.send(items)
	if _, message := tunnel.next(); toInt(message[0]) != 1 {
		t.Fatalf("262144 items got %v, want a response", message)
	}
	over := append(hexBytes(t, "94 00 02 ac 53 6c 65 65 70 65 72 2e 65 63 68 6f dd 00 03 ff fc"), bytes.Repeat([]byte{0xc0}, 262140)...)
	tunnel.send(over)
	tunnel.expectGoawayAndClose("RESOURCE_EXHAUSTED")
}

func TestServerCancelAnswersOnceAndDropsTheLateResult(t *testing.T) {
	address, _ := startServer(t, nil)
	tunnel := openTunnel(t, address, nil)
	tunnel.sendValue([]interface{}{0, 4, "Sleeper.sleep", map[string]int{"ms": 200}})
	tunnel.sendValue([]interface{}{3, 4})
	_, message := tunnel.next()
	if errMap := errorOf(t, message, 4); errMap["code"] != "CANCELLED" || errMap["data"].(map[string]interface{})["mayHaveRun"] != true {
		t.Fatalf("cancel answered %v", errMap)
	}
	// The id is free again at once; the cancelled method's result comes back before this longer sleep's.
	tunnel.sendValue([]interface{}{0, 4, "Sleeper.sleep", map[string]int{"ms": 400}})
	_, message = tunnel.next()
	if toInt(message[1]) != 4 || message[2] != nil || toInt(message[3]) != 400 {
		t.Fatalf("got %v, want the second call's result 400 (the first call's late result must be dropped)", message)
	}
	tunnel.sendValue([]interface{}{3, 99}) // a cancel for no call is ignored
	tunnel.sendValue([]interface{}{6, 1})
	if _, message := tunnel.next(); toInt(message[0]) != 7 {
		t.Fatalf("got %v, want only the pong", message)
	}
}

func TestServerDeadlines(t *testing.T) {
	address, _ := startServer(t, nil)
	tunnel := openTunnel(t, address, nil)
	tunnel.sendValue([]interface{}{0, 3, "Sleeper.sleep", map[string]int{"ms": 2000}, map[string]int{"timeout": 50}})
	_, message := tunnel.next()
	if errMap := errorOf(t, message, 3); errMap["code"] != "DEADLINE_EXCEEDED" || errMap["data"].(map[string]interface{})["mayHaveRun"] != true {
		t.Fatalf("deadline answered %v", errMap)
	}
	tunnel.sendValue([]interface{}{0, 5, "Sleeper.sleep", map[string]int{"ms": 1}, map[string]int{"timeout": 0}})
	_, message = tunnel.next()
	if errMap := errorOf(t, message, 5); errMap["code"] != "DEADLINE_EXCEEDED" || errMap["data"].(map[string]interface{})["mayHaveRun"] != false {
		t.Fatalf("timeout 0 answered %v", errMap)
	}
}

func TestServerRefusesPerCallWithoutClosing(t *testing.T) {
	address, _ := startServer(t, nil)
	tunnel := openTunnel(t, address, nil)
	cases := []struct {
		message []interface{}
		code    string
		run     bool
	}{
		{[]interface{}{0, 1, "Sleeper.nope", nil}, "UNIMPLEMENTED", false},
		{[]interface{}{0, 2, "Sleeper.add", map[string]string{"a": "x"}}, "INVALID_ARGUMENT", false},
		{[]interface{}{0, 3, "Sleeper.add", nil, map[string]interface{}{"headers": map[string]string{"X-A": "1", "x-a": "2"}}}, "INVALID_ARGUMENT", false},
		{[]interface{}{0, 4, "Sleeper.fail", "NOT_FOUND"}, "NOT_FOUND", true},
	}
	for i, each := range cases {
		tunnel.sendValue(each.message)
		_, message := tunnel.next()
		errMap := errorOf(t, message, i+1)
		if errMap["code"] != each.code || errMap["data"].(map[string]interface{})["mayHaveRun"] != each.run {
			t.Fatalf("%v answered %v, want %s", each.message, errMap, each.code)
		}
	}
	tunnel.sendValue([]interface{}{2, "Sleeper.add", map[string]int{"a": 1}}) // a notification is never answered
	tunnel.sendValue([]interface{}{0, 9, "Sleeper.add", map[string]int{"a": 1, "b": 2}})
	if _, message := tunnel.next(); toInt(message[1]) != 9 || toInt(message[3]) != 3 {
		t.Fatalf("got %v, want the answer to 9 (no answer to the notification)", message)
	}
}

func TestServerRejectsADuplicateIdInFlight(t *testing.T) {
	address, _ := startServer(t, nil)
	tunnel := openTunnel(t, address, nil)
	tunnel.sendValue([]interface{}{0, 7, "Sleeper.sleep", map[string]int{"ms": 300}})
	tunnel.sendValue([]interface{}{0, 7, "Sleeper.sleep", map[string]int{"ms": 300}})
	message := tunnel.expectGoawayAndClose("PROTOCOL_ERROR")
	if toInt(message[1]) != 7 {
		t.Fatalf("goaway lastId %v, want 7", message[1])
	}
}

func TestServerPongCopiesThePingBytes(t *testing.T) {
	address, _ := startServer(t, nil)
	tunnel := openTunnel(t, address, nil)
	tunnel.send(hexBytes(t, "92 06 de 00 01 a1 61 01"))
	if payload, _ := tunnel.next(); !bytes.Equal(payload, hexBytes(t, "92 07 de 00 01 a1 61 01")) {
		t.Fatalf("pong %x", payload)
	}
}

func TestServerShutdownDrainsGracefully(t *testing.T) {
	address, handler := startServer(t, nil)
	tunnel := openTunnel(t, address, nil)
	tunnel.sendValue([]interface{}{0, 5, "Sleeper.sleep", map[string]int{"ms": 200}})
	tunnel.sendValue([]interface{}{6, 1})
	tunnel.next() // the pong: request 5 was taken
	done := make(chan error, 1)
	go func() { done <- handler.Shutdown(context.Background()) }()
	_, message := tunnel.next()
	if toInt(message[0]) != 8 || toInt(message[1]) != 5 || message[2] != "UNAVAILABLE" {
		t.Fatalf("got %v, want goaway 5 UNAVAILABLE", message)
	}
	tunnel.sendValue([]interface{}{0, 7, "Sleeper.add", map[string]int{"a": 1, "b": 2}}) // crossed the goaway: dropped
	_, message = tunnel.next()
	if toInt(message[1]) != 5 || toInt(message[3]) != 200 {
		t.Fatalf("got %v, want the answer to 5", message)
	}
	if _, err := tunnel.reader.ReadByte(); err != io.EOF {
		t.Fatalf("the drained connection stays open (%v)", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("CONNECT /_rpc HTTP/1.0\r\n\r\n"))
	reply, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(reply), "HTTP/1.0 503 ") || !strings.Contains(string(reply), "Tunnelrpc-Server: wire-v1") {
		t.Fatalf("a handshake during shutdown got %q, want 503", reply)
	}
}

func TestServerStrikesPingsTooOftenWhileIdle(t *testing.T) {
	address, _ := startServer(t, &tunnelrpc.ServerOptions{MinPingInterval: time.Hour, MaxPingStrikes: 2})
	tunnel := openTunnel(t, address, nil)
	for i := 0; i < 3; i++ { // the first ping, then two strikes
		tunnel.sendValue([]interface{}{6, i})
		if _, message := tunnel.next(); toInt(message[0]) != 7 {
			t.Fatalf("ping %d got %v, want a pong", i, message)
		}
	}
	tunnel.sendValue([]interface{}{6, 3})
	tunnel.expectGoawayAndClose("RESOURCE_EXHAUSTED")
}

func TestServerClosesAnIdleTunnelWithGoaway(t *testing.T) {
	address, _ := startServer(t, &tunnelrpc.ServerOptions{IdleTimeout: time.Second})
	tunnel := openTunnel(t, address, nil)
	message := tunnel.expectGoawayAndClose("UNAVAILABLE")
	if toInt(message[1]) != 0 {
		t.Fatalf("idle goaway %v, want lastId 0", message)
	}
}

func TestServerGivesUpOnAFrameThatNeverCompletes(t *testing.T) {
	address, _ := startServer(t, &tunnelrpc.ServerOptions{FrameTimeout: 200 * time.Millisecond})
	tunnel := openTunnel(t, address, nil)
	tunnel.conn.Write(append(hexBytes(t, "00 00 00 64"), make([]byte, 10)...)) // 100 bytes announced, 10 sent
	tunnel.expectGoawayAndClose("PROTOCOL_ERROR")
}

func TestServerRefusesTunnelsPastMaxConnections(t *testing.T) {
	address, _ := startServer(t, &tunnelrpc.ServerOptions{MaxConnections: 1})
	openTunnel(t, address, nil)
	conn, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("CONNECT /_rpc HTTP/1.0\r\n\r\n"))
	reply, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(reply), "HTTP/1.0 503 ") {
		t.Fatalf("a tunnel past MaxConnections got %q, want 503", reply)
	}
}

func TestServerStopsReadingAtMaxInFlight(t *testing.T) {
	address, _ := startServer(t, &tunnelrpc.ServerOptions{MaxInFlight: 2})
	tunnel := openTunnel(t, address, nil)
	for id := 1; id <= 3; id++ {
		tunnel.sendValue([]interface{}{0, id, "Sleeper.sleep", map[string]int{"ms": 200}})
	}
	tunnel.sendValue([]interface{}{6, 1})
	// The ping waits behind the third request, which waits for a free slot: an answer comes first.
	if _, message := tunnel.next(); toInt(message[0]) != 1 {
		t.Fatalf("first frame %v, want a response (the server must not read past MaxInFlight)", message)
	}
}
