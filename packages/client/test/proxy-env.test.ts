import { expect } from 'chai';
import { chooseProxy } from '@tunnelrpc/client';
import { expectThrows } from '@tunnelrpc/test-kit';

const HTTP = { tls: false, host: 'api.example.com', port: 8080 };
const HTTPS = { tls: true, host: 'api.example.com', port: 443 };

function via(target: typeof HTTP, env: Record<string, string>, option?: string | false): string | undefined {
  const choice = chooseProxy(target, option, env);
  return choice === undefined ? undefined : `${choice.display} ${choice.source}`;
}

describe('chooseProxy', () => {
  it('dials directly with no proxy in the options or the environment', () => {
    expect(via(HTTP, {})).to.equal(undefined);
    expect(via(HTTPS, {})).to.equal(undefined);
  });

  it('reads http_proxy before HTTP_PROXY, even when the lower-case one is empty', () => {
    expect(via(HTTP, { http_proxy: 'http://low:1', HTTP_PROXY: 'http://up:2' })).to.equal('http://low:1 env http_proxy');
    expect(via(HTTP, { HTTP_PROXY: 'http://up:2' })).to.equal('http://up:2 env HTTP_PROXY');
    expect(via(HTTP, { http_proxy: '', HTTP_PROXY: 'http://up:2' })).to.equal(undefined);
  });

  it('uses https_proxy (then HTTPS_PROXY) for https targets, and falls back to the http proxy', () => {
    expect(via(HTTPS, { https_proxy: 'http://s:1', http_proxy: 'http://p:2' })).to.equal('http://s:1 env https_proxy');
    expect(via(HTTPS, { HTTPS_PROXY: 'http://S:1' })).to.equal('http://s:1 env HTTPS_PROXY');
    expect(via(HTTPS, { http_proxy: 'http://p:2' })).to.equal('http://p:2 env http_proxy');
    expect(via(HTTP, { https_proxy: 'http://s:1' })).to.equal(undefined);
  });

  it('skips the proxy for no_proxy hosts: exact, suffix, .suffix, *.suffix, with a port, and *', () => {
    const env = { http_proxy: 'http://p:1' };
    expect(via(HTTP, { ...env, no_proxy: 'api.example.com' })).to.equal(undefined);
    expect(via(HTTP, { ...env, no_proxy: 'example.com' })).to.equal(undefined);
    expect(via(HTTP, { ...env, no_proxy: '.example.com' })).to.equal(undefined);
    expect(via(HTTP, { ...env, no_proxy: '*.example.com' })).to.equal(undefined);
    expect(via(HTTP, { ...env, no_proxy: 'other.org, example.com:8080' })).to.equal(undefined);
    expect(via(HTTP, { ...env, no_proxy: '*' })).to.equal(undefined);
    expect(via(HTTP, { ...env, no_proxy: 'EXAMPLE.COM.' })).to.equal(undefined);
  });

  it('keeps the proxy when no_proxy does not match: another port, a longer name, a mere substring', () => {
    const env = { http_proxy: 'http://p:1' };
    expect(via(HTTP, { ...env, no_proxy: 'example.com:9090' })).to.equal('http://p:1 env http_proxy');
    expect(via(HTTP, { ...env, no_proxy: 'ple.com' })).to.equal('http://p:1 env http_proxy');
    expect(via(HTTP, { ...env, no_proxy: 'api.example.com.evil' })).to.equal('http://p:1 env http_proxy');
    expect(via(HTTP, { ...env, no_proxy: '' })).to.equal('http://p:1 env http_proxy');
  });

  it('reads no_proxy before NO_PROXY, and matches IPv6 entries bare or bracketed with a port', () => {
    expect(via(HTTP, { http_proxy: 'http://p:1', no_proxy: 'other.org', NO_PROXY: 'example.com' })).to.equal('http://p:1 env http_proxy');
    const v6 = { tls: false, host: '::1', port: 8080 };
    expect(via(v6, { http_proxy: 'http://p:1', no_proxy: '::1' })).to.equal(undefined);
    expect(via(v6, { http_proxy: 'http://p:1', no_proxy: '[::1]:8080' })).to.equal(undefined);
    expect(via(v6, { http_proxy: 'http://p:1', no_proxy: '[::1]:9' })).to.equal('http://p:1 env http_proxy');
  });

  it('lets the proxy option win over the environment and no_proxy, and false turn proxies off', () => {
    expect(via(HTTP, { http_proxy: 'http://env:1', no_proxy: '*' }, 'http://opt:2')).to.equal('http://opt:2 option proxy');
    expect(via(HTTP, { http_proxy: 'http://env:1' }, false)).to.equal(undefined);
  });

  it('turns credentials into Proxy-Authorization: Basic, percent escapes decoded, and keeps them out of display', () => {
    const choice = chooseProxy(HTTP, 'http://us%40er:p%3Ass@proxy.local:3128', {})!;
    expect(choice).to.deep.include({ host: 'proxy.local', port: 3128, display: 'http://proxy.local:3128' });
    expect(choice.authorization).to.equal(`Basic ${Buffer.from('us@er:p:ss').toString('base64')}`);
    expect(chooseProxy(HTTP, 'http://proxy.local', {})!.port).to.equal(80);
  });

  it('refuses a proxy URL it cannot use with INVALID_ARGUMENT naming where it came from', () => {
    expectThrows(() => chooseProxy(HTTP, 'not a url', {}), 'INVALID_ARGUMENT', 'cannot use the proxy URL from option proxy: it is not a URL');
    expectThrows(() => chooseProxy(HTTP, undefined, { http_proxy: 'socks5://p:1' }), 'INVALID_ARGUMENT', 'from env http_proxy: the scheme socks5: is not supported');
    expectThrows(() => chooseProxy(HTTP, 'http://%ZZ:x@p:1', {}), 'INVALID_ARGUMENT', 'malformed percent escape');
  });
});
