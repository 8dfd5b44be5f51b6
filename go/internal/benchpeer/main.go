// Command benchpeer is the wire-v1 Go peer of tunnelrpc's bench (bench/src/targets.ts: go-wire, go-to-node,
// node-to-go), the twin of bench/go/main.go's net/rpc + gob peer: the same receivers, payloads, histogram layout
// and stdio protocol, with tunnelrpc's Handler and Client in place of rpc.HandleHTTP and rpc.DialHTTP.
//
// Server mode serves Echo.Bytes, Echo.String and Echo.Object (typed, as the gob peer) and Echo.echo (any value,
// the Node peers' method) over wire-v1 and prints {"port":N,"pid":P}. Client mode runs the closed loop, calling
// the typed methods (-call typed, against a Go server) or Echo.echo with the same typed values (-call echo,
// against the Node server).
//
//	benchpeer -mode server [-concurrency C]
//	benchpeer -mode client -port N -concurrency C -payload NAME -seconds S -warmup W [-connections N] [-call typed|echo] [-wait-go]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/bits"
	"net"
	"net/http"
	"net/rpc"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	tunnelrpc "github.com/tunnelrpc/tunnelrpc/go"
)

// Echo is the service; each method returns its argument.
type Echo struct{}

// StringMessage is the str32, str1k and str64k payload: {a: 1, b: <string>}.
type StringMessage struct {
	A int    `json:"a"`
	B string `json:"b"`
}

// Record is one record of the object payload (bench/src/payload.ts Row).
type Record struct {
	ID        int64             `json:"id"`
	Name      string            `json:"name"`
	Active    bool              `json:"active"`
	Score     float64           `json:"score"`
	Tags      []string          `json:"tags"`
	Address   map[string]string `json:"address"`
	CreatedAt time.Time         `json:"createdAt"`
}

// ObjectMessage is the object payload: {items: [20 records]}.
type ObjectMessage struct {
	Items []Record `json:"items"`
}

// Echo returns any value, as the Node peers' Echo.echo does.
func (*Echo) Echo(args interface{}, reply *interface{}) error {
	*reply = args
	return nil
}

// Bytes echoes a byte payload.
func (*Echo) Bytes(args []byte, reply *[]byte) error {
	*reply = args
	return nil
}

// String echoes a string payload.
func (*Echo) String(args StringMessage, reply *StringMessage) error {
	*reply = args
	return nil
}

// Object echoes the object payload.
func (*Echo) Object(args ObjectMessage, reply *ObjectMessage) error {
	*reply = args
	return nil
}

func main() {
	mode := flag.String("mode", "", "server or client")
	host := flag.String("host", "127.0.0.1", "server host (client)")
	port := flag.Int("port", 0, "server port (client)")
	concurrency := flag.Int("concurrency", 1, "calls outstanding (client); the server's MaxInFlight when above 128")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile here until the end")
	call := flag.String("call", "typed", "typed (Echo.Bytes/String/Object) or echo (Echo.echo) (client)")
	payload := flag.String("payload", "small", "payload name, as in bench/src/payload.ts (client)")
	connections := flag.Int("connections", 1, "connections, each with its own C goroutines (client)")
	seconds := flag.Float64("seconds", 5, "measured window (client)")
	warmup := flag.Float64("warmup", 1, "warm-up before the window (client)")
	waitGo := flag.Bool("wait-go", false, "print ready after the warm-up and wait for go on stdin (client)")
	flag.Parse()
	switch *mode {
	case "server":
		startProfile(*cpuProfile)
		serve(*concurrency)
	case "client":
		startProfile(*cpuProfile)
		runClient(*host, *port, *concurrency, *connections, *payload, *call, *seconds, *warmup, *waitGo)
	default:
		fmt.Fprintln(os.Stderr, "benchpeer: -mode server or -mode client")
		os.Exit(2)
	}
}

// startProfile writes a CPU profile to path until the end (stopProfile), when path is set.
func startProfile(path string) {
	if path == "" {
		return
	}
	out, err := os.Create(path)
	if err != nil {
		fatal(err)
	}
	pprof.StartCPUProfile(out)
	stopProfile = pprof.StopCPUProfile
}

func emit(value interface{}) {
	line, _ := json.Marshal(value)
	os.Stdout.Write(append(line, '\n'))
}

func fatal(err error) {
	emit(map[string]string{"fatal": err.Error()})
	os.Exit(1)
}

func serve(concurrency int) {
	if err := rpc.Register(new(Echo)); err != nil {
		fatal(err)
	}
	options := &tunnelrpc.ServerOptions{}
	if concurrency > 128 {
		options.MaxInFlight = concurrency
	}
	tunnelrpc.HandleHTTPPath(rpc.DefaultServer, tunnelrpc.DefaultRPCPath, options)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	go http.Serve(listener, nil)
	emit(map[string]int{"port": listener.Addr().(*net.TCPAddr).Port, "pid": os.Getpid()})
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		switch strings.TrimSpace(lines.Text()) {
		case "stats":
			var usage syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
			var memory runtime.MemStats
			runtime.ReadMemStats(&memory)
			emit(map[string]int64{
				"cpuUserUs":     usage.Utime.Sec*1e6 + int64(usage.Utime.Usec),
				"cpuSystemUs":   usage.Stime.Sec*1e6 + int64(usage.Stime.Usec),
				"rssBytes":      int64(memory.Sys), // no portable current RSS; the orchestrator prefers /proc
				"heapUsedBytes": int64(memory.HeapAlloc),
				"connections":   -1,
			})
		case "gc":
			debug.FreeOSMemory()
			emit(map[string]bool{"gc": true})
		case "exit":
			stopProfile()
			os.Exit(0)
		default:
			emit(map[string]string{"error": "unknown command; use stats, gc or exit"})
		}
	}
	stopProfile()
	os.Exit(0)
}

// stopProfile ends the -cpuprofile profile, if one runs.
var stopProfile = func() {}

const (
	linear     = 128
	subBuckets = 64
	maxShift   = 25
	buckets    = linear + maxShift*subBuckets
	maxNs      = math.MaxUint32
)

type histogram struct {
	counts [buckets]uint64
	count  uint64
	max    uint64
}

func (h *histogram) record(ns int64) {
	value := uint64(0)
	if ns > 0 {
		value = uint64(ns)
	}
	if value > maxNs {
		value = maxNs
	}
	h.counts[bucketOf(value)]++
	h.count++
	if value > h.max {
		h.max = value
	}
}

func (h *histogram) merge(other *histogram) {
	for i := range h.counts {
		h.counts[i] += other.counts[i]
	}
	h.count += other.count
	if other.max > h.max {
		h.max = other.max
	}
}

// sparse returns the non-empty buckets as [bucket, count] pairs, as bench/src/histogram.ts does.
func (h *histogram) sparse() [][2]uint64 {
	pairs := [][2]uint64{}
	for i, count := range h.counts {
		if count > 0 {
			pairs = append(pairs, [2]uint64{uint64(i), count})
		}
	}
	return pairs
}

func (h *histogram) percentile(p float64) uint64 {
	if h.count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(h.count)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, count := range h.counts {
		seen += count
		if seen >= rank {
			mid := midpointOf(i)
			if mid > h.max {
				return h.max
			}
			return mid
		}
	}
	return h.max
}

func bucketOf(value uint64) int {
	if value < linear {
		return int(value)
	}
	shift := bits.Len64(value) - 1 - 6
	return linear + (shift-1)*subBuckets + int(value>>uint(shift)) - subBuckets
}

func midpointOf(bucket int) uint64 {
	if bucket < linear {
		return uint64(bucket)
	}
	shift := (bucket-linear)/subBuckets + 1
	sub := uint64((bucket-linear)%subBuckets + subBuckets)
	return sub<<uint(shift) + 1<<uint(shift-1)
}

// createBytes matches bench/src/payload.ts: xorshift32 bytes.
func createBytes(size int) []byte {
	payload := make([]byte, size)
	state := uint32(0x9e3779b9)
	for i := range payload {
		state ^= state << 13
		state ^= state >> 17
		state ^= state << 5
		payload[i] = byte(state)
	}
	return payload
}

// createAscii matches bench/src/payload.ts: the same pattern on 'a'..'z'.
func createAscii(size int) string {
	bytes := createBytes(size)
	for i := range bytes {
		bytes[i] = 'a' + bytes[i]%26
	}
	return string(bytes)
}

var (
	tags   = []string{"alpha", "beta"}
	cities = []string{"Springfield", "Rivertown", "Lakeside", "Hillview"}
)

// createObject matches bench/src/payload.ts createPayload('object').
func createObject(records int) ObjectMessage {
	epoch := time.UnixMilli(1_767_323_045_678).UTC()
	items := make([]Record, records)
	for i := range items {
		items[i] = Record{
			ID:        int64(100_000 + i),
			Name:      fmt.Sprintf("user-%d", i),
			Active:    i%3 != 0,
			Score:     0.5 + float64(i)*1.25,
			Tags:      tags[:1+i%2],
			Address:   map[string]string{"city": cities[i%len(cities)], "zip": fmt.Sprint(10_000 + i*7)},
			CreatedAt: epoch.Add(time.Duration(i) * time.Hour),
		}
	}
	return ObjectMessage{Items: items}
}

// caller makes one echo call of the payload and says what is wrong with the answer, if anything.
type caller func(client *tunnelrpc.Client) error

// createCaller returns the call of payload `name` (the names of bench/src/payload.ts).
func createCaller(name string, echo bool) (caller, error) {
	method := func(typed string) string {
		if echo {
			return "Echo.echo"
		}
		return typed
	}
	byteSizes := map[string]int{"small": 32, "1k": 1024, "64k": 65_536}
	stringSizes := map[string]int{"str32": 32, "str1k": 1024, "str64k": 65_536}
	if size, ok := byteSizes[name]; ok {
		payload := createBytes(size)
		return func(client *tunnelrpc.Client) error {
			var reply []byte
			if err := client.Call(method("Echo.Bytes"), payload, &reply); err != nil {
				return err
			}
			if len(reply) != size {
				return fmt.Errorf("echo of %d bytes, expected %d", len(reply), size)
			}
			return nil
		}, nil
	}
	if size, ok := stringSizes[name]; ok {
		payload := StringMessage{A: 1, B: createAscii(size)}
		return func(client *tunnelrpc.Client) error {
			var reply StringMessage
			if err := client.Call(method("Echo.String"), payload, &reply); err != nil {
				return err
			}
			if len(reply.B) != size {
				return fmt.Errorf("echo without a %d-character b", size)
			}
			return nil
		}, nil
	}
	if name == "object" {
		payload := createObject(20)
		return func(client *tunnelrpc.Client) error {
			var reply ObjectMessage
			if err := client.Call(method("Echo.Object"), payload, &reply); err != nil {
				return err
			}
			if len(reply.Items) != 20 {
				return fmt.Errorf("echo without 20 items")
			}
			return nil
		}, nil
	}
	return nil, fmt.Errorf("unknown payload %q", name)
}

func round(value float64, digits int) float64 {
	scale := math.Pow(10, float64(digits))
	return math.Round(value*scale) / scale
}

// Phases of the closed loop; the workers read it after each call.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

func runClient(host string, port, concurrency, connections int, payload, method string, seconds, warmup float64, waitGo bool) {
	call, err := createCaller(payload, method == "echo")
	if err != nil {
		fatal(err)
	}
	clients := make([]*tunnelrpc.Client, connections)
	options := &tunnelrpc.ClientOptions{}
	if concurrency > 1024 {
		options.MaxPendingCalls = concurrency
	}
	for i := range clients {
		client, err := tunnelrpc.Dial(context.Background(), "tcp", fmt.Sprintf("%s:%d", host, port), options)
		if err != nil {
			fatal(err)
		}
		clients[i] = client
	}
	var phase int32 = phaseWarmup
	var errorCount int64
	var firstError atomic.Value
	histograms := make([]histogram, concurrency*connections)
	var workers sync.WaitGroup
	for i := range histograms {
		workers.Add(1)
		go func(client *tunnelrpc.Client, h *histogram) {
			defer workers.Done()
			for atomic.LoadInt32(&phase) != phaseStop {
				started := time.Now()
				err := call(client)
				elapsed := time.Since(started)
				if err != nil {
					firstError.CompareAndSwap(nil, err.Error())
					if atomic.AddInt64(&errorCount, 1) >= 1000 {
						atomic.StoreInt32(&phase, phaseStop)
					}
					continue
				}
				if atomic.LoadInt32(&phase) == phaseMeasure {
					h.record(elapsed.Nanoseconds())
				}
			}
		}(clients[i%connections], &histograms[i])
	}
	time.Sleep(time.Duration(warmup * float64(time.Second)))
	if waitGo {
		emit(map[string]bool{"ready": true})
		lines := bufio.NewScanner(os.Stdin)
		for lines.Scan() && strings.TrimSpace(lines.Text()) != "go" {
		}
	}
	start := time.Now()
	atomic.CompareAndSwapInt32(&phase, phaseWarmup, phaseMeasure)
	time.Sleep(time.Duration(seconds * float64(time.Second)))
	atomic.StoreInt32(&phase, phaseStop)
	elapsed := time.Since(start).Seconds()
	done := make(chan struct{})
	go func() {
		workers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	var total histogram
	for i := range histograms {
		total.merge(&histograms[i])
	}
	result := map[string]interface{}{
		"calls":       total.count,
		"seconds":     round(elapsed, 4),
		"callsPerSec": round(float64(total.count)/elapsed, 1),
		"p50us":       round(float64(total.percentile(50))/1000, 1),
		"p99us":       round(float64(total.percentile(99))/1000, 1),
		"maxUs":       round(float64(total.max)/1000, 1),
		"errors":      atomic.LoadInt64(&errorCount),
		"histogram":   total.sparse(),
	}
	if first, ok := firstError.Load().(string); ok {
		result["firstError"] = first
	}
	emit(result)
	stopProfile()
	for _, client := range clients {
		client.Close()
	}
	os.Exit(0)
}
