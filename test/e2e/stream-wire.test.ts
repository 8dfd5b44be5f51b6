/**
 * The stream examples of PROTOCOL.md section 11, read from the document itself and replayed frame for frame against
 * the Echo fixture over a raw socket: what a peer in another language would check first.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cleanup } from '../helpers/cleanup.js';
import { REPO_ROOT } from '../helpers/processes.js';
import { RawTunnel } from '@tunnelrpc/test-kit';
import { startEchoServer } from '../helpers/servers.js';
import { decodeMessage, encodeMessage } from '@tunnelrpc/protocol/internal';

interface Row {
  direction: 'C → S' | 'S → C';
  bytes: Buffer;
}

/** exampleTable returns the rows of the stream example table that follows `heading` in PROTOCOL.md. */
function exampleTable(heading: string): Row[] {
  const text = readFileSync(join(REPO_ROOT, 'PROTOCOL.md'), 'utf8');
  const start = text.indexOf(heading);
  expect(start, heading).to.be.greaterThan(0);
  const rows: Row[] = [];
  for (const line of text.slice(start).split('\n').slice(1)) {
    const match = /^\| (C → S|S → C) \| .* \| `([0-9a-f ]+)` \|$/.exec(line);
    if (match === null) {
      if (rows.length > 0) break;
      continue;
    }
    rows.push({ direction: match[1] as Row['direction'], bytes: Buffer.from(match[2]!.replaceAll(' ', ''), 'hex') });
  }
  return rows;
}

describe('PROTOCOL.md stream examples against the Echo fixture', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  const tables = [
    ['Echo.ticks', '`Echo.ticks`\nopened with 2 credits'],
    ['Echo.sum', '`Echo.sum`: the server grants first'],
    ['Echo.chat', '`Echo.chat`: both directions granted'],
  ] as const;
  for (const [method, heading] of tables) {
    it(`${method}: every server frame decodes to the message the table shows`, async () => {
      const server = await startEchoServer(cleanup);
      const tunnel = await RawTunnel.open(server.port!);
      cleanup.defer(() => tunnel.destroy());
      const rows = exampleTable(heading);
      expect(rows.length).to.be.greaterThan(3);
      for (const row of rows) {
        // Every row is the reference encoder's own output.
        expect(encodeMessage(decodeMessage(row.bytes.subarray(4))).toString('hex')).to.equal(row.bytes.toString('hex'));
        if (row.direction === 'C → S') {
          tunnel.write(row.bytes);
        } else {
          const got = await tunnel.next();
          expect(encodeMessage(got).toString('hex')).to.equal(row.bytes.toString('hex'));
        }
      }
    });
  }
});
