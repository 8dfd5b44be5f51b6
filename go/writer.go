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
	// async hands each burst of frames to a goroutine of its own instead of writing in the caller. net/rpc
	// serialises WriteResponse under its own lock, so a server writing inline would make one system call per
	// response; written by a goroutine, the responses that queue meanwhile go out together.
	async bool

	mu       sync.Mutex
	room     *sync.Cond
	queue    [][]byte // frames waiting, owned by the writer from write() on
	queued   int      // their bytes
	spare    [][]byte
	flushing bool
	err      error
}

func newFrameWriter(conn net.Conn, maxBuffer int, drainTimeout time.Duration, onError func(error)) *frameWriter {
	w := &frameWriter{conn: conn, maxBuffer: maxBuffer, drainTimeout: drainTimeout, onError: onError}
	w.room = sync.NewCond(&w.mu)
	return w
}

// write queues one encoded frame (length prefix included) and returns once it is queued or written; the error
// is the connection's write error, if it already failed. The frame belongs to the writer from then on: it goes
// out as it is (no copy; a batch is one writev) and its buffer back to framePool.
func (w *frameWriter) write(frame []byte) error {
	return w.writeFrame(frame, w.async)
}

// writeFrame is write, choosing for this frame whether a goroutine of its own sends it.
func (w *frameWriter) writeFrame(frame []byte, async bool) error {
	w.mu.Lock()
	for w.err == nil && w.flushing && w.queued > w.maxBuffer {
		w.room.Wait()
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.queue = append(w.queue, frame)
	w.queued += len(frame)
	if w.flushing {
		w.mu.Unlock()
		return nil
	}
	w.flushing = true
	if async {
		w.mu.Unlock()
		go w.flush()
		return nil
	}
	w.mu.Unlock()
	return w.flush()
}

// flush writes what is queued, and what is queued meanwhile, until nothing is left.
func (w *frameWriter) flush() error {
	w.mu.Lock()
	for len(w.queue) > 0 && w.err == nil {
		batch := w.queue
		w.queue = w.spare[:0]
		w.queued = 0
		w.mu.Unlock()
		if w.drainTimeout > 0 {
			w.conn.SetWriteDeadline(time.Now().Add(w.drainTimeout))
		}
		var err error
		if len(batch) == 1 {
			_, err = w.conn.Write(batch[0])
			putFrameBuffer(batch[0])
		} else {
			// WriteTo empties the slice it is given, so the frames are recycled from batch itself.
			buffers := append(net.Buffers(nil), batch...)
			_, err = buffers.WriteTo(w.conn)
			for _, frame := range batch {
				putFrameBuffer(frame)
			}
		}
		for i := range batch {
			batch[i] = nil
		}
		w.mu.Lock()
		w.spare = batch[:0]
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
