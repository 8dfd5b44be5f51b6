package tunnelrpc_test

import (
	"fmt"
	"net"
	"net/http"
	"net/rpc"
	"testing"
	"time"

	tunnelrpc "github.com/tunnelrpc/tunnelrpc/go"
)

// BenchRecord is the bench's object payload record (bench/src/payload.ts Row).
type BenchRecord struct {
	ID        int64             `json:"id"`
	Name      string            `json:"name"`
	Active    bool              `json:"active"`
	Score     float64           `json:"score"`
	Tags      []string          `json:"tags"`
	Address   map[string]string `json:"address"`
	CreatedAt time.Time         `json:"createdAt"`
}

type BenchObject struct {
	Items []BenchRecord `json:"items"`
}

type BenchEcho struct{}

func (*BenchEcho) Object(args BenchObject, reply *BenchObject) error {
	*reply = args
	return nil
}

func (*BenchEcho) Bytes(args []byte, reply *[]byte) error {
	*reply = args
	return nil
}

func benchObject() BenchObject {
	items := make([]BenchRecord, 20)
	for i := range items {
		items[i] = BenchRecord{ID: int64(100000 + i), Name: fmt.Sprintf("user-%d", i), Active: i%3 != 0, Score: 0.5 + float64(i)*1.25,
			Tags: []string{"alpha", "beta"}[:1+i%2], Address: map[string]string{"city": "Springfield", "zip": "10000"}, CreatedAt: time.UnixMilli(1_767_323_045_678)}
	}
	return BenchObject{Items: items}
}

// BenchmarkCall measures calls over one connection on loopback, 16 outstanding, wire-v1 against net/rpc's gob.
func BenchmarkCall(b *testing.B) {
	for _, payload := range []string{"bytes", "bytes64k", "object"} {
		for _, wire := range []string{"wire-v1", "gob"} {
			b.Run(payload+"/"+wire, func(b *testing.B) {
				server := rpc.NewServer()
				server.Register(new(BenchEcho))
				mux := http.NewServeMux()
				if wire == "gob" {
					mux.Handle(rpc.DefaultRPCPath, server)
				} else {
					mux.Handle(tunnelrpc.DefaultRPCPath, tunnelrpc.NewHandler(server, nil))
				}
				listener, _ := net.Listen("tcp", "127.0.0.1:0")
				httpServer := &http.Server{Handler: mux}
				go httpServer.Serve(listener)
				defer httpServer.Close()
				var call func(method string, args, reply interface{}) error
				if wire == "gob" {
					client, err := rpc.DialHTTP("tcp", listener.Addr().String())
					if err != nil {
						b.Fatal(err)
					}
					defer client.Close()
					call = client.Call
				} else {
					client, err := tunnelrpc.DialHTTP("tcp", listener.Addr().String())
					if err != nil {
						b.Fatal(err)
					}
					defer client.Close()
					call = client.Call
				}
				object := benchObject()
				bytes := make([]byte, 32)
				if payload == "bytes64k" {
					bytes = make([]byte, 65536)
				}
				b.SetParallelism(8)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						var err error
						if payload != "object" {
							var reply []byte
							err = call("BenchEcho.Bytes", bytes, &reply)
						} else {
							var reply BenchObject
							err = call("BenchEcho.Object", object, &reply)
						}
						if err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	}
}
