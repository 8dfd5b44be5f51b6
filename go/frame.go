package tunnelrpc

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// frameReader reads frames (PROTOCOL.md section 3) from the bytes behind a handshake head, including those that
// arrived with it: r is the reader the head was parsed from.
type frameReader struct {
	r            *bufio.Reader
	conn         net.Conn // for the frame completion deadline
	maxFrameSize uint32
	frameTimeout time.Duration
	buf          []byte
	header       [4]byte
}

// initialFrameBuffer is where a frame buffer starts; it doubles as bytes arrive, so that a header announcing 8 MiB
// and then silence pins 64 KiB, not 8 MiB.
const initialFrameBuffer = 64 << 10

// next returns the payload of the next frame; it is valid until the following call. A bad length is a *violation.
func (f *frameReader) next() ([]byte, error) {
	if _, err := io.ReadFull(f.r, f.header[:]); err != nil {
		return nil, err
	}
	length := binary.BigEndian.Uint32(f.header[:])
	if length == 0 {
		return nil, protocolError("zero-length frame; every frame carries one MessagePack value")
	}
	if length > f.maxFrameSize {
		return nil, &violation{code: ResourceExhausted, message: fmt.Sprintf("frame of %d bytes received exceeds maxFrameSize %d; raise maxFrameSize on both peers or send smaller values", length, f.maxFrameSize)}
	}
	if int(length) > f.r.Buffered() && f.conn != nil && f.frameTimeout > 0 {
		f.conn.SetReadDeadline(time.Now().Add(f.frameTimeout))
		defer f.conn.SetReadDeadline(time.Time{})
	}
	if cap(f.buf) > 1<<20 && length <= 1<<20 {
		f.buf = nil // let one large frame's buffer go instead of pinning it for the connection's life
	}
	f.buf = f.buf[:0]
	for uint32(len(f.buf)) < length {
		if len(f.buf) == cap(f.buf) {
			size := 2 * cap(f.buf)
			if size < initialFrameBuffer {
				size = initialFrameBuffer
			}
			if size > int(length) {
				size = int(length)
			}
			grown := make([]byte, len(f.buf), size)
			copy(grown, f.buf)
			f.buf = grown
		}
		end := cap(f.buf)
		if end > int(length) {
			end = int(length)
		}
		n, err := f.r.Read(f.buf[len(f.buf):end])
		f.buf = f.buf[:len(f.buf)+n]
		if err != nil && uint32(len(f.buf)) < length {
			if isTimeout(err) {
				return nil, protocolError("frame of %d bytes not complete within frameTimeout %s", length, f.frameTimeout)
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return f.buf, nil
}

func isTimeout(err error) bool {
	netErr, ok := err.(net.Error)
	return ok && netErr.Timeout()
}
