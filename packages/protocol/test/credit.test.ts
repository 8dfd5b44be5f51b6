import { expect } from 'chai';
import { CreditLedger } from '@tunnelrpc/protocol/internal';

describe('CreditLedger', () => {
  describe('#topUp', () => {
    it('grants a whole window when the budget has room, and reserves its bytes', () => {
      const ledger = new CreditLedger(1000);
      ledger.open(1, 10, 8);
      expect(ledger.topUp(1)).to.equal(8);
      expect(ledger.reserved).to.equal(80);
      expect(ledger.topUp(1), 'nothing more while more than half the window is outstanding').to.equal(0);
    });

    it('grants nothing for a stream that receives no messages (size 0)', () => {
      const ledger = new CreditLedger(1000);
      ledger.open(1, 0, 8, 5);
      expect(ledger.topUp(1)).to.equal(0);
      expect(ledger.credit(1)).to.equal(5);
    });

    it('grants only what the budget holds, and queues a stream that gets nothing', () => {
      const ledger = new CreditLedger(100);
      ledger.open(1, 30, 8);
      ledger.open(2, 30, 8);
      expect(ledger.topUp(1)).to.equal(3);
      expect(ledger.topUp(2)).to.equal(0);
      expect(ledger.reserved).to.equal(90);
    });
  });

  describe('#receive and #consume', () => {
    it('counts an overrun when the peer sends beyond its credit', () => {
      const ledger = new CreditLedger(100);
      ledger.open(1, 10, 2);
      expect(ledger.topUp(1)).to.equal(2);
      expect(ledger.receive(1)).to.equal(true);
      expect(ledger.receive(1)).to.equal(true);
      expect(ledger.receive(1)).to.equal(false);
      expect(ledger.receive(99), 'a stream not in the ledger has no credit').to.equal(false);
    });

    it('frees a reservation when the reader takes the message, not when it arrives', () => {
      const ledger = new CreditLedger(100);
      ledger.open(1, 10, 4);
      ledger.topUp(1);
      ledger.receive(1);
      ledger.receive(1);
      expect(ledger.reserved).to.equal(40);
      expect(ledger.consume(1)).to.deep.equal([]);
      expect(ledger.reserved).to.equal(30);
      expect(ledger.consume(1), 'half the window is free again: top up').to.deep.equal([{ id: 1, n: 2 }]);
      expect(ledger.reserved).to.equal(40);
    });

    it('serves waiting streams first, in order, as room comes back', () => {
      const ledger = new CreditLedger(20);
      ledger.open(1, 10, 2);
      ledger.open(2, 10, 2);
      ledger.open(3, 10, 2);
      expect(ledger.topUp(1)).to.equal(2);
      expect(ledger.topUp(2)).to.equal(0);
      expect(ledger.topUp(3)).to.equal(0);
      ledger.receive(1);
      expect(ledger.consume(1)).to.deep.equal([{ id: 2, n: 1 }]);
      expect(ledger.close(1)).to.deep.equal([{ id: 3, n: 1 }]);
      expect(ledger.reserved).to.equal(20);
    });

    it('keeps the reserved bytes at or under the budget with 1,000 streams that never read', () => {
      const ledger = new CreditLedger(64 * 1024);
      let granted = 0;
      for (let id = 0; id < 1000; id++) {
        ledger.open(id, 1024, 16);
        const n = ledger.topUp(id);
        for (let i = 0; i < n; i++) expect(ledger.receive(id)).to.equal(true);
        granted += n;
        expect(ledger.reserved).to.be.at.most(ledger.budget);
      }
      expect(granted * 1024).to.equal(64 * 1024);
    });
  });

  describe('#addCredit and #spend', () => {
    it('adds grants up to 2^31-1 and refuses an overflow', () => {
      const ledger = new CreditLedger(100);
      ledger.open(1, 0, 1);
      expect(ledger.addCredit(1, 0x7fff_fffe)).to.equal(true);
      expect(ledger.addCredit(1, 1)).to.equal(true);
      expect(ledger.addCredit(1, 1)).to.equal(false);
      expect(ledger.credit(1)).to.equal(0x7fff_ffff);
    });

    it('spends one credit per message and refuses at zero', () => {
      const ledger = new CreditLedger(100);
      ledger.open(1, 0, 1, 1);
      expect(ledger.spend(1)).to.equal(true);
      expect(ledger.spend(1)).to.equal(false);
      expect(ledger.addCredit(2, 5), 'a grant for a stream already gone is ignored').to.equal(true);
    });
  });
});
