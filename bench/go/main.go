// Command gorpc-bench is the Go net/rpc peer of tunnelrpc's bench: standard library only.
//
// Server mode serves Echo.Echo ([]byte in, the same []byte out, gob-encoded) with rpc.HandleHTTP, which is
// net/rpc's own CONNECT tunnel: the client sends "CONNECT /_goRPC_ HTTP/1.0", the server answers
// "HTTP/1.0 200 Connected to Go RPC" and the socket carries gob from then on. It prints {"port":N,"pid":P} and
// answers stdin commands like the Node servers (bench/src/server-control.ts): stats, gc, exit.
//
// Client mode dials with rpc.DialHTTP (one connection) and keeps C goroutines in a closed loop of client.Call,
// speaking the same stdio protocol as bench/src/closed-loop.ts: {"ready":true} after the warm-up, then "go" on
// stdin, then one JSON result line. Latencies go into per-goroutine histograms with the layout of
// bench/src/histogram.ts.
//
//	gorpc-bench -mode server
//	gorpc-bench -mode client -port N -concurrency C -bytes B -seconds S -warmup W [-wait-go]
package main

import (
	"bufio"
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
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Echo is the service; its one method returns its argument.
type Echo struct{}

// Echo copies args into reply.
func (*Echo) Echo(args []byte, reply *[]byte) error {
	*reply = args
	return nil
}

func main() {
	mode := flag.String("mode", "", "server or client")
	host := flag.String("host", "127.0.0.1", "server host (client)")
	port := flag.Int("port", 0, "server port (client)")
	concurrency := flag.Int("concurrency", 1, "calls outstanding (client)")
	size := flag.Int("bytes", 32, "payload bytes (client)")
	seconds := flag.Float64("seconds", 5, "measured window (client)")
	warmup := flag.Float64("warmup", 1, "warm-up before the window (client)")
	waitGo := flag.Bool("wait-go", false, "print ready after the warm-up and wait for go on stdin (client)")
	flag.Parse()
	switch *mode {
	case "server":
		serve()
	case "client":
		runClient(*host, *port, *concurrency, *size, *seconds, *warmup, *waitGo)
	default:
		fmt.Fprintln(os.Stderr, "gorpc-bench: -mode server or -mode client")
		os.Exit(2)
	}
}

func emit(value interface{}) {
	line, _ := json.Marshal(value)
	os.Stdout.Write(append(line, '\n'))
}

func fatal(err error) {
	emit(map[string]string{"fatal": err.Error()})
	os.Exit(1)
}

func serve() {
	if err := rpc.Register(new(Echo)); err != nil {
		fatal(err)
	}
	rpc.HandleHTTP()
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
			os.Exit(0)
		default:
			emit(map[string]string{"error": "unknown command; use stats, gc or exit"})
		}
	}
	os.Exit(0)
}

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

// createPayload matches bench/src/payload.ts: xorshift32 bytes.
func createPayload(size int) []byte {
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

func runClient(host string, port, concurrency, size int, seconds, warmup float64, waitGo bool) {
	client, err := rpc.DialHTTP("tcp", fmt.Sprintf("%s:%d", host, port))
	if err != nil {
		fatal(err)
	}
	payload := createPayload(size)
	var phase int32 = phaseWarmup
	var errorCount int64
	var firstError atomic.Value
	histograms := make([]histogram, concurrency)
	var workers sync.WaitGroup
	for i := 0; i < concurrency; i++ {
		workers.Add(1)
		go func(h *histogram) {
			defer workers.Done()
			for atomic.LoadInt32(&phase) != phaseStop {
				started := time.Now()
				var reply []byte
				err := client.Call("Echo.Echo", payload, &reply)
				elapsed := time.Since(started)
				if err == nil && len(reply) != size {
					err = fmt.Errorf("echo of %d bytes, expected %d", len(reply), size)
				}
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
		}(&histograms[i])
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
	}
	if first, ok := firstError.Load().(string); ok {
		result["firstError"] = first
	}
	emit(result)
	client.Close()
	os.Exit(0)
}
