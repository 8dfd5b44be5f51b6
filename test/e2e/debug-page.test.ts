/**
 * The debug page (ServerOptions.debugPath) in a real headless Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core): the numbers on the page match the calls this test made, a screenshot is written and is not
 * blank, the JSON form agrees, and `authorize` guards it. Without chromium the suite skips with one line, unless
 * TUNNELRPC_REQUIRE_DEPLOY=1, where it fails.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { chromium, type Browser } from 'playwright-core';
import { connect, createClient, RpcError } from '@tunnelrpc/client';
import { Echo } from '@tunnelrpc/examples';
import type { DebugSnapshot } from '@tunnelrpc/server';
import { needBox } from '../helpers/boxes.js';
import { Cleanup } from '../helpers/cleanup.js';
import { REPO_ROOT } from '../helpers/processes.js';
import { startEchoServer, type EchoServer } from '../helpers/servers.js';
import { httpGet, type HttpPage } from '@tunnelrpc/test-kit';

const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const TOKEN = 'Bearer debug-s3cret';
const DEBUG_PATH = '/debug/tunnelrpc';
/** Where the test leaves its screenshot (not committed; the README's copy is made the same way). */
export const SCREENSHOT = join(REPO_ROOT, 'test/dist/debug-page.png');

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<HttpPage> {
  return httpGet(`http://127.0.0.1:${port}${path}`, headers);
}

describe('the debug page in headless Chromium', function () {
  this.timeout(60_000);
  const cleanup = new Cleanup();
  let browser: Browser;
  let server: EchoServer;

  before(async function () {
    // Skipped with the run's one line of missing boxes, or a failure under TUNNELRPC_REQUIRE_DEPLOY=1.
    const executablePath = needBox(this, 'chromium');
    browser = await chromium.launch({ executablePath, args: CHROMIUM_FLAGS, headless: true });
  });
  after(async () => {
    await browser?.close();
  });

  beforeEach(async () => {
    server = await startEchoServer(cleanup, {
      server: {
        debugPath: DEBUG_PATH,
        authorize: (req) => {
          if (req.headers.authorization !== TOKEN) throw new RpcError('UNAUTHENTICATED', 'send Authorization: Bearer <token>');
          return { user: 'ops' };
        },
      },
    });
  });
  afterEach(() => cleanup.run());

  it('shows per-method calls and errors by code, and the open tunnels, matching the calls made; the screenshot is not blank', async () => {
    const first = cleanup.add(await connect(server.url, { headers: { authorization: TOKEN } }), (each) => each.close());
    const second = cleanup.add(await connect(server.url, { headers: { authorization: TOKEN } }), (each) => each.close());
    const echo = createClient(Echo, first);
    for (let i = 0; i < 3; i++) await echo.add({ a: i, b: i });
    for (let i = 0; i < 2; i++) await echo.fail({ code: 'NOT_FOUND', message: 'gone' }).catch(() => undefined);
    await echo.crash().catch(() => undefined);
    await createClient(Echo, second).echo('hi');
    await second.call('Echo.nope', {}).catch(() => undefined);

    const page = await browser.newPage({ extraHTTPHeaders: { authorization: TOKEN }, viewport: { width: 1100, height: 900 } });
    cleanup.defer(() => page.close());
    const response = await page.goto(`http://127.0.0.1:${server.port}${DEBUG_PATH}`);
    expect(response?.status()).to.equal(200);
    const cell = (method: string, column: string): Promise<string | null> => page.textContent(`tr[data-method="${method}"] td.${column}`);
    expect(await cell('Echo.add', 'calls')).to.equal('3');
    expect(await cell('Echo.fail', 'calls')).to.equal('2');
    expect(await cell('Echo.fail', 'errors')).to.equal('NOT_FOUND: 2');
    expect(await cell('Echo.crash', 'errors')).to.equal('INTERNAL: 1');
    expect(await cell('Echo.echo', 'calls')).to.equal('1');
    expect(await cell('Echo.sleep', 'calls')).to.equal('0');
    expect(await cell('_OTHER._OTHER', 'errors')).to.equal('UNIMPLEMENTED: 1');
    expect(await cell('Echo.add', 'sig')).to.equal('add({ a: number, b: number }) → number');
    expect(await cell('Echo.add', 'p50')).to.match(/^\d+\.\d{3} ms$/);
    expect(await page.locator('table.tunnels tbody tr').count()).to.equal(2);
    const served = await page.locator('table.tunnels td.served').allTextContents();
    expect(served.map(Number).sort()).to.deep.equal([2, 6]);
    expect(await page.locator('table.tunnels td.inflight').allTextContents()).to.deep.equal(['0', '0']);

    const png = await page.screenshot({ fullPage: true });
    await mkdir(join(REPO_ROOT, 'test/dist'), { recursive: true });
    await writeFile(SCREENSHOT, png);
    // Not blank: decoded in the browser itself, the image holds many colours and a fair share of non-white pixels.
    const { colours, inked } = await page.evaluate(async (dataUrl: string) => {
      // Runs in the page: the DOM types are declared here, as the test project compiles without lib "dom".
      interface Img { src: string; width: number; height: number; decode(): Promise<void> }
      interface Ctx { drawImage(image: Img, x: number, y: number): void; getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } }
      interface Canvas { width: number; height: number; getContext(kind: '2d'): Ctx | null }
      const dom = globalThis as unknown as { Image: new () => Img; document: { createElement(tag: 'canvas'): Canvas } };
      const image = new dom.Image();
      image.src = dataUrl;
      await image.decode();
      const canvas = dom.document.createElement('canvas');
      canvas.width = image.width;
      canvas.height = image.height;
      const context = canvas.getContext('2d')!;
      context.drawImage(image, 0, 0);
      const { data } = context.getImageData(0, 0, image.width, image.height);
      const seen = new Set<number>();
      let nonWhite = 0;
      for (let i = 0; i < data.length; i += 4) {
        seen.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!);
        if (data[i]! < 240 || data[i + 1]! < 240 || data[i + 2]! < 240) nonWhite++;
      }
      return { colours: seen.size, inked: nonWhite / (data.length / 4) };
    }, `data:image/png;base64,${png.toString('base64')}`);
    expect(colours).to.be.greaterThan(16);
    expect(inked).to.be.greaterThan(0.01);
  });

  it('gives the same numbers as JSON with ?format=json', async () => {
    const client = cleanup.add(await connect(server.url, { headers: { authorization: TOKEN } }), (each) => each.close());
    await createClient(Echo, client).add({ a: 1, b: 2 });
    const { status, type, body } = await get(server.port!, `${DEBUG_PATH}?format=json`, { authorization: TOKEN });
    expect(status).to.equal(200);
    expect(type).to.equal('application/json; charset=utf-8');
    const snapshot = JSON.parse(body) as DebugSnapshot;
    const add = snapshot.services.find((service) => service.name === 'Echo')!.methods.find((method) => method.name === 'add')!;
    expect(add).to.deep.include({ calls: 1, errors: {}, kind: 'unary' });
    expect(snapshot.tunnels).to.have.length(1);
    expect(snapshot.tunnels[0]).to.deep.include({ address: '127.0.0.1', served: 1, inFlight: 0 });
  });

  it('is behind authorize: 401 without the token, in the browser too', async () => {
    const plain = await get(server.port!, DEBUG_PATH);
    expect(plain.status).to.equal(401);
    expect(plain.body).to.equal('401 send Authorization: Bearer <token>\n');
    const page = await browser.newPage();
    cleanup.defer(() => page.close());
    const response = await page.goto(`http://127.0.0.1:${server.port}${DEBUG_PATH}`);
    expect(response?.status()).to.equal(401);
  });

  it('is off unless debugPath is set', async () => {
    const plainServer = await startEchoServer(cleanup);
    const response = await get(plainServer.port!, DEBUG_PATH);
    expect(response.status).to.equal(404);
  });
});
