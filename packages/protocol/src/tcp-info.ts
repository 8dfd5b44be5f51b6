/**
 * The kernel's view of a TCP connection, as Linux's getsockopt(fd, IPPROTO_TCP, TCP_INFO) fills `struct tcp_info`
 * (linux/tcp.h). Pure: bytes in, fields out; the call itself lives with the sockets (server and client). Offsets,
 * all fields native-endian:
 *
 *   0  u8  state, ca_state, retransmits, probes, backoff, options, wscales, flags
 *   8  u32 rto, ato, snd_mss, rcv_mss
 *  24  u32 unacked, sacked, lost, retrans, fackets
 *  44  u32 last_data_sent, last_ack_sent, last_data_recv, last_ack_recv
 *  60  u32 pmtu, rcv_ssthresh, rtt (µs), rttvar (µs), snd_ssthresh, snd_cwnd, advmss, reordering
 *  92  u32 rcv_rtt, rcv_space, total_retrans
 * 104  u64 pacing_rate, max_pacing_rate, bytes_acked, bytes_received   (Linux 4.1+; 136 bytes up to here)
 */

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
