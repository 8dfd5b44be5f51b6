import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

// Loading node:tls changes how V8 collects a process that churns large buffers (bench/PROFILE.md): a plain TCP
// server or client must not load it. A fresh process imports the packages and says which of the two it loaded.
function loadedAfterImporting(modules: string[]): string[] {
  const script = `${modules.map((m) => `await import(${JSON.stringify(m)});`).join(' ')} ` +
    `console.log(JSON.stringify(process.moduleLoadList.filter((m) => /^NativeModule (tls|_tls_wrap)$/.test(m))));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('.', import.meta.url)), encoding: 'utf8' });
  return JSON.parse(out) as string[];
}

describe('node:tls is loaded only for TLS', () => {
  it('is not loaded by importing the server, the client and the protocol', () => {
    expect(loadedAfterImporting(['@tunnelrpc/protocol', '@tunnelrpc/protocol/internal', '@tunnelrpc/server', '@tunnelrpc/client'])).to.deep.equal([]);
  });

  it('is loaded once node:tls itself is imported (the check can see it)', () => {
    expect(loadedAfterImporting(['node:tls'])).to.include('NativeModule tls');
  });
});
