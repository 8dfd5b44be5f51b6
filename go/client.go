package tunnelrpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"math"
	"net"
	"net/http"
	"net/rpc"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultRPCPath is the path a server serves wire-v1 on unless told otherwise (PROTOCOL.md 2.1).
const DefaultRPCPath = "/_rpc"

// ClientOptions configures Dial. The zero value of each field means its default.
type ClientOptions struct {
	// Path is the server's RPC path. Default "/_rpc".
	Path string
	// TLSConfig, when set, runs TLS under the tunnel, configured as crypto/tls configures it. ServerName defaults
	// to the dialled host.
	TLSConfig *tls.Config
	// Header holds extra handshake headers, such as Authorization. They belong to the tunnel, not to calls.
	Header http.Header
	// Upgrade dials with GET + Upgrade: tunnelrpc (PROTOCOL.md 2.5) instead of CONNECT, for HTTP proxies that
	// refuse CONNECT.
	Upgrade bool
	// HandshakeTimeout bounds the dial and the handshake together. Default 10 s.
	HandshakeTimeout time.Duration
	// MaxHeadSize caps the server's reply head, in bytes. Default 8 KiB (8192).
	MaxHeadSize int
	// MaxFrameSize is the largest frame payload sent or accepted, in bytes; a larger response is goaway
	// RESOURCE_EXHAUSTED and the connection closes, a larger request fails alone, unsent. Default 8 MiB (8388608).
	MaxFrameSize uint32
	// MaxDepth caps nesting in a received frame (the message array is level 1). Default 32, range 2 … 1000.
	MaxDepth int
	// MaxItemsPerFrame caps the MessagePack values in a received frame. Default 262144.
	MaxItemsPerFrame int
	// MaxPendingCalls caps calls waiting for a response; more fail at once with RESOURCE_EXHAUSTED, unsent.
	// Default 1024.
	MaxPendingCalls int
	// DefaultTimeout is the deadline of a call whose context has none (Call, Go, and CallContext without a
	// deadline); it travels as meta.timeout. Default 30 s; negative sends no deadline (the server's own default
	// then applies, 30 s on the reference server).
	DefaultTimeout time.Duration
	// KeepaliveInterval is how long the server may stay silent before the client pings it. Default 30 s.
	KeepaliveInterval time.Duration
	// KeepaliveTimeout is how long after that ping the client waits for any frame before it gives the
	// connection up (calls fail UNAVAILABLE, may have run). Default 20 s.
	KeepaliveTimeout time.Duration
	// FrameTimeout bounds the arrival of one frame's payload once its header is read. Default 30 s.
	FrameTimeout time.Duration
	// MaxWriteBuffer is how many unsent bytes may queue before callers wait. Default 1 MiB.
	MaxWriteBuffer int
}

func (o *ClientOptions) filled() (ClientOptions, error) {
	var opts ClientOptions
	if o != nil {
		opts = *o
	}
	if opts.Path == "" {
		opts.Path = DefaultRPCPath
	}
	if opts.Path[0] != '/' {
		return opts, notRun(InvalidArgument, "ClientOptions.Path %q must start with /", opts.Path)
	}
	setDuration(&opts.HandshakeTimeout, 10*time.Second)
	setInt(&opts.MaxHeadSize, 8192)
	if opts.MaxFrameSize == 0 {
		opts.MaxFrameSize = 8 << 20
	}
	setInt(&opts.MaxDepth, 32)
	setInt(&opts.MaxItemsPerFrame, 262144)
	setInt(&opts.MaxPendingCalls, 1024)
	setDuration(&opts.DefaultTimeout, 30*time.Second)
	setDuration(&opts.KeepaliveInterval, 30*time.Second)
	setDuration(&opts.KeepaliveTimeout, 20*time.Second)
	setDuration(&opts.FrameTimeout, 30*time.Second)
	setInt(&opts.MaxWriteBuffer, 1<<20)
	if opts.MaxDepth < 2 || opts.MaxDepth > 1000 {
		return opts, notRun(InvalidArgument, "ClientOptions.MaxDepth %d is outside 2 … 1000", opts.MaxDepth)
	}
	for name, value := range map[string]int{"MaxHeadSize": opts.MaxHeadSize, "MaxItemsPerFrame": opts.MaxItemsPerFrame, "MaxPendingCalls": opts.MaxPendingCalls, "MaxWriteBuffer": opts.MaxWriteBuffer} {
		if value < 1 {
			return opts, notRun(InvalidArgument, "ClientOptions.%s must be at least 1; got %d", name, value)
		}
	}
	return opts, nil
}

func setInt(field *int, fallback int) {
	if *field == 0 {
		*field = fallback
	}
}

func setDuration(field *time.Duration, fallback time.Duration) {
	if *field == 0 {
		*field = fallback
	}
}

// Client is a wire-v1 connection to one server, shaped like net/rpc's Client: Call, Go and Close keep their
// signatures, and CallContext adds a deadline and cancellation per call. It is safe for concurrent use. Every
// call ends with nil or an *Error.
type Client struct {
	conn    net.Conn
	options ClientOptions
	writer  *frameWriter
	limits  scanLimits

	mu       sync.Mutex
	pending  map[uint32]*pendingCall
	nextID   uint32
	draining bool
	closing  bool   // Close was called
	closeErr *Error // what calls made after the end are told
	idle     chan struct{}

	lastRead   int64 // unix nanoseconds of the last frame received
	pingSentAt int64 // unix nanoseconds, 0 when no keepalive ping is out
	stop       chan struct{}
}

type pendingCall struct {
	call      *rpc.Call
	abandoned bool
	timer     *time.Timer
	finished  chan struct{} // closed when the call ends, for its context watcher; nil without one
	ended     bool
}

// DialHTTP connects to a wire-v1 server at the default RPC path, as rpc.DialHTTP does for net/rpc.
func DialHTTP(network, address string) (*Client, error) {
	return Dial(context.Background(), network, address, nil)
}

// DialHTTPPath connects to a wire-v1 server at path, as rpc.DialHTTPPath does for net/rpc.
func DialHTTPPath(network, address, path string) (*Client, error) {
	return Dial(context.Background(), network, address, &ClientOptions{Path: path})
}

// Dial connects to a wire-v1 server with options (nil for the defaults): TCP or unix, TLS when
// options.TLSConfig is set, then the CONNECT (or Upgrade) handshake, all within ctx and HandshakeTimeout.
func Dial(ctx context.Context, network, address string, options *ClientOptions) (*Client, error) {
	opts, err := options.filled()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.HandshakeTimeout)
	defer cancel()
	var dialer net.Dialer
	conn, dialErr := dialer.DialContext(ctx, network, address)
	if dialErr != nil {
		return nil, notRun(Unavailable, "cannot connect to %s: %v; check the address and that the server runs", address, dialErr)
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	if opts.TLSConfig != nil {
		config := opts.TLSConfig.Clone()
		if config.ServerName == "" {
			host, _, splitErr := net.SplitHostPort(address)
			if splitErr != nil {
				host = address
			}
			config.ServerName = host
		}
		tlsConn := tls.Client(conn, config)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, notRun(Unavailable, "TLS handshake with %s failed: %v", address, err)
		}
		conn = tlsConn
	}
	if _, err := conn.Write(appendRequestHead(nil, opts.Path, address, opts.Header, opts.Upgrade)); err != nil {
		conn.Close()
		return nil, notRun(Unavailable, "cannot send the handshake to %s: %v", address, err)
	}
	reader := bufio.NewReaderSize(conn, 8<<10)
	if err := readReplyHead(reader, opts.MaxHeadSize, opts.Upgrade); err != nil {
		conn.Close()
		if !time.Now().Before(deadline) {
			return nil, notRun(Unavailable, "the handshake with %s did not complete within %s", address, opts.HandshakeTimeout)
		}
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return newClient(conn, reader, opts), nil
}

func newClient(conn net.Conn, reader *bufio.Reader, opts ClientOptions) *Client {
	c := &Client{
		conn:     conn,
		options:  opts,
		limits:   scanLimits{maxDepth: opts.MaxDepth, maxItems: opts.MaxItemsPerFrame},
		pending:  make(map[uint32]*pendingCall),
		lastRead: time.Now().UnixNano(),
		stop:     make(chan struct{}),
	}
	c.writer = newFrameWriter(conn, opts.MaxWriteBuffer, 30*time.Second, func(err error) {
		c.fail(mayHaveRun(Unavailable, "writing to the server failed: %v; the call may have run", err), nil)
	})
	frames := &frameReader{r: reader, conn: conn, maxFrameSize: opts.MaxFrameSize, frameTimeout: opts.FrameTimeout}
	go c.readLoop(frames)
	go c.keepalive()
	return c
}

// Go invokes the method asynchronously, as net/rpc's Client.Go does: the *rpc.Call is sent on done (a new
// buffered channel when nil) when it completes, with Error nil or an *Error. Its deadline is DefaultTimeout.
func (c *Client) Go(serviceMethod string, args interface{}, reply interface{}, done chan *rpc.Call) *rpc.Call {
	if done == nil {
		done = make(chan *rpc.Call, 10)
	} else if cap(done) == 0 {
		log.Panic("tunnelrpc: done channel is unbuffered")
	}
	call := &rpc.Call{ServiceMethod: serviceMethod, Args: args, Reply: reply, Done: done}
	c.start(context.Background(), call)
	return call
}

// Call invokes the method and waits for it, as net/rpc's Client.Call does. Its deadline is DefaultTimeout.
func (c *Client) Call(serviceMethod string, args interface{}, reply interface{}) error {
	call := <-c.Go(serviceMethod, args, reply, make(chan *rpc.Call, 1)).Done
	return call.Error
}

// CallContext invokes the method and waits for it or for ctx: the context's deadline travels as meta.timeout
// (DefaultTimeout when it has none), and when ctx ends first the server is sent a cancel and the call fails with
// CANCELLED or DEADLINE_EXCEEDED.
func (c *Client) CallContext(ctx context.Context, serviceMethod string, args interface{}, reply interface{}) error {
	call := &rpc.Call{ServiceMethod: serviceMethod, Args: args, Reply: reply, Done: make(chan *rpc.Call, 1)}
	c.start(ctx, call)
	<-call.Done
	return call.Error
}

func finish(call *rpc.Call, err error) {
	call.Error = err
	select {
	case call.Done <- call:
	default:
		// As net/rpc: a done channel without room is the caller's bug, and must not block the connection.
	}
}

func (c *Client) start(ctx context.Context, call *rpc.Call) {
	deadline, hasDeadline := ctx.Deadline()
	if !hasDeadline && c.options.DefaultTimeout > 0 {
		deadline, hasDeadline = time.Now().Add(c.options.DefaultTimeout), true
	}
	if err := ctx.Err(); err != nil {
		finish(call, contextError(ctx, call.ServiceMethod, false))
		return
	}
	var remaining time.Duration
	if hasDeadline {
		remaining = time.Until(deadline)
		if remaining <= 0 {
			finish(call, notRun(DeadlineExceeded, "%s passed its deadline before it was sent", call.ServiceMethod))
			return
		}
	}
	frame, start := beginFrame(getFrameBuffer())
	if hasDeadline {
		frame = append(frame, 0x95, typeRequest)
	} else {
		frame = append(frame, 0x94, typeRequest)
	}
	frame = append(frame, 0xce, 0, 0, 0, 0) // id, filled in once taken
	frame = appendString(frame, call.ServiceMethod)
	frame, err := appendValue(frame, call.Args)
	if err != nil {
		putFrameBuffer(frame)
		finish(call, notRun(InvalidArgument, "the params of %s cannot be encoded as MessagePack: %v", call.ServiceMethod, err))
		return
	}
	if hasDeadline {
		ms := uint64(math.Ceil(float64(remaining) / float64(time.Millisecond)))
		if ms > math.MaxUint32 {
			ms = math.MaxUint32
		}
		frame = appendMapHeader(frame, 1)
		frame = appendString(frame, "timeout")
		frame = appendUint(frame, ms)
	}
	if size := len(frame) - start - 4; size > int(c.options.MaxFrameSize) {
		putFrameBuffer(frame)
		finish(call, notRun(ResourceExhausted, "the request for %s is %d bytes, over maxFrameSize %d; send smaller params or raise MaxFrameSize on both peers", call.ServiceMethod, size, c.options.MaxFrameSize))
		return
	}
	endFrame(frame, start)
	p := &pendingCall{call: call}
	watch := ctx.Done() != nil
	if watch {
		p.finished = make(chan struct{})
	}
	c.mu.Lock()
	if refusal := c.refuseLocked(); refusal != nil {
		c.mu.Unlock()
		putFrameBuffer(frame)
		finish(call, refusal)
		return
	}
	if len(c.pending) >= c.options.MaxPendingCalls {
		c.mu.Unlock()
		putFrameBuffer(frame)
		finish(call, notRun(ResourceExhausted, "%d calls are already waiting on this connection (MaxPendingCalls); wait for some or raise MaxPendingCalls", len(c.pending)))
		return
	}
	id := c.takeIDLocked()
	c.pending[id] = p
	if hasDeadline {
		p.timer = time.AfterFunc(remaining, func() {
			c.abandon(id, p, mayHaveRun(DeadlineExceeded, "%s passed its deadline of %s; a cancel was sent, and it may have run", call.ServiceMethod, remaining.Round(time.Millisecond)))
		})
	}
	c.mu.Unlock()
	frame[start+7], frame[start+8], frame[start+9], frame[start+10] = byte(id>>24), byte(id>>16), byte(id>>8), byte(id)
	c.writer.write(frame)
	if watch {
		finished := p.finished
		go func() {
			select {
			case <-ctx.Done():
				c.abandon(id, p, contextError(ctx, call.ServiceMethod, true))
			case <-finished:
			}
		}()
	}
}

func contextError(ctx context.Context, method string, sent bool) *Error {
	run := "it was not sent"
	if sent {
		run = "a cancel was sent, and it may have run"
	}
	err := &Error{Code: Canceled, Message: fmt.Sprintf("%s was cancelled by its context; %s", method, run), MayHaveRun: sent}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err.Code = DeadlineExceeded
		err.Message = fmt.Sprintf("%s passed its context's deadline; %s", method, run)
	}
	return err
}

// refuseLocked says why no new call may start, or nil.
func (c *Client) refuseLocked() *Error {
	if c.closeErr != nil {
		return c.closeErr
	}
	if c.draining {
		return notRun(Unavailable, "the connection is draining after a goaway; the call did not run: dial again")
	}
	return nil
}

// takeIDLocked returns the next free id: ids start at 1, increase, wrap after 4294967295 and skip 0 and ids in
// use (PROTOCOL.md 7.6).
func (c *Client) takeIDLocked() uint32 {
	for {
		c.nextID++
		if c.nextID == 0 {
			continue
		}
		if _, used := c.pending[c.nextID]; !used {
			return c.nextID
		}
	}
}

// abandon ends a call the caller stopped waiting for: it fails with err and the server is sent a cancel; the id
// stays in use until the server's answer arrives (PROTOCOL.md 8.3).
func (c *Client) abandon(id uint32, p *pendingCall, err *Error) {
	c.mu.Lock()
	if c.pending[id] != p || p.abandoned {
		c.mu.Unlock()
		return
	}
	p.abandoned = true
	c.endLocked(p)
	open := c.closeErr == nil
	c.mu.Unlock()
	// The cancel is queued before the caller hears of the end, so that it precedes anything the caller sends next
	// (a Close's goaway included).
	if open {
		frame, start := beginFrame(make([]byte, 0, 12))
		frame = appendUint(append(frame, 0x92, typeCancel), uint64(id))
		endFrame(frame, start)
		c.writer.write(frame)
	}
	finish(p.call, err)
}

// endLocked releases what a call holds besides its id.
func (c *Client) endLocked(p *pendingCall) {
	if p.timer != nil {
		p.timer.Stop()
	}
	if p.finished != nil && !p.ended {
		close(p.finished)
	}
	p.ended = true
}

// Close ends the connection at once, as net/rpc's Close does: the server is sent a goaway, and calls still
// waiting fail with UNAVAILABLE (errors.Is(err, rpc.ErrShutdown) holds). A second Close returns rpc.ErrShutdown.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closeErr != nil && c.closeErr.shutdown {
		c.mu.Unlock()
		return rpc.ErrShutdown
	}
	c.closing = true
	c.mu.Unlock()
	c.sendGoaway()
	err := mayHaveRun(Unavailable, "the client was closed; the call may have run")
	err.shutdown = true
	c.fail(err, notRunShutdown())
	return nil
}

func notRunShutdown() *Error {
	err := notRun(Unavailable, "the client was closed; the call did not run")
	err.shutdown = true
	return err
}

// Shutdown closes the connection gracefully: the server is sent a goaway, no new call starts, and the calls in
// flight are waited for until ctx ends; then the connection closes as with Close.
func (c *Client) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	if c.closeErr != nil {
		c.mu.Unlock()
		return rpc.ErrShutdown
	}
	c.draining = true
	idle := make(chan struct{})
	if len(c.pending) == 0 {
		close(idle)
	} else {
		c.idle = idle
	}
	c.mu.Unlock()
	c.sendGoaway()
	select {
	case <-idle:
	case <-ctx.Done():
	}
	return c.Close()
}

func (c *Client) sendGoaway() {
	frame, start := beginFrame(make([]byte, 0, 40))
	frame = append(frame, 0x94, typeGoaway, 0)
	frame = appendString(frame, string(Unavailable))
	frame = appendString(frame, "client closing")
	endFrame(frame, start)
	c.writer.write(frame)
}

// fail ends the connection: calls still waiting fail with err, except those a goaway said were not taken
// (notRunErr, when given, for ids above lastID is applied by the caller before). Later calls fail with a
// not-run copy of err.
func (c *Client) fail(err *Error, later *Error) {
	c.mu.Lock()
	if c.closeErr != nil {
		c.mu.Unlock()
		return
	}
	if c.closing && !err.shutdown {
		// The server closing in answer to Close's goaway is still this client's Close.
		err, later = mayHaveRun(Unavailable, "the client was closed; the call may have run"), notRunShutdown()
		err.shutdown = true
	}
	if later == nil {
		later = &Error{Code: err.Code, Message: err.Message, MayHaveRun: false, shutdown: err.shutdown}
		later.Message = "the connection is closed (" + err.Message + "); the call did not run: dial again"
	}
	c.closeErr = later
	calls := c.pending
	c.pending = map[uint32]*pendingCall{}
	for _, p := range calls {
		c.endLocked(p)
	}
	c.mu.Unlock()
	close(c.stop)
	// A goaway just queued still goes out: the socket closes once the queue is flushed.
	go func() {
		c.writer.closeAfterFlush()
		c.writer.fail(errors.New(err.Message))
	}()
	for _, p := range calls {
		if !p.abandoned {
			finish(p.call, err)
		}
	}
}

// violate reports a violation by the server: goaway, close, and every waiting call fails UNAVAILABLE.
func (c *Client) violate(v *violation) {
	frame, start := beginFrame(make([]byte, 0, 64+len(v.message)))
	frame = append(frame, 0x94, typeGoaway, 0)
	frame = appendString(frame, string(v.code))
	frame = appendString(frame, v.message)
	endFrame(frame, start)
	c.writer.write(frame)
	c.fail(mayHaveRun(Unavailable, "the server broke wire-v1 (%s); the connection was closed and the call may have run", v.message), nil)
}

func (c *Client) readLoop(frames *frameReader) {
	for {
		payload, err := frames.next()
		if err != nil {
			var v *violation
			if errors.As(err, &v) {
				c.violate(v)
			} else {
				c.fail(mayHaveRun(Unavailable, "the connection to the server was lost (%v); the call may have run", err), nil)
			}
			return
		}
		atomic.StoreInt64(&c.lastRead, time.Now().UnixNano())
		atomic.StoreInt64(&c.pingSentAt, 0)
		if _, v := scanPayload(payload, c.limits); v != nil {
			c.violate(v)
			return
		}
		if v := c.handle(payload); v != nil {
			c.violate(v)
			return
		}
	}
}

func (c *Client) handle(payload []byte) *violation {
	r := cursor{b: payload}
	n, ok := r.arrayLen()
	if !ok || n == 0 {
		return protocolError("a message that is not a non-empty array")
	}
	kind, negative, ok := r.integer()
	if !ok || negative || kind > typeCredit {
		return protocolError("an unknown message type")
	}
	switch kind {
	case typeResponse:
		if n != 4 {
			return protocolError("a response of %d elements; a response has 4", n)
		}
		return c.handleResponse(&r)
	case typePing:
		if n != 2 {
			return protocolError("a ping of %d elements; a ping has 2", n)
		}
		data := r.raw()
		frame, start := beginFrame(make([]byte, 0, 6+len(data)))
		frame = append(append(frame, 0x92, typePong), data...)
		endFrame(frame, start)
		c.writer.write(frame)
		return nil
	case typePong:
		if n != 2 {
			return protocolError("a pong of %d elements; a pong has 2", n)
		}
		return nil
	case typeGoaway:
		if n != 4 {
			return protocolError("a goaway of %d elements; a goaway has 4", n)
		}
		lastID, ok := r.uint32Value()
		if !ok {
			return protocolError("a goaway whose lastId is not an integer from 0 to 4294967295")
		}
		code, okCode := r.str()
		message, okMessage := r.str()
		if !okCode || !okMessage {
			return protocolError("a goaway whose code or message is not a str")
		}
		c.goaway(lastID, Code(code), message)
		return nil
	case typeStream, typeHalfClose, typeCredit:
		return protocolError("a stream frame for no open stream; this client opens none")
	}
	return protocolError("a request, notification or cancel sent by the server")
}

func (c *Client) handleResponse(r *cursor) *violation {
	id, ok := r.uint32Value()
	if !ok {
		return protocolError("a response whose id is not an integer from 0 to 4294967295")
	}
	var wireErr *Error
	if !r.isNil() {
		var v *violation
		if wireErr, v = readWireError(r); v != nil {
			return v
		}
	}
	result := r.raw()
	c.mu.Lock()
	p := c.pending[id]
	if p == nil {
		c.mu.Unlock()
		return protocolError("a response for an id this client never sent or that was already answered")
	}
	delete(c.pending, id)
	if !p.abandoned {
		c.endLocked(p)
	}
	if c.idle != nil && len(c.pending) == 0 {
		close(c.idle)
		c.idle = nil
	}
	c.mu.Unlock()
	if p.abandoned {
		return nil
	}
	if wireErr != nil {
		finish(p.call, wireErr)
		return nil
	}
	var err error
	if p.call.Reply != nil {
		if decodeErr := decodeValue(result, p.call.Reply, false); decodeErr != nil {
			err = mayHaveRun(Internal, "the result of %s does not fit %T: %v; the call ran", p.call.ServiceMethod, p.call.Reply, decodeErr)
		}
	}
	finish(p.call, err)
	return nil
}

// readWireError reads the error map of a response (PROTOCOL.md 5.2).
func readWireError(r *cursor) (*Error, *violation) {
	pairs, ok := r.mapLen()
	if !ok {
		return nil, protocolError("a response error that is neither nil nor a map")
	}
	var code, message string
	var haveCode, haveMessage bool
	var data interface{}
	for i := 0; i < pairs; i++ {
		key, isStr := r.str()
		if !isStr {
			r.raw()
			r.raw()
			continue
		}
		switch key {
		case "code":
			if code, haveCode = r.str(); !haveCode {
				return nil, protocolError("a response error whose code is not a str")
			}
		case "message":
			if message, haveMessage = r.str(); !haveMessage {
				return nil, protocolError("a response error whose message is not a str")
			}
		case "data":
			raw := r.raw()
			if decodeValue(raw, &data, false) != nil {
				data = nil
			}
		default:
			r.raw()
		}
	}
	if !haveCode || !haveMessage {
		return nil, protocolError("a response error without a str code and a str message")
	}
	err := &Error{Code: Code(code), Message: message, MayHaveRun: true, Data: data}
	if !err.Code.Known() {
		err.Code = Unknown
		err.Data = map[string]interface{}{"code": code, "data": data}
	}
	if fields, isMap := data.(map[string]interface{}); isMap {
		if run, isBool := fields["mayHaveRun"].(bool); isBool {
			err.MayHaveRun = run
		}
	}
	return err, nil
}

// goaway applies the server's goaway (PROTOCOL.md 7.2, 7.4): calls above lastID were not taken and fail as not
// run; after UNAVAILABLE the rest are waited for, after any other code the connection closes.
func (c *Client) goaway(lastID uint32, code Code, message string) {
	notTaken := notRun(Unavailable, "the server sent goaway %s before taking the call (%.200s); it did not run and is safe to retry on a new connection", code, message)
	c.mu.Lock()
	c.draining = true
	var refused []*pendingCall
	for id, p := range c.pending {
		if id > lastID {
			delete(c.pending, id)
			c.endLocked(p)
			if !p.abandoned {
				refused = append(refused, p)
			}
		}
	}
	empty := len(c.pending) == 0
	if c.idle != nil && empty {
		close(c.idle)
		c.idle = nil
	}
	c.mu.Unlock()
	for _, p := range refused {
		finish(p.call, notTaken)
	}
	if code != Unavailable {
		c.fail(mayHaveRun(Unavailable, "the server closed the connection with goaway %s (%.200s); the call may have run", code, message), nil)
	} else if empty {
		c.fail(mayHaveRun(Unavailable, "the server is draining (%.200s)", message), notRun(Unavailable, "the server is draining (%.200s); the call did not run: dial again", message))
	}
}

// keepalive pings a server that has been silent for KeepaliveInterval, and gives the connection up when
// KeepaliveTimeout more passes without a frame.
func (c *Client) keepalive() {
	tick := c.options.KeepaliveInterval / 4
	if tick > time.Second {
		tick = time.Second
	} else if tick < time.Millisecond {
		tick = time.Millisecond
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-ticker.C:
			sent := atomic.LoadInt64(&c.pingSentAt)
			if sent != 0 {
				if now.UnixNano()-sent >= int64(c.options.KeepaliveTimeout) {
					c.fail(mayHaveRun(Unavailable, "the server sent nothing for %s after a keepalive ping; the connection was given up and the call may have run", c.options.KeepaliveTimeout), nil)
					return
				}
				continue
			}
			if now.UnixNano()-atomic.LoadInt64(&c.lastRead) >= int64(c.options.KeepaliveInterval) {
				atomic.StoreInt64(&c.pingSentAt, now.UnixNano())
				frame, start := beginFrame(make([]byte, 0, 8))
				frame = append(frame, 0x92, typePing, 0x01)
				endFrame(frame, start)
				c.writer.write(frame)
			}
		}
	}
}
