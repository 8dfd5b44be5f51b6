/**
 * @tunnelrpc/client/testing: tools for your own tests of code that uses tunnelrpc.
 *
 * FaultBox is a TCP middle box on 127.0.0.1 to put between your client and your server: it splits frames at every
 * byte, delays, cuts a connection mid-frame, reads slowly, lets the server "die" after N calls, and holds traffic
 * back so deadlines pass with nothing on the wire.
 *
 * @example
 * import { FaultBox } from '@tunnelrpc/client/testing';
 *
 * const box = await FaultBox.start(serverUrl, { splitEveryByte: true });
 * const client = await connect(box.url);   // every frame now arrives one byte at a time
 * box.set({ dieAfterCalls: 3 });           // the fourth call finds the server gone
 * await box.close();
 */
// The public types use Buffer and node: modules: this brings @types/node into a consumer's program.
/// <reference types="node" preserve="true" />
export { FaultBox } from './fault-box.js';
export type { FaultOptions, FaultStats, FaultTarget } from './fault-box.js';
