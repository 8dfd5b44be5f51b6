import { expect } from 'chai';
import { z } from 'zod';
import { defineService } from '@tunnelrpc/protocol';
import { methodKind } from '@tunnelrpc/protocol/internal';
import { expectThrows } from '@tunnelrpc/test-kit';

describe('defineService method kinds', () => {
  it('takes the three stream kinds with their message schemas; unary is the default', () => {
    const S = defineService('S', {
      plain: { input: z.void(), output: z.void() },
      down: { kind: 'serverStream', input: z.void(), serverMessage: z.number(), output: z.void() },
      up: { kind: 'clientStream', input: z.void(), clientMessage: z.number(), output: z.number() },
      both: { kind: 'bidiStream', input: z.void(), clientMessage: z.string(), serverMessage: z.string(), output: z.void() },
    });
    expect(Object.values(S.methods).map(methodKind)).to.deep.equal(['unary', 'serverStream', 'clientStream', 'bidiStream']);
  });

  const refused: [string, Record<string, unknown>, string][] = [
    ['an unknown kind', { kind: 'duplex', input: z.void(), output: z.void() }, 'use one of unary, serverStream'],
    ['a serverStream without serverMessage', { kind: 'serverStream', input: z.void(), output: z.void() }, 'give serverMessage a zod schema'],
    ['a clientStream without clientMessage', { kind: 'clientStream', input: z.void(), output: z.void() }, 'give clientMessage a zod schema'],
    ['a bidiStream without clientMessage', { kind: 'bidiStream', input: z.void(), serverMessage: z.void(), output: z.void() }, 'give clientMessage'],
    ['a unary method with serverMessage', { input: z.void(), output: z.void(), serverMessage: z.void() }, 'remove serverMessage'],
    ['a serverStream with clientMessage', { kind: 'serverStream', input: z.void(), output: z.void(), serverMessage: z.void(), clientMessage: z.void() }, 'remove clientMessage'],
    ['a stream that is a notification', { kind: 'serverStream', input: z.void(), output: z.void(), serverMessage: z.void(), notification: true }, 'cannot be a notification'],
    ['a message schema that is not zod', { kind: 'clientStream', input: z.void(), output: z.void(), clientMessage: {} }, 'give clientMessage a zod schema'],
  ];
  for (const [name, spec, says] of refused) {
    it(`refuses ${name} with INVALID_ARGUMENT`, () => {
      expectThrows(() => defineService('S', { m: spec as never }), 'INVALID_ARGUMENT', says);
    });
  }
});
