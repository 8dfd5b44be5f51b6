/**
 * The two ways into a tunnel (PROTOCOL.md 2.1 and 2.5): `CONNECT <path>` answered `200 Connected`, and
 * `GET <path>` with `Connection: Upgrade` and `Upgrade: tunnelrpc` answered `101 Switching Protocols`. Both end in
 * the same ServerConnection with Node's `head` fed first (ws websocket-server.js completeUpgrade).
 */
import type { IncomingMessage } from 'node:http';
import { type MethodSpec } from '@tunnelrpc/protocol';
import { CONNECTED_RESPONSE, CONTRACT_SKEW_HEADER, SWITCHING_RESPONSE, UPGRADE_TOKEN, fingerprintMethod } from '@tunnelrpc/protocol/internal';

/** Handshake names the way a tunnel was asked for. @internal */
export type Handshake = 'connect' | 'upgrade';

/**
 * replyFor is the exact success reply of each handshake; frames follow it. With `skew` (the client sent its
 * contract fingerprints, PROTOCOL.md 2.6) the reply carries the skew header too; otherwise it is wire-v1's exact
 * bytes. @internal
 */
export function replyFor(handshake: Handshake, skew?: string): string {
  const reply = handshake === 'connect' ? CONNECTED_RESPONSE : SWITCHING_RESPONSE;
  return skew === undefined ? reply : `${reply.slice(0, -2)}${CONTRACT_SKEW_HEADER}: ${skew}\r\n\r\n`;
}

// Fingerprints are computed once per method spec: a JSON Schema per method is not free, and handshakes repeat.
const fingerprints = new WeakMap<MethodSpec, string>();

/** serverFingerprint is the fingerprint of a registered method (its wire name and spec), cached. @internal */
export function serverFingerprint(path: string, spec: MethodSpec): string {
  let print = fingerprints.get(spec);
  if (print === undefined) {
    print = fingerprintMethod(path.slice(path.lastIndexOf('.') + 1), spec);
    fingerprints.set(spec, print);
  }
  return print;
}

/**
 * upgradeProblem says why an Upgrade request on the RPC path cannot open a tunnel, or returns undefined when it
 * can: the method is GET and `Upgrade` names tunnelrpc (Node emits 'upgrade' only with `Connection: upgrade`).
 * @internal
 */
export function upgradeProblem(req: IncomingMessage): { status: number; text: string } | undefined {
  if (req.method !== 'GET') return { status: 405, text: `405 an Upgrade to a tunnel must be a GET, not ${String(req.method).slice(0, 20)}` };
  const offered = String(req.headers.upgrade ?? '')
    .split(',')
    .map((token) => token.trim().toLowerCase());
  if (!offered.includes(UPGRADE_TOKEN)) {
    return { status: 400, text: `400 this endpoint upgrades only to "${UPGRADE_TOKEN}" (send Upgrade: ${UPGRADE_TOKEN}), or send CONNECT` };
  }
  return undefined;
}
