/**
 * A throwaway PKI for the mutual TLS tests, made at run time with openssl in a temp directory (removed at once):
 * a CA, a server certificate for 127.0.0.1, and client certificates that are valid, expired, or issued by another
 * CA. Node 20 can read certificates but not issue them.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** KeyPair is a PEM key and certificate. */
export interface KeyPair {
  key: Buffer;
  cert: Buffer;
}

/** Pki is what makePki issues. */
export interface Pki {
  ca: Buffer;
  server: KeyPair;
  /** CN=billing, SANs DNS:billing.internal and URI:spiffe://example.test/billing. */
  client: KeyPair;
  /** Same CA, expired yesterday. */
  expired: KeyPair;
  /** Issued by a CA the server does not trust. */
  wrongCa: KeyPair;
}

/** makePki issues the CA and certificates with openssl. */
export async function makePki(): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), 'tunnelrpc-e2e-pki-'));
  const run = async (...args: string[]): Promise<void> => {
    await promisify(execFile)('openssl', args, { cwd: dir }).catch((error: unknown) => {
      throw new Error(`openssl ${args[0]} failed (is openssl on PATH?): ${(error as Error).message}`);
    });
  };
  const ca = async (name: string): Promise<void> => run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`);
  const issue = async (name: string, issuer: string, subject: string, san: string, days: string): Promise<KeyPair> => {
    await run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    await writeFile(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    // A negative -days makes notAfter fall before now: an expired certificate, issued today.
    await run('x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.crt`, '-CAkey', `${issuer}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', days, '-extfile', `${name}.ext`);
    return { key: await readFile(join(dir, `${name}.key`)), cert: await readFile(join(dir, `${name}.crt`)) };
  };
  try {
    await ca('ca');
    await ca('other-ca');
    return {
      ca: await readFile(join(dir, 'ca.crt')),
      server: await issue('server', 'ca', '/CN=localhost', 'IP:127.0.0.1,DNS:localhost', '1'),
      client: await issue('client', 'ca', '/CN=billing/O=Example', 'DNS:billing.internal,URI:spiffe://example.test/billing', '1'),
      expired: await issue('expired', 'ca', '/CN=old-billing', 'DNS:old.internal', '-1'),
      wrongCa: await issue('wrong-ca', 'other-ca', '/CN=intruder', 'DNS:intruder.internal', '1'),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
