/**
 * The address a tunnel's client really has: what a trusted PROXY protocol header said (proxy-listener.ts), else
 * what the socket reports. ctx.peer, logs and the per-address tunnel cap all ask here.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { PeerAddress } from './dispatch.js';

/** AddressOnly is the address part of a PeerAddress. @internal */
export type AddressOnly = Pick<PeerAddress, 'address' | 'port' | 'family'>;

const FROM_HEADER = new WeakMap<object, AddressOnly>();

/** recordPeerAddress keeps the address a PROXY header gave for `socket`. @internal */
export function recordPeerAddress(socket: Duplex, peer: AddressOnly): void {
  FROM_HEADER.set(socket, peer);
}

/** peerAddressOf is the address from the socket's PROXY header, or the socket's own remote address. @internal */
export function peerAddressOf(socket: Duplex): AddressOnly {
  const recorded = FROM_HEADER.get(socket);
  if (recorded !== undefined) return recorded;
  const tcp = socket as Partial<Socket>;
  return { address: tcp.remoteAddress, port: tcp.remotePort, family: tcp.remoteFamily };
}
