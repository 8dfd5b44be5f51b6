/**
 * The kernel's view of a TCP connection, as Linux's getsockopt(fd, IPPROTO_TCP, TCP_INFO) fills `struct tcp_info`
 * (linux/tcp.h). Pure: bytes in, fields out. The server and client hand in libc's getsockopt, which they bind with the
 * optional koffi, so this module never loads native code. Offsets, all fields native-endian:
 *
 *   0  u8  state, ca_state, retransmits, probes, backoff, options, wscales, flags
 *   8  u32 rto, ato, snd_mss, rcv_mss
 *  24  u32 unacked, sacked, lost, retrans, fackets
 *  44  u32 last_data_sent, last_ack_sent, last_data_recv, last_ack_recv
 *  60  u32 pmtu, rcv_ssthresh, rtt (µs), rttvar (µs), snd_ssthresh, snd_cwnd, advmss, reordering
 *  92  u32 rcv_rtt, rcv_space, total_retrans
 * 104  u64 pacing_rate, max_pacing_rate, bytes_acked, bytes_received   (Linux 4.1+; 136 bytes up to here)
 */

import { endianness } from 'node:os';

/** TcpInfo is what the kernel says of one TCP connection, read on demand (Linux, with the optional koffi). */
export interface TcpInfo {
  /** Smoothed round-trip time in ms (the kernel keeps µs). */
  readonly rtt: number;
  /** Its mean deviation in ms. */
  readonly rttVariance: number;
  /** Retransmission timeouts in a row without an acknowledgment now (0 on a healthy connection). */
  readonly retransmits: number;
  /** Segments retransmitted over the connection's life. */
  readonly totalRetransmits: number;
  /** Congestion window, in segments. */
  readonly congestionWindow: number;
  /** Segments sent and not yet acknowledged. */
  readonly unacked: number;
  /** Segments the kernel counts as lost now. */
  readonly lost: number;
  /** Bytes the peer acknowledged. */
  readonly bytesAcked: number;
  /** Bytes received from the peer. */
  readonly bytesReceived: number;
}

/** TCP_INFO_MIN_SIZE is how many bytes of struct tcp_info parseTcpInfo needs (Linux 4.1 and later give more). */
export const TCP_INFO_MIN_SIZE = 136;

/**
 * parseTcpInfo reads the fields of TcpInfo from the first `length` bytes of a struct tcp_info; undefined when the
 * kernel gave fewer than TCP_INFO_MIN_SIZE. `littleEndian` is the machine's byte order (the struct is native).
 * @internal
 */
export function parseTcpInfo(bytes: Uint8Array, length: number, littleEndian = true): TcpInfo | undefined {
  if (length < TCP_INFO_MIN_SIZE || bytes.byteLength < TCP_INFO_MIN_SIZE) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, TCP_INFO_MIN_SIZE);
  const u32 = (offset: number): number => view.getUint32(offset, littleEndian);
  const u64 = (offset: number): number => Number(view.getBigUint64(offset, littleEndian));
  return Object.freeze({
    rtt: u32(68) / 1000,
    rttVariance: u32(72) / 1000,
    retransmits: view.getUint8(2),
    totalRetransmits: u32(100),
    congestionWindow: u32(80),
    unacked: u32(24),
    lost: u32(32),
    bytesAcked: u64(120),
    bytesReceived: u64(128),
  });
}

/** GetSockOpt is libc's getsockopt as koffi binds it. @internal */
export type GetSockOpt = (fd: number, level: number, name: number, value: Buffer, length: Buffer) => number;

// Linux <netinet/in.h> IPPROTO_TCP 6, <netinet/tcp.h> TCP_INFO 11. The buffer is larger than today's struct: the
// kernel copies min(length, its size) and says how much in `length`.
const IPPROTO_TCP = 6;
const TCP_INFO = 11;
const BUFFER_SIZE = 256;
const LITTLE_ENDIAN = endianness() === 'LE';

/**
 * readTcpInfo reads TCP_INFO from a socket (a net.Socket, a TLS socket over TCP, or the Duplex an http server hands
 * over) through the getsockopt that `bind` returns (null where it cannot be had). A unix socket, a closed socket or
 * a failed call: undefined, never a failure. `bind` runs only for a TCP socket, so a unix tunnel never loads koffi.
 * @internal
 */
export function readTcpInfo(socket: object, bind: () => GetSockOpt | null): TcpInfo | undefined {
  const handle = (socket as { _handle?: { fd?: unknown; constructor?: { name?: string } } | null })._handle;
  const kind = handle?.constructor?.name;
  if (handle == null || (kind !== 'TCP' && kind !== 'TLSWrap') || typeof handle.fd !== 'number' || handle.fd < 0) return undefined;
  const call = bind();
  if (call === null) return undefined;
  const value = Buffer.alloc(BUFFER_SIZE);
  const length = Buffer.alloc(4);
  if (LITTLE_ENDIAN) length.writeUInt32LE(BUFFER_SIZE);
  else length.writeUInt32BE(BUFFER_SIZE);
  try {
    if (call(handle.fd, IPPROTO_TCP, TCP_INFO, value, length) !== 0) return undefined;
  } catch {
    return undefined;
  }
  return parseTcpInfo(value, LITTLE_ENDIAN ? length.readUInt32LE(0) : length.readUInt32BE(0), LITTLE_ENDIAN);
}
