package tunnelrpc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/rpc"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ServerOptions configures a Handler. The zero value of each field means its default, the reference server's
// (PROTOCOL.md 4.7 and 7.7).
type ServerOptions struct {
	// MaxFrameSize is the largest frame payload accepted or sent, in bytes. A larger frame from the client is
	// goaway RESOURCE_EXHAUSTED and the connection closes; a larger result is answered RESOURCE_EXHAUSTED.
	// Default 8 MiB (8388608).
	MaxFrameSize uint32
	// MaxDepth caps nesting in a frame, the message array being level 1: deeper is goaway PROTOCOL_ERROR.
	// Default 32, range 2 … 1000.
	MaxDepth int
	// MaxItemsPerFrame caps the MessagePack values in a frame: more is goaway RESOURCE_EXHAUSTED. Default 262144.
	MaxItemsPerFrame int
	// MaxKeysPerMap caps the keys of any map in a request: more is answered INVALID_ARGUMENT, not run.
	// Default 8192.
	MaxKeysPerMap int
	// MaxInFlight caps the calls and notifications of one connection whose method has not returned; at the cap
	// the connection is not read until one returns (a cancelled method still holds its slot: net/rpc cannot stop
	// it). Default 128.
	MaxInFlight int
	// MaxCallsInFlight caps them across the Handler: a request past it is answered RESOURCE_EXHAUSTED, not run.
	// Default 10000.
	MaxCallsInFlight int
	// MaxConnections caps open tunnels: further handshakes get 503. Default 10000.
	MaxConnections int
	// MaxHeaderCount and MaxHeaderBytes bound a call's meta.headers: past them the call is answered
	// INVALID_ARGUMENT, not run. Defaults 64 and 8192 bytes.
	MaxHeaderCount int
	MaxHeaderBytes int
	// DefaultTimeout is the deadline of a call without meta.timeout, and MaxTimeout caps any deadline. When it
	// passes the client is answered DEADLINE_EXCEEDED and the method's late result is dropped. Defaults 30 s and
	// 300 s.
	DefaultTimeout time.Duration
	MaxTimeout     time.Duration
	// IdleTimeout closes a tunnel with goaway UNAVAILABLE when no frame went either way and no call ran for that
	// long. Default 60 s.
	IdleTimeout time.Duration
	// FrameTimeout bounds the arrival of one frame's payload once its header is read: goaway PROTOCOL_ERROR.
	// Default 30 s.
	FrameTimeout time.Duration
	// KeepaliveInterval: while calls run and the client has sent nothing for this long, it is pinged; with no
	// frame back within KeepaliveTimeout the tunnel is closed. Defaults 30 s and 20 s.
	KeepaliveInterval time.Duration
	KeepaliveTimeout  time.Duration
	// MinPingInterval and MaxPingStrikes limit the client's pings while no call runs: a ping sooner than
	// MinPingInterval after the last is a strike, and one more than MaxPingStrikes is goaway RESOURCE_EXHAUSTED.
	// Defaults 10 s and 2.
	MinPingInterval time.Duration
	MaxPingStrikes  int
	// MaxWriteBuffer is how many bytes of responses may queue for one connection before methods wait to answer,
	// and DrainTimeout how long a write may make no progress before the connection is closed. Defaults 1 MiB and
	// 30 s.
	MaxWriteBuffer int
	DrainTimeout   time.Duration
	// ShutdownTimeout is the grace period of Shutdown when its context has no deadline. Default 10 s.
	ShutdownTimeout time.Duration
	// StrictParams refuses params whose map keys name no field of the method's argument (INVALID_ARGUMENT), as
	// a z.strictObject schema does. Off by default, as encoding/json.
	StrictParams bool
	// ExposeErrors sends the text of a plain error a method returns (code INTERNAL). Off by default: the client
	// gets a generic message and the text is logged.
	ExposeErrors bool
	// ErrorLog receives the server's log lines (plain method errors, dropped notifications). Default: the log
	// package's standard logger.
	ErrorLog *log.Logger
}

func (o *ServerOptions) filled() ServerOptions {
	var opts ServerOptions
	if o != nil {
		opts = *o
	}
	if opts.MaxFrameSize == 0 {
		opts.MaxFrameSize = 8 << 20
	}
	setInt(&opts.MaxDepth, 32)
	if opts.MaxDepth < 2 {
		opts.MaxDepth = 2
	} else if opts.MaxDepth > 1000 {
		opts.MaxDepth = 1000
	}
	setInt(&opts.MaxItemsPerFrame, 262144)
	setInt(&opts.MaxKeysPerMap, 8192)
	setInt(&opts.MaxInFlight, 128)
	setInt(&opts.MaxCallsInFlight, 10000)
	setInt(&opts.MaxConnections, 10000)
	setInt(&opts.MaxHeaderCount, 64)
	setInt(&opts.MaxHeaderBytes, 8192)
	setDuration(&opts.DefaultTimeout, 30*time.Second)
	setDuration(&opts.MaxTimeout, 300*time.Second)
	setDuration(&opts.IdleTimeout, 60*time.Second)
	setDuration(&opts.FrameTimeout, 30*time.Second)
	setDuration(&opts.KeepaliveInterval, 30*time.Second)
	setDuration(&opts.KeepaliveTimeout, 20*time.Second)
	setDuration(&opts.MinPingInterval, 10*time.Second)
	setInt(&opts.MaxPingStrikes, 2)
	setInt(&opts.MaxWriteBuffer, 1<<20)
	setDuration(&opts.DrainTimeout, 30*time.Second)
	setDuration(&opts.ShutdownTimeout, 10*time.Second)
	if opts.ErrorLog == nil {
		opts.ErrorLog = log.Default()
	}
	return opts
}

// Handler serves an *rpc.Server's registered receivers over wire-v1 on one path of an http.Server: it answers
// CONNECT (and GET with Upgrade: tunnelrpc), takes the connection over and runs net/rpc's ServeCodec on it.
// Other methods on its path get 405; the http.Server's other routes are untouched.
type Handler struct {
	server  *rpc.Server
	options ServerOptions

	mu           sync.Mutex
	conns        map[*serverConn]struct{}
	shuttingDown bool
	allClosed    chan struct{}

	callsInFlight int64
}

// NewHandler returns a Handler for server with options (nil for the defaults).
func NewHandler(server *rpc.Server, options *ServerOptions) *Handler {
	return &Handler{server: server, options: options.filled(), conns: make(map[*serverConn]struct{})}
}

// HandleHTTP serves rpc.DefaultServer (what rpc.Register registers with) over wire-v1 at DefaultRPCPath on
// http.DefaultServeMux, as rpc.HandleHTTP does for net/rpc, and returns the Handler for Shutdown.
func HandleHTTP() *Handler {
	return HandleHTTPPath(rpc.DefaultServer, DefaultRPCPath, nil)
}

// HandleHTTPPath serves server over wire-v1 at path on http.DefaultServeMux, with options (nil for the defaults).
func HandleHTTPPath(server *rpc.Server, path string, options *ServerOptions) *Handler {
	handler := NewHandler(server, options)
	http.Handle(path, handler)
	return handler
}

// ServeHTTP answers the handshakes of PROTOCOL.md 2.1 and 2.5 and refuses everything else on the path.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	upgrade := r.Method == http.MethodGet && headerHasToken(r.Header, "Connection", "upgrade") && r.Header.Get("Upgrade") != ""
	switch {
	case r.Method == http.MethodConnect:
	case upgrade && headerHasToken(r.Header, "Upgrade", "tunnelrpc"):
	case upgrade:
		refuse(w, http.StatusBadRequest, "400 this path upgrades only to tunnelrpc")
		return
	default:
		w.Header().Set("Allow", "CONNECT")
		refuse(w, http.StatusMethodNotAllowed, "405 must CONNECT")
		return
	}
	if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		refuse(w, http.StatusBadRequest, "400 a tunnelrpc handshake carries no body")
		return
	}
	h.mu.Lock()
	refusal := ""
	if h.shuttingDown {
		refusal = "503 the server is shutting down; connect to another instance"
	} else if len(h.conns) >= h.options.MaxConnections {
		refusal = "503 the server holds its maximum of connections; retry with backoff"
	}
	h.mu.Unlock()
	if refusal != "" {
		w.Header().Set("Retry-After", "1")
		refuse(w, http.StatusServiceUnavailable, refusal)
		return
	}
	hijacker, ok := w.(http.Hijacker)
	if !ok {
		refuse(w, http.StatusInternalServerError, "500 this http.Server cannot hand its connections over")
		return
	}
	conn, buffered, err := hijacker.Hijack()
	if err != nil {
		h.logf("tunnelrpc: taking over the connection from %s failed: %v", r.RemoteAddr, err)
		return
	}
	conn.SetDeadline(time.Time{}) // the http.Server's timeouts end with the takeover; the tunnel has its own
	reply := connectedReply
	if r.Method != http.MethodConnect {
		reply = upgradedReply
	}
	if _, err := conn.Write([]byte(reply)); err != nil {
		conn.Close()
		return
	}
	// Bytes that came with the head are already in buffered.Reader: they are the first frames (PROTOCOL.md 2.1
	// rule 10), so they are read first, then the connection itself (not through the http.Server's reader).
	var early []byte
	if buffered.Reader != nil && buffered.Reader.Buffered() > 0 {
		early, _ = buffered.Reader.Peek(buffered.Reader.Buffered())
		early = append([]byte(nil), early...)
	}
	reader := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(early), conn), 8<<10)
	frames := &frameReader{r: reader, conn: conn, maxFrameSize: h.options.MaxFrameSize, frameTimeout: h.options.FrameTimeout}
	c := newServerConn(h, conn, frames)
	h.mu.Lock()
	if h.shuttingDown {
		h.mu.Unlock()
		c.drain(true, "server is shutting down; reconnect to another instance")
	} else {
		h.conns[c] = struct{}{}
		h.mu.Unlock()
	}
	go c.watch()
	h.server.ServeCodec(c)
}

func headerHasToken(header http.Header, name, token string) bool {
	for _, value := range header.Values(name) {
		for _, part := range strings.Split(value, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// refuse writes a marked refusal (PROTOCOL.md 2.3) and closes the connection.
func refuse(w http.ResponseWriter, status int, body string) {
	header := w.Header()
	header.Set("Connection", "close")
	header.Set(refusalMarker, "wire-v1")
	header.Set("Content-Type", "text/plain; charset=utf-8")
	header.Set("Content-Length", fmt.Sprint(len(body)+1))
	w.WriteHeader(status)
	w.Write([]byte(body + "\n"))
}

// Shutdown drains every tunnel gracefully (PROTOCOL.md 7.2): new handshakes get 503, each tunnel is sent goaway
// UNAVAILABLE with the highest id it took, and closes once those calls are answered. Tunnels still open when ctx
// ends (ShutdownTimeout when ctx has no deadline) are closed, their calls abandoned. The http.Server itself is
// the caller's to shut down; hijacked connections are no longer its own.
func (h *Handler) Shutdown(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.options.ShutdownTimeout)
		defer cancel()
	}
	h.mu.Lock()
	h.shuttingDown = true
	conns := make([]*serverConn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	if h.allClosed == nil {
		h.allClosed = make(chan struct{})
		if len(h.conns) == 0 {
			close(h.allClosed)
		}
	}
	allClosed := h.allClosed
	h.mu.Unlock()
	for _, c := range conns {
		c.drain(true, "server is shutting down; reconnect to another instance")
	}
	select {
	case <-allClosed:
		return nil
	case <-ctx.Done():
		h.mu.Lock()
		for c := range h.conns {
			conns = append(conns, c)
		}
		h.mu.Unlock()
		for _, c := range conns {
			c.close()
		}
		return ctx.Err()
	}
}

func (h *Handler) forget(c *serverConn) {
	h.mu.Lock()
	delete(h.conns, c)
	if h.allClosed != nil && len(h.conns) == 0 {
		select {
		case <-h.allClosed:
		default:
			close(h.allClosed)
		}
	}
	h.mu.Unlock()
}

// startCall takes a slot of MaxCallsInFlight, or reports there is none.
func (h *Handler) startCall() bool {
	if atomic.AddInt64(&h.callsInFlight, 1) > int64(h.options.MaxCallsInFlight) {
		atomic.AddInt64(&h.callsInFlight, -1)
		return false
	}
	return true
}

func (h *Handler) endCall() {
	atomic.AddInt64(&h.callsInFlight, -1)
}

func (h *Handler) logf(format string, args ...interface{}) {
	h.options.ErrorLog.Printf(format, args...)
}
