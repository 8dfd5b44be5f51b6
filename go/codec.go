package tunnelrpc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// serverConn is one tunnel: it is the rpc.ServerCodec that net/rpc's ServeCodec reads requests from and writes
// responses to, and it handles everything of wire-v1 that net/rpc does not know (pings, cancels, deadlines,
// goaway, notifications, limits) on the way.
//
// net/rpc reads one request at a time (ReadRequestHeader, then ReadRequestBody), runs each method in its own
// goroutine and calls WriteResponse when the method returns. So Seq numbers are the codec's own, one per call
// taken, and the wire id is looked up from them: a call answered early (CANCELLED, DEADLINE_EXCEEDED) frees its
// wire id at once, and the method's late WriteResponse finds the call answered and is dropped.
type serverConn struct {
	handler *Handler
	conn    net.Conn
	frames  *frameReader
	writer  *frameWriter
	limits  scanLimits
	opts    *ServerOptions

	mu         sync.Mutex
	room       *sync.Cond // signalled when a call ends or the connection closes
	calls      map[uint64]*serverCall
	byID       map[uint32]*serverCall // requests taken and not yet answered
	nextSeq    uint64
	lastID     uint32
	running    int // calls and notifications whose method has not returned
	draining   bool
	closed     bool
	current    *serverCall // the call between ReadRequestHeader and ReadRequestBody
	lastRead   time.Time
	lastWrite  time.Time
	lastPing   time.Time
	strikes    int
	pingSentAt time.Time
}

type serverCall struct {
	id           uint32
	method       string
	notification bool
	answered     bool
	params       []byte
	timer        *time.Timer
	timeout      time.Duration
	unknown      bool // net/rpc found no such service or method
	badParams    bool // the params did not decode into the method's argument
}

func newServerConn(handler *Handler, conn net.Conn, frames *frameReader) *serverConn {
	opts := &handler.options
	c := &serverConn{
		handler:  handler,
		conn:     conn,
		frames:   frames,
		limits:   scanLimits{maxDepth: opts.MaxDepth, maxItems: opts.MaxItemsPerFrame},
		opts:     opts,
		calls:    make(map[uint64]*serverCall),
		byID:     make(map[uint32]*serverCall),
		lastRead: time.Now(),
	}
	c.lastWrite = c.lastRead
	c.room = sync.NewCond(&c.mu)
	c.writer = newFrameWriter(conn, opts.MaxWriteBuffer, opts.DrainTimeout, func(error) { c.close() })
	c.writer.async = true
	return c
}

// errConnectionDone ends net/rpc's read loop; ServeCodec then waits for its methods and calls Close.
var errConnectionDone = io.EOF

// ReadRequestHeader returns the next request or notification for net/rpc, handling every other frame itself.
func (c *serverConn) ReadRequestHeader(req *rpc.Request) error {
	for {
		c.mu.Lock()
		for !c.closed && c.running >= c.opts.MaxInFlight {
			c.room.Wait() // back-pressure: the socket is not read while the connection's calls are all busy
		}
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return errConnectionDone
		}
		payload, err := c.frames.next()
		if err != nil {
			var v *violation
			if errors.As(err, &v) {
				c.violate(v)
			} else {
				// A FIN is a client goaway (PROTOCOL.md 7.3): answer what was taken, then close.
				c.drain(false, "")
			}
			return errConnectionDone
		}
		now := time.Now()
		c.mu.Lock()
		c.lastRead = now
		c.pingSentAt = time.Time{}
		c.mu.Unlock()
		scanned, v := scanPayload(payload, c.limits)
		if v == nil {
			var call *serverCall
			call, v = c.handleFrame(payload, scanned)
			if v == nil && call != nil {
				req.ServiceMethod = goMethodName(call.method)
				c.mu.Lock()
				req.Seq = c.nextSeq
				c.mu.Unlock()
				return nil
			}
		}
		if v != nil {
			c.violate(v)
			return errConnectionDone
		}
	}
}

// ReadRequestBody decodes the params of the request just read into the method's argument; body is nil when
// net/rpc found no such method and discards them.
func (c *serverConn) ReadRequestBody(body interface{}) error {
	c.mu.Lock()
	call := c.current
	c.current = nil
	c.mu.Unlock()
	if call == nil {
		return nil
	}
	if body == nil {
		call.unknown = true
		return nil
	}
	params := call.params
	call.params = nil
	if err := decodeValue(params, body, c.opts.StrictParams); err != nil {
		call.badParams = true
		return err
	}
	return nil
}

// WriteResponse sends a method's answer, unless the call was already answered (cancelled or past its deadline)
// or was a notification.
func (c *serverConn) WriteResponse(r *rpc.Response, body interface{}) error {
	c.mu.Lock()
	call := c.calls[r.Seq]
	delete(c.calls, r.Seq)
	if call == nil {
		c.mu.Unlock()
		return nil
	}
	c.running--
	c.handler.endCall()
	c.room.Broadcast()
	if call.notification || call.answered || c.closed {
		c.mu.Unlock()
		if !call.notification && r.Error != "" && !call.unknown && !call.badParams {
			c.logMethodError(call, r.Error)
		}
		return nil
	}
	c.answerLocked(call)
	// With other calls running, more answers are due soon: the writer goroutine sends them together. The last
	// one running is written at once, which saves a goroutine switch on a call-at-a-time connection.
	alone := c.running == 0
	c.mu.Unlock()
	var frame []byte
	if r.Error != "" {
		frame = encodeErrorResponse(call.id, c.methodError(call, r.Error))
	} else {
		frame = c.encodeResult(call, body)
	}
	c.mu.Lock()
	c.lastWrite = time.Now()
	c.mu.Unlock()
	c.writer.writeFrame(frame, !alone)
	c.drainCheck()
	return nil
}

// Close ends the connection; net/rpc calls it once every method has returned.
func (c *serverConn) Close() error {
	c.close()
	return nil
}

func (c *serverConn) send(frame []byte) {
	c.mu.Lock()
	c.lastWrite = time.Now()
	c.mu.Unlock()
	c.writer.write(frame)
}

// answerLocked marks a call answered: its id is free again and its timer stops.
func (c *serverConn) answerLocked(call *serverCall) {
	call.answered = true
	if c.byID[call.id] == call {
		delete(c.byID, call.id)
	}
	if call.timer != nil {
		call.timer.Stop()
	}
}

func (c *serverConn) encodeResult(call *serverCall, body interface{}) []byte {
	frame, start := beginFrame(getFrameBuffer())
	frame = appendUint(append(frame, 0x94, typeResponse), uint64(call.id))
	frame = append(frame, msgpackNil)
	frame, err := appendValue(frame, body)
	if err != nil {
		putFrameBuffer(frame)
		c.handler.logf("tunnelrpc: the result of %s could not be encoded as MessagePack: %v", quotePeerText(call.method, 200), err)
		return encodeErrorResponse(call.id, mayHaveRun(Internal, "the result of %s could not be encoded; the server logged the details", quotePeerText(call.method, 200)))
	}
	if size := len(frame) - start - 4; size > int(c.opts.MaxFrameSize) {
		putFrameBuffer(frame)
		e := mayHaveRun(ResourceExhausted, "the result of %s is %d bytes, over maxFrameSize %d; ask for less or raise maxFrameSize on both peers", quotePeerText(call.method, 200), size, c.opts.MaxFrameSize)
		e.Data = map[string]interface{}{"size": size, "maxFrameSize": c.opts.MaxFrameSize, "mayHaveRun": true}
		return encodeErrorResponse(call.id, e)
	}
	endFrame(frame, start)
	return frame
}

// methodError maps the text net/rpc hands over for a failed call onto a coded error (README "From net/rpc").
func (c *serverConn) methodError(call *serverCall, text string) *Error {
	method := quotePeerText(call.method, 200)
	switch {
	case call.unknown:
		return notRun(Unimplemented, "method %s is not implemented by this server; check the service and method name", method)
	case call.badParams:
		return notRun(InvalidArgument, "invalid params for %s: %s", method, quotePeerText(strings.TrimPrefix(text, "msgpack: "), 200))
	}
	if code, message, ok := parseCodedText(text); ok {
		return &Error{Code: code, Message: message, MayHaveRun: true}
	}
	c.logMethodError(call, text)
	if c.opts.ExposeErrors {
		return mayHaveRun(Internal, "%s", text)
	}
	return mayHaveRun(Internal, "internal error in %s; the server logged the details", method)
}

func (c *serverConn) logMethodError(call *serverCall, text string) {
	if _, _, coded := parseCodedText(text); !coded {
		c.handler.logf("tunnelrpc: %s returned an error: %s", quotePeerText(call.method, 200), text)
	}
}

// encodeErrorResponse encodes [1, id, {code, message, data}, nil]; data is e.Data when it is a map (mayHaveRun
// set in it), or {mayHaveRun}.
func encodeErrorResponse(id uint32, e *Error) []byte {
	frame, start := beginFrame(make([]byte, 0, 96+len(e.Message)))
	frame = appendUint(append(frame, 0x94, typeResponse), uint64(id))
	frame = appendMapHeader(frame, 3)
	frame = appendString(frame, "code")
	frame = appendString(frame, string(e.Code))
	frame = appendString(frame, "message")
	frame = appendString(frame, e.Message)
	frame = appendString(frame, "data")
	if data, ok := e.Data.(map[string]interface{}); ok {
		data["mayHaveRun"] = e.MayHaveRun
		encoded, err := appendValue(frame, data)
		if err == nil {
			frame = encoded
		} else {
			frame = appendBool(appendString(appendMapHeader(frame, 1), "mayHaveRun"), e.MayHaveRun)
		}
	} else {
		frame = appendBool(appendString(appendMapHeader(frame, 1), "mayHaveRun"), e.MayHaveRun)
	}
	frame = append(frame, msgpackNil)
	endFrame(frame, start)
	return frame
}

// handleFrame acts on one scanned message. It returns the call to hand to net/rpc, if the frame was a request or
// notification taken for it.
func (c *serverConn) handleFrame(payload []byte, scanned scanResult) (*serverCall, *violation) {
	r := cursor{b: payload}
	n, ok := r.arrayLen()
	if !ok || n == 0 {
		return nil, protocolError("a message that is not a non-empty array")
	}
	kind, negative, ok := r.integer()
	if !ok || negative || kind > typeCredit {
		return nil, protocolError("an unknown message type; wire-v1 defines 0 to 9")
	}
	switch kind {
	case typeRequest, typeNotification:
		return c.handleCall(&r, n, kind == typeNotification, scanned, len(payload))
	case typeCancel:
		if n != 2 {
			return nil, protocolError("a cancel of %d elements; a cancel has 2", n)
		}
		id, ok := r.uint32Value()
		if !ok {
			return nil, protocolError("a cancel whose id is not an integer from 0 to 4294967295")
		}
		c.answerEarly(id, func(call *serverCall) *Error {
			return mayHaveRun(Canceled, "call %s was cancelled by the client", quotePeerText(call.method, 200))
		})
		return nil, nil
	case typePing:
		if n != 2 {
			return nil, protocolError("a ping of %d elements; a ping has 2", n)
		}
		data := r.raw()
		if len(data) > maxPingData {
			return nil, protocolError("ping data of %d bytes; a ping carries at most %d", len(data), maxPingData)
		}
		if v := c.countPing(); v != nil {
			return nil, v
		}
		frame, start := beginFrame(make([]byte, 0, 6+len(data)))
		frame = append(append(frame, 0x92, typePong), data...)
		endFrame(frame, start)
		c.send(frame)
		return nil, nil
	case typePong:
		if n != 2 {
			return nil, protocolError("a pong of %d elements; a pong has 2", n)
		}
		return nil, nil
	case typeGoaway:
		if n != 4 {
			return nil, protocolError("a goaway of %d elements; a goaway has 4", n)
		}
		if _, ok := r.uint32Value(); !ok {
			return nil, protocolError("a goaway whose lastId is not an integer from 0 to 4294967295")
		}
		code, okCode := r.str()
		_, okMessage := r.str()
		if !okCode || !okMessage {
			return nil, protocolError("a goaway whose code or message is not a str")
		}
		if Code(code) != Unavailable {
			c.close() // a violation goaway is never answered (PROTOCOL.md 7.4)
			return nil, nil
		}
		c.drain(false, "")
		return nil, nil
	case typeStream, typeHalfClose, typeCredit:
		return nil, c.handleStreamFrame(&r, n, kind)
	}
	return nil, protocolError("a response sent by the client")
}

// handleStreamFrame: this server opens no stream, so a stream frame is either late for a call already answered
// (dropped, PROTOCOL.md 12.2) or a violation (12.6).
func (c *serverConn) handleStreamFrame(r *cursor, n int, kind uint64) *violation {
	arityOK := (kind == typeStream && n == 3) || (kind == typeHalfClose && n == 2) || (kind == typeCredit && (n == 3 || n == 4))
	if !arityOK {
		return protocolError("a stream frame of the wrong arity")
	}
	id, ok := r.uint32Value()
	if !ok {
		return protocolError("a stream frame whose id is not an integer from 0 to 4294967295")
	}
	c.mu.Lock()
	_, inFlight := c.byID[id]
	lastID := c.lastID
	c.mu.Unlock()
	if inFlight || id > lastID {
		return protocolError("a stream frame for a unary call or for an id no request opened")
	}
	return nil
}

func (c *serverConn) countPing() *violation {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.running == 0 && !c.lastPing.IsZero() && now.Sub(c.lastPing) < c.opts.MinPingInterval {
		c.strikes++
		if c.strikes > c.opts.MaxPingStrikes {
			return &violation{code: ResourceExhausted, message: fmt.Sprintf("pings more often than one per %s while no call runs; ping less often", c.opts.MinPingInterval)}
		}
	}
	c.lastPing = now
	return nil
}

type callMeta struct {
	timeout    time.Duration
	hasTimeout bool
	refusal    *Error
}

func (c *serverConn) handleCall(r *cursor, n int, notification bool, scanned scanResult, size int) (*serverCall, *violation) {
	var id uint32
	if notification {
		if n != 3 && n != 4 {
			return nil, protocolError("a notification of %d elements; a notification has 3 or 4", n)
		}
	} else {
		if n != 4 && n != 5 {
			return nil, protocolError("a request of %d elements; a request has 4 or 5", n)
		}
		var ok bool
		if id, ok = r.uint32Value(); !ok {
			return nil, protocolError("a request whose id is not an integer from 0 to 4294967295")
		}
	}
	method, ok := r.str()
	if !ok {
		return nil, protocolError("a method that is not a str")
	}
	params := r.raw()
	meta := callMeta{}
	if (notification && n == 4) || (!notification && n == 5) {
		var v *violation
		if meta, v = c.readMeta(r); v != nil {
			return nil, v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining || c.closed {
		return nil, nil // after a goaway: dropped unanswered, its id above lastId (PROTOCOL.md 7.2)
	}
	if !notification {
		if _, dup := c.byID[id]; dup {
			return nil, protocolError("request id %d is already in flight on this connection", id)
		}
		if id > c.lastID {
			c.lastID = id
		}
	}
	c.strikes = 0
	call := &serverCall{id: id, method: method, notification: notification, params: params}
	refusal := meta.refusal
	if refusal == nil && meta.hasTimeout && meta.timeout == 0 {
		refusal = notRun(DeadlineExceeded, "%s arrived with a deadline of 0 ms and was not run", quotePeerText(method, 200))
	}
	if refusal == nil && scanned.maxKeys > c.opts.MaxKeysPerMap {
		refusal = notRun(InvalidArgument, "a map in the request holds %d keys, over maxKeysPerMap %d; send large collections as arrays", scanned.maxKeys, c.opts.MaxKeysPerMap)
		refusal.Data = map[string]interface{}{"maxKeysPerMap": c.opts.MaxKeysPerMap}
	}
	if refusal == nil && !c.handler.startCall() {
		refusal = notRun(ResourceExhausted, "the server runs %d calls already (maxCallsInFlight); retry with backoff", c.opts.MaxCallsInFlight)
		refusal.Data = map[string]interface{}{"limit": "maxCallsInFlight"}
	}
	if refusal != nil {
		if notification {
			c.handler.logf("tunnelrpc: notification %s dropped: %s", quotePeerText(method, 200), refusal.Message)
			return nil, nil
		}
		c.mu.Unlock()
		c.send(encodeErrorResponse(id, refusal))
		c.mu.Lock()
		return nil, nil
	}
	timeout := c.opts.DefaultTimeout
	if meta.hasTimeout {
		timeout = meta.timeout
	}
	if timeout > c.opts.MaxTimeout {
		timeout = c.opts.MaxTimeout
	}
	call.timeout = timeout
	c.nextSeq++
	c.calls[c.nextSeq] = call
	c.running++
	c.current = call
	if !notification {
		c.byID[id] = call
		call.timer = time.AfterFunc(timeout, func() {
			c.answerEarly(id, func(call *serverCall) *Error {
				return mayHaveRun(DeadlineExceeded, "%s passed its deadline of %d ms", quotePeerText(call.method, 200), call.timeout.Milliseconds())
			})
		})
	}
	return call, nil
}

// readMeta reads a request's meta (PROTOCOL.md 5.1): a malformed one is a violation, headers that break the
// rules refuse the call alone.
func (c *serverConn) readMeta(r *cursor) (callMeta, *violation) {
	var meta callMeta
	if r.isNil() {
		return meta, nil
	}
	pairs, ok := r.mapLen()
	if !ok {
		return meta, protocolError("meta that is neither nil nor a map")
	}
	for i := 0; i < pairs; i++ {
		key, isStr := r.str()
		if !isStr {
			r.raw()
			r.raw()
			continue
		}
		switch key {
		case "timeout":
			if r.isNil() {
				continue
			}
			value, negative, ok := r.integer()
			if !ok || negative {
				return meta, protocolError("meta.timeout that is neither nil nor a non-negative integer")
			}
			meta.hasTimeout = true
			if value > uint64(c.opts.MaxTimeout.Milliseconds()) {
				value = uint64(c.opts.MaxTimeout.Milliseconds())
			}
			meta.timeout = time.Duration(value) * time.Millisecond
		case "headers":
			if r.isNil() {
				continue
			}
			count, ok := r.mapLen()
			if !ok {
				return meta, protocolError("meta.headers that is neither nil nor a map")
			}
			seen := make(map[string]bool, count)
			bytes := 0
			for j := 0; j < count; j++ {
				name, okName := r.str()
				value, okValue := r.str()
				if !okName || !okValue {
					return meta, protocolError("meta.headers that is not a map of str to str")
				}
				lower := strings.ToLower(name)
				bytes += len(name) + len(value)
				if seen[lower] && meta.refusal == nil {
					meta.refusal = notRun(InvalidArgument, "header %s is sent twice (names are case-insensitive)", quotePeerText(lower, 64))
				}
				seen[lower] = true
			}
			if meta.refusal == nil && count > c.opts.MaxHeaderCount {
				meta.refusal = notRun(InvalidArgument, "%d headers, over maxHeaderCount %d", count, c.opts.MaxHeaderCount)
				meta.refusal.Data = map[string]interface{}{"maxHeaderCount": c.opts.MaxHeaderCount}
			}
			if meta.refusal == nil && bytes > c.opts.MaxHeaderBytes {
				meta.refusal = notRun(InvalidArgument, "%d bytes of headers, over maxHeaderBytes %d", bytes, c.opts.MaxHeaderBytes)
				meta.refusal.Data = map[string]interface{}{"maxHeaderBytes": c.opts.MaxHeaderBytes}
			}
		case "credit", "maxMessageSize":
			if r.isNil() {
				continue
			}
			value, negative, ok := r.integer()
			low, high := uint64(0), uint64(2147483647)
			if key == "maxMessageSize" {
				low, high = 1, 4294967295
			}
			if !ok || negative || value < low || value > high {
				return meta, protocolError("meta.%s out of its range", key)
			}
		default:
			r.raw()
		}
	}
	return meta, nil
}

// answerEarly answers a call in flight before its method returns (cancel, deadline); the method's result is
// dropped when it comes. An id not in flight is ignored.
func (c *serverConn) answerEarly(id uint32, makeError func(*serverCall) *Error) {
	c.mu.Lock()
	call := c.byID[id]
	if call == nil || c.closed {
		c.mu.Unlock()
		return
	}
	c.answerLocked(call)
	c.mu.Unlock()
	c.send(encodeErrorResponse(id, makeError(call)))
	c.drainCheck()
}

// drain stops taking calls: with sendGoaway, the client is told the highest id taken. The connection closes once
// every call taken is answered.
func (c *serverConn) drain(sendGoaway bool, message string) {
	c.mu.Lock()
	if c.closed || (c.draining && !sendGoaway) {
		c.mu.Unlock()
		return
	}
	c.draining = true
	lastID := c.lastID
	c.mu.Unlock()
	if sendGoaway {
		c.send(encodeGoaway(lastID, Unavailable, message))
	}
	c.drainCheck()
}

func (c *serverConn) drainCheck() {
	c.mu.Lock()
	done := c.draining && !c.closed && len(c.byID) == 0
	c.mu.Unlock()
	if done {
		c.close()
	}
}

func encodeGoaway(lastID uint32, code Code, message string) []byte {
	frame, start := beginFrame(make([]byte, 0, 32+len(message)))
	frame = appendUint(append(frame, 0x94, typeGoaway), uint64(lastID))
	frame = appendString(frame, string(code))
	frame = appendString(frame, message)
	endFrame(frame, start)
	return frame
}

// violate sends goaway with the violation's code and closes at once (PROTOCOL.md 7.4).
func (c *serverConn) violate(v *violation) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	lastID := c.lastID
	c.mu.Unlock()
	c.send(encodeGoaway(lastID, v.code, v.message))
	c.close()
}

// close ends the connection after the queued frames are flushed; calls still running are abandoned.
func (c *serverConn) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	for _, call := range c.byID {
		if call.timer != nil {
			call.timer.Stop()
		}
	}
	c.room.Broadcast()
	c.mu.Unlock()
	c.handler.forget(c)
	go c.writer.closeAfterFlush()
}

// watch runs the connection's timers once a second: the idle timeout, and keepalive pings while calls run.
func (c *serverConn) watch() {
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for now := range ticker.C {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		busy := len(c.byID) > 0 || c.running > 0
		lastFrame := c.lastRead
		if c.lastWrite.After(lastFrame) {
			lastFrame = c.lastWrite
		}
		idle := !busy && now.Sub(lastFrame) >= c.opts.IdleTimeout
		silentAfterPing := !c.pingSentAt.IsZero() && now.Sub(c.pingSentAt) >= c.opts.KeepaliveTimeout
		needPing := busy && c.pingSentAt.IsZero() && now.Sub(c.lastRead) >= c.opts.KeepaliveInterval
		if needPing {
			c.pingSentAt = now
		}
		lastID := c.lastID
		c.mu.Unlock()
		switch {
		case idle:
			c.send(encodeGoaway(lastID, Unavailable, fmt.Sprintf("connection idle for %s; reconnect for the next call", c.opts.IdleTimeout)))
			c.close()
			return
		case silentAfterPing:
			c.close()
			return
		case needPing:
			frame, start := beginFrame(make([]byte, 0, 8))
			frame = append(frame, 0x92, typePing, 0x01)
			endFrame(frame, start)
			c.send(frame)
		}
	}
}

// quotePeerText quotes text a peer chose for a message or log line: bounded to bound characters, control,
// line-separator and bidi characters written as \uXXXX, so that it can forge no log line (PROTOCOL.md 5.2).
func quotePeerText(text string, bound int) string {
	var b strings.Builder
	b.WriteByte('"')
	count := utf8.RuneCountInString(text)
	written := 0
	for _, r := range text {
		if written == bound {
			break
		}
		written++
		switch {
		case r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0x2028 || r == 0x2029 || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == utf8.RuneError:
			fmt.Fprintf(&b, "\\u%04x", r)
		case r == '"':
			b.WriteString("\\\"")
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	if count > bound {
		fmt.Fprintf(&b, "…(%d chars)", count)
	}
	return b.String()
}

// goMethodName maps a wire method name onto the exported Go method net/rpc looks up: "Arith.multiply", the
// TypeScript convention, reaches Arith.Multiply. A name already capitalised is unchanged.
func goMethodName(method string) string {
	dot := strings.LastIndexByte(method, '.')
	if dot < 0 || dot+1 >= len(method) {
		return method
	}
	if first := method[dot+1]; first >= 'a' && first <= 'z' {
		return method[:dot+1] + string(first-'a'+'A') + method[dot+2:]
	}
	return method
}
