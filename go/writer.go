package tunnelrpc

import (
	"net"
	"sync"
	"time"
)

// frameWriter serialises whole frames onto one connection. Frames written while another goroutine is in
// conn.Write are queued and go out together in its next Write, so concurrent calls share system calls. A writer
// waits while more than maxBuffer bytes are queued, and a Write that makes no progress for drainTimeout fails the
// connection: a peer that stops reading cannot make this side hold unbounded memory.
type frameWriter struct {
	conn         net.Conn
	maxBuffer    int
	drainTimeout time.Duration
	onError      func(error)

	mu       sync.Mutex
	room     *sync.Cond
	out      []byte
	spare    []byte
	flushing bool
	err      error
}

func newFrameWriter(conn net.Conn, maxBuffer int, drainTimeout time.Duration, onError func(error)) *frameWriter {
	w := &frameWriter{conn: conn, maxBuffer: maxBuffer, drainTimeout: drainTimeout, onError: onError}
	w.room = sync.NewCond(&w.mu)
	return w
}

// write queues one encoded frame (length prefix included) and returns once it is queued or written; the error
// is the connection's write error, if it already failed.
func (w *frameWriter) write(frame []byte) error {
	w.mu.Lock()
	for w.err == nil && w.flushing && len(w.out) > w.maxBuffer {
		w.room.Wait()
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.out = append(w.out, frame...)
	if w.flushing {
		w.mu.Unlock()
		return nil
	}
	w.flushing = true
	for len(w.out) > 0 && w.err == nil {
		batch := w.out
		w.out = w.spare[:0]
		w.mu.Unlock()
		if w.drainTimeout > 0 {
			w.conn.SetWriteDeadline(time.Now().Add(w.drainTimeout))
		}
		_, err := w.conn.Write(batch)
		w.mu.Lock()
		if cap(batch) <= 1<<20 {
			w.spare = batch[:0]
		} else {
			w.spare = nil
		}
		if err != nil {
			w.err = err
		}
		w.room.Broadcast()
	}
	w.flushing = false
	w.room.Broadcast()
	err := w.err
	w.mu.Unlock()
	if err != nil && w.onError != nil {
		w.onError(err)
	}
	return err
}

// fail makes every later write return err and wakes writers waiting for room.
func (w *frameWriter) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.room.Broadcast()
	w.mu.Unlock()
}

// closeAfterFlush closes the connection once every queued frame has been written (or writing failed), so that a
// goaway or a last response is not cut off.
func (w *frameWriter) closeAfterFlush() {
	w.mu.Lock()
	for w.err == nil && w.flushing {
		w.room.Wait()
	}
	w.mu.Unlock()
	w.conn.Close()
}
