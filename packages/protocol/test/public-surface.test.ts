/**
 * The root holds what an application author uses; the building blocks live under `@tunnelrpc/protocol/internal`,
 * which promises nothing across releases. A name added to the root is a public promise, so it must be added here
 * on purpose.
 */
import { expect } from 'chai';
import * as root from '@tunnelrpc/protocol';
import * as internal from '@tunnelrpc/protocol/internal';

const ROOT_VALUES = [
  'DEFAULT_MAX_DEPTH',
  'DEFAULT_MAX_FRAME_SIZE',
  'DEFAULT_MAX_ITEMS_PER_FRAME',
  'DEFAULT_MAX_STREAM_BUFFER',
  'DEFAULT_MAX_STREAM_CREDIT',
  'DEFAULT_MAX_STREAM_MESSAGE_SIZE',
  'ERROR_CODES',
  'Health',
  'Reflection',
  'RpcError',
  'SERVING_STATUSES',
  'UNREPRESENTABLE_KEY',
  'applyInterceptors',
  'currentAmbientCall',
  'defineService',
  'escapePeerText',
  'findBreakingChanges',
  'isErrorCode',
  'quotePeerText',
];

describe('the public surface of @tunnelrpc/protocol', () => {
  it('exports from its root only the values an application uses', () => {
    expect(Object.keys(root).sort()).to.deep.equal([...ROOT_VALUES].sort());
  });

  it('keeps the building blocks under /internal, none of them also at the root', () => {
    expect(Object.keys(internal)).to.include.members(['FrameDecoder', 'encodeMessage', 'decodeMessage', 'scanMessagePack', 'CreditLedger', 'Deadlines', 'parseProxyHeader', 'parseTcpInfo']);
    expect(Object.keys(internal).filter((name) => name in root)).to.deep.equal([]);
  });
});
