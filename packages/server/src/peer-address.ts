/**
 * The address a tunnel's client really has: what a trusted PROXY protocol header said (proxy-listener.ts), else
 * what the socket reports, with an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, from a dual-stack socket or a
 * PROXY TCP6/INET6 header) written as the IPv4 address it is. ctx.peer, logs and the per-address limits all ask here.
 *
 * The per-address limits (maxConnectionsPerIp and the fair shares of shareByAddress) count an IPv6 source by its /64
 * prefix. One host is routinely given a whole /64 (SLAAC, RFC 7934 says to give hosts many addresses) and can pick a
 * fresh address in it for each tunnel, so counting single IPv6 addresses would give one host 2^64 shares. A /64 is
 * the smallest block a network hands to one site's link, which is why rate limiters (Cloudflare, nginx setups, the
 * Linux kernel's IPv6 ICMP limits) group by it. IPv4 sources are counted each on its own.
 */
import { isIPv4, isIPv6, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { PeerAddress } from './handler-types.js';

/** AddressOnly is the address part of a PeerAddress. @internal */
export type AddressOnly = Pick<PeerAddress, 'address' | 'port' | 'family'>;

const FROM_HEADER = new WeakMap<object, AddressOnly>();

/** recordPeerAddress keeps the address a PROXY header gave for `socket`. @internal */
export function recordPeerAddress(socket: Duplex, peer: AddressOnly): void {
  FROM_HEADER.set(socket, normalizePeer(peer));
}

/** peerAddressOf is the address from the socket's PROXY header, or the socket's own remote address. @internal */
export function peerAddressOf(socket: Duplex): AddressOnly {
  const recorded = FROM_HEADER.get(socket);
  if (recorded !== undefined) return recorded;
  const tcp = socket as Partial<Socket>;
  return normalizePeer({ address: tcp.remoteAddress, port: tcp.remotePort, family: tcp.remoteFamily });
}

/** normalizeAddress writes an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) as its IPv4 form, in lower case. @internal */
export function normalizeAddress(address: string): string {
  const lower = address.toLowerCase();
  return lower.startsWith('::ffff:') && isIPv4(lower.slice(7)) ? lower.slice(7) : lower;
}

/**
 * addressGroupOf is the key the per-address limits count `address` under: an IPv4 address itself, an IPv6 address
 * its /64 prefix (`2001:db8:0:1::/64`, RFC 5952 form), anything else (a unix socket's `unknown`) as it is. @internal
 */
export function addressGroupOf(address: string): string {
  const normal = normalizeAddress(address);
  if (!isIPv6(normal)) return normal;
  const groups = ipv6Groups(normal);
  const prefix = [...groups.slice(0, 4), 0, 0, 0, 0].map((group) => group.toString(16)).join(':');
  // The WHATWG URL parser writes an IPv6 address in its one canonical compressed form (RFC 5952).
  return `${new URL(`http://[${prefix}]`).hostname.slice(1, -1)}/64`;
}

function normalizePeer(peer: AddressOnly): AddressOnly {
  if (peer.address === undefined) return peer;
  const address = normalizeAddress(peer.address);
  if (address === peer.address) return peer;
  return { ...peer, address, family: isIPv4(address) ? 'IPv4' : peer.family };
}

// The eight 16-bit groups of a valid IPv6 literal (isIPv6 checked it), with '::' expanded, a dotted IPv4 tail
// turned into two groups, and a zone (%eth0) dropped.
function ipv6Groups(text: string): number[] {
  const bare = text.split('%')[0]!;
  const [headText, tailText] = bare.includes('::') ? bare.split('::') as [string, string] : [bare, undefined];
  const parse = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const piece of part.split(':')) {
      if (piece.includes('.')) {
        const [a, b, c, d] = piece.split('.').map(Number) as [number, number, number, number];
        out.push((a << 8) | b, (c << 8) | d);
      } else {
        out.push(parseInt(piece, 16));
      }
    }
    return out;
  };
  const head = parse(headText);
  if (tailText === undefined) return head;
  const tail = parse(tailText);
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}
