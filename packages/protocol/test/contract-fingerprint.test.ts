import { expect } from 'chai';
import { z } from 'zod';
import { defineService } from '@tunnelrpc/protocol';
import { encodeContractHeader, encodeSkewHeader, fingerprintMethod, parseContractHeader, parseSkewHeader } from '@tunnelrpc/protocol/internal';

const spec = { input: z.object({ a: z.number(), b: z.string().max(9) }), output: z.number(), idempotent: true };

describe('contract fingerprints', () => {
  describe('fingerprintMethod', () => {
    it('is 12 hex digits, the same for the same schemas defined twice or in another key order', () => {
      const print = fingerprintMethod('add', spec);
      expect(print).to.match(/^[0-9a-f]{12}$/);
      expect(fingerprintMethod('add', { input: z.object({ a: z.number(), b: z.string().max(9) }), output: z.number(), idempotent: true })).to.equal(print);
      expect(fingerprintMethod('add', { idempotent: true, output: z.number(), input: z.object({ b: z.string().max(9), a: z.number() }) })).to.equal(print);
    });

    it('changes with the params, the result, the idempotent flag, the kind and the stream messages', () => {
      const print = fingerprintMethod('add', spec);
      const variants = [
        { ...spec, input: z.object({ a: z.number(), b: z.string().max(10) }) },
        { ...spec, output: z.string() },
        { ...spec, idempotent: false },
        { ...spec, kind: 'serverStream' as const, serverMessage: z.number() },
        { ...spec, kind: 'serverStream' as const, serverMessage: z.string() },
      ];
      const prints = variants.map((each) => fingerprintMethod('add', each));
      expect(prints).to.not.include(print);
      expect(new Set(prints).size).to.equal(prints.length);
    });
  });

  describe('headers', () => {
    it('encodes Service.method=print entries that parse back', () => {
      const Calc = defineService('demo.Calc', { add: spec, neg: { input: z.number(), output: z.number() } });
      const value = encodeContractHeader([Calc]);
      expect(value).to.match(/^demo\.Calc\.add=[0-9a-f]{12},demo\.Calc\.neg=[0-9a-f]{12}$/);
      expect([...parseContractHeader(value).keys()]).to.deep.equal(['demo.Calc.add', 'demo.Calc.neg']);
    });

    it('stops at 4096 bytes for a contract with many methods', () => {
      const methods = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`method${i}`, { input: z.void(), output: z.void() }]));
      const value = encodeContractHeader([defineService('demo.Big', methods)]);
      expect(value.length).to.be.at.most(4096);
      expect(parseContractHeader(value).size).to.equal(value.split(',').length);
    });

    it('skips entries that are not Service.method=<12 hex> and reads at most 256 of a hostile value', () => {
      expect([...parseContractHeader('a.b=0123456789ab, junk,x=0123456789ab,a.c=XYZ,a.d=0123456789abc,__proto__.x=0123456789ab').entries()]).to.deep.equal([
        ['a.b', '0123456789ab'],
        ['__proto__.x', '0123456789ab'],
      ]);
      const hostile = Array.from({ length: 100_000 }, (_, i) => `s.m${i}=0123456789ab`).join(',');
      expect(parseContractHeader(hostile).size).to.be.at.most(256);
    });

    it('answers the skewed methods, or none, and parses the answer', () => {
      const offered = new Map([['s.same', 'aaaaaaaaaaaa'], ['s.changed', 'bbbbbbbbbbbb'], ['s.gone', 'cccccccccccc']]);
      const own = new Map([['s.same', 'aaaaaaaaaaaa'], ['s.changed', 'dddddddddddd']]);
      const value = encodeSkewHeader(offered, (method) => own.get(method));
      expect(value).to.equal('s.changed=differs,s.gone=missing');
      expect(parseSkewHeader(value)).to.deep.equal([{ method: 's.changed', problem: 'differs' }, { method: 's.gone', problem: 'missing' }]);
      expect(encodeSkewHeader(new Map([['s.same', 'aaaaaaaaaaaa']]), (method) => own.get(method))).to.equal('none');
      expect(parseSkewHeader('none')).to.deep.equal([]);
      expect(parseSkewHeader('s.x=0123456789ab,\u001b[2J=differs,s.y=differs')).to.deep.equal([{ method: 's.y', problem: 'differs' }]);
    });
  });
});
