/**
 * The two ways into a tunnel (PROTOCOL.md 2.1 and 2.5): `CONNECT <path>` answered `200 Connected`, and
 * `GET <path>` with `Connection: Upgrade` and `Upgrade: tunnelrpc` answered `101 Switching Protocols`. Both end in
 * the same ServerConnection with Node's `head` fed first (ws websocket-server.js completeUpgrade).
 */
import type { IncomingMessage } from 'node:http';
import { CONNECTED_RESPONSE, SWITCHING_RESPONSE, UPGRADE_TOKEN } from '@tunnelrpc/protocol';

/** Handshake names the way a tunnel was asked for. @internal */
export type Handshake = 'connect' | 'upgrade';

/** replyFor is the exact success reply of each handshake; frames follow it. @internal */
export function replyFor(handshake: Handshake): string {
  return handshake === 'connect' ? CONNECTED_RESPONSE : SWITCHING_RESPONSE;
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
