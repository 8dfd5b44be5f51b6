package tunnelrpc

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// connectedReply is the exact success reply of PROTOCOL.md 2.2; upgradedReply that of 2.5.
const (
	connectedReply = "HTTP/1.0 200 Connected\r\n\r\n"
	upgradedReply  = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: tunnelrpc\r\nConnection: Upgrade\r\n\r\n"
)

// refusalMarker is the header every refusal a tunnelrpc server writes carries (PROTOCOL.md 2.3).
const refusalMarker = "Tunnelrpc-Server"

// appendRequestHead writes the CONNECT head (PROTOCOL.md 2.1), or the GET + Upgrade head of 2.5.
func appendRequestHead(b []byte, path, host string, header http.Header, upgrade bool) []byte {
	if upgrade {
		b = append(b, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\n"...)
	} else {
		b = append(b, "CONNECT "+path+" HTTP/1.0\r\nHost: "+host+"\r\n"...)
	}
	for name, values := range header {
		for _, value := range values {
			b = append(b, name+": "+value+"\r\n"...)
		}
	}
	if upgrade {
		b = append(b, "Connection: Upgrade\r\nUpgrade: tunnelrpc\r\n"...)
	}
	return append(b, "\r\n"...)
}

// readReplyHead reads the server's reply head from r, leniently as PROTOCOL.md 2.2 asks (HTTP/1.0 or 1.1, any
// reason, headers ignored, CRLF or bare LF), at most maxHeadSize bytes. It consumes exactly the head: the bytes
// behind it stay in r for the frame decoder. A refusal is returned as the *Error of PROTOCOL.md 2.4.
func readReplyHead(r *bufio.Reader, maxHeadSize int, upgrade bool) error {
	var head []byte
	for {
		line, err := r.ReadSlice('\n')
		head = append(head, line...)
		if len(head) > maxHeadSize {
			return notRun(Unavailable, "the server's reply head passed %d bytes without ending; the address is not a tunnelrpc endpoint", maxHeadSize)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return notRun(Unavailable, "the connection closed during the handshake (%v); the calls did not run", err)
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 && len(head) > len(line) {
			break
		}
	}
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	status, ok := parseStatusLine(lines[0])
	if !ok {
		return notRun(Unavailable, "the server's reply is not HTTP (%.40q); the address is not a tunnelrpc endpoint", lines[0])
	}
	headers := map[string]string{}
	for _, line := range lines[1:] {
		if colon := strings.IndexByte(line, ':'); colon > 0 {
			headers[strings.ToLower(strings.TrimSpace(line[:colon]))] = strings.TrimSpace(line[colon+1:])
		}
	}
	switch {
	case status == 200 && !upgrade:
		return nil
	case status == 101 && upgrade && strings.EqualFold(headers["upgrade"], "tunnelrpc"):
		return nil
	case status == 101 || (status >= 200 && status < 300):
		return notRun(Unavailable, "the server answered %d, which does not open a tunnelrpc tunnel; the address is not a tunnelrpc endpoint", status)
	}
	body := readRefusalBody(r, headers["content-length"])
	who := "the server"
	if _, marked := headers[strings.ToLower(refusalMarker)]; !marked {
		who = "a proxy between here and the server (or a server that is not tunnelrpc)"
	}
	hint := ""
	if !upgrade && headers[strings.ToLower(refusalMarker)] == "" {
		hint = "; if a proxy refuses CONNECT, dial with ClientOptions.Upgrade"
	}
	err := notRun(codeFromStatus(status), "%s refused the tunnel with HTTP %d%s", who, status, hint)
	err.Data = map[string]interface{}{"status": status, "body": body, "mayHaveRun": false}
	return err
}

func parseStatusLine(line string) (int, bool) {
	if !strings.HasPrefix(line, "HTTP/1.0 ") && !strings.HasPrefix(line, "HTTP/1.1 ") {
		return 0, false
	}
	rest := line[len("HTTP/1.x "):]
	if len(rest) < 3 || (len(rest) > 3 && rest[3] != ' ') {
		return 0, false
	}
	status, err := strconv.Atoi(rest[:3])
	if err != nil || status < 100 {
		return 0, false
	}
	return status, true
}

// readRefusalBody reads up to 1 KiB of a refusal's body, delimited by Content-Length or the connection closing.
func readRefusalBody(r io.Reader, contentLength string) string {
	limit := int64(1024)
	if n, err := strconv.ParseInt(contentLength, 10, 64); err == nil && n >= 0 && n < limit {
		limit = n
	}
	body, _ := io.ReadAll(io.LimitReader(r, limit))
	return string(body)
}
