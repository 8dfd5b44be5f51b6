import { expect } from 'chai';
import { StreamState } from '@tunnelrpc/protocol/internal';

describe('StreamState', () => {
  describe('on the server', () => {
    it('takes client messages for clientStream and bidiStream until the half-close, after the first grant', () => {
      for (const kind of ['clientStream', 'bidiStream'] as const) {
        const state = new StreamState(kind, 'server');
        expect(state.onMessage()).to.equal(undefined);
        expect(state.onHalfClose()).to.include('before the server granted credit');
        state.granted();
        expect(state.onHalfClose()).to.equal(undefined);
        expect(state.onMessage()).to.include('after the client half-closed');
        expect(state.onHalfClose()).to.include('second half-close');
      }
    });

    it('refuses stream messages and half-closes for a serverStream', () => {
      const state = new StreamState('serverStream', 'server');
      expect(state.onMessage()).to.include('whose client sends none');
      expect(state.onHalfClose()).to.include('whose client sends no messages');
    });

    it('takes client credit only for directions the server sends on, and never with maxMessageSize', () => {
      expect(new StreamState('serverStream', 'server').onCredit(undefined)).to.equal(undefined);
      expect(new StreamState('bidiStream', 'server').onCredit(undefined)).to.equal(undefined);
      expect(new StreamState('clientStream', 'server').onCredit(undefined)).to.include('whose server sends no messages');
      expect(new StreamState('serverStream', 'server').onCredit(10)).to.include('opening meta');
    });

    it('takes nothing after the stream ended', () => {
      const state = new StreamState('bidiStream', 'server');
      state.ended();
      expect(state.inboundOpen).to.equal(false);
      expect(state.outboundOpen).to.equal(false);
    });
  });

  describe('on the client', () => {
    it("needs maxMessageSize on the server's first grant and refuses it on later ones", () => {
      const state = new StreamState('clientStream', 'client');
      expect(state.onCredit(undefined)).to.include('lacks maxMessageSize');
      expect(state.onCredit(100)).to.equal(undefined);
      expect(state.clientGranted).to.equal(true);
      expect(state.onCredit(undefined)).to.equal(undefined);
      expect(state.onCredit(100)).to.include('only with the first grant');
    });

    it('refuses a half-close from the server and messages for a clientStream', () => {
      expect(new StreamState('bidiStream', 'client').onHalfClose()).to.include('only a client half-closes');
      expect(new StreamState('clientStream', 'client').onMessage()).to.include('whose server sends none');
      expect(new StreamState('serverStream', 'client').onCredit(10)).to.include('whose client sends no messages');
    });

    it('stops sending after its own half-close', () => {
      const state = new StreamState('bidiStream', 'client');
      expect(state.outboundOpen).to.equal(true);
      state.halfClosed();
      expect(state.outboundOpen).to.equal(false);
      expect(state.inboundOpen).to.equal(true);
    });
  });
});
