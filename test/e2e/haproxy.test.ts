/**
 * Scale-out behind HAProxy (mode tcp, balance leastconn, a tcp-check doing the real CONNECT handshake) in front of
 * three example server processes: one is killed under load, every call ends with a result or a code, the two
 * left carry the load, and the health check takes the dead one out and puts it back when it returns. Skipped with
 * one line when haproxy is not installed; TUNNELRPC_REQUIRE_DEPLOY=1 (`pnpm test:deploy`) makes that a failure.
 */
import { expect } from 'chai';
import { connect, createClient, type ClientOptions, type RpcClient } from '@tunnelrpc/client';
import { Fleet } from '@tunnelrpc/examples/fleet';
import { Cleanup } from '../helpers/cleanup.js';
import { needBox } from '../helpers/boxes.js';
import { kill, startHaproxy, startServerProcess } from '../helpers/fleet.js';
import { Load, until } from '../helpers/load.js';

describe('HAProxy in front of three server processes', function () {
  this.timeout(120_000);
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  let haproxyBinary = '';

  before(function () {
    haproxyBinary = needBox(this, 'haproxy');
  });

  async function open(url: string, options: ClientOptions): Promise<RpcClient> {
    return cleanup.add(await connect(url, options), (client) => client.close());
  }

  // Which processes answer `calls` whoami calls from a new client with `tunnels` tunnels through the proxy.
  async function freshAnswers(url: string, tunnels: number, calls: number): Promise<Map<number, number>> {
    const client = await open(url, { tunnelsPerEndpoint: tunnels });
    await until(() => client.endpoints[0]!.tunnels === tunnels);
    const fleet = createClient(Fleet, client);
    const pids = new Map<number, number>();
    for (const { pid } of await Promise.all(Array.from({ length: calls }, () => fleet.whoami()))) pids.set(pid, (pids.get(pid) ?? 0) + 1);
    await client.close();
    return pids;
  }

  it('ends every call with a result or a code when a server is killed under load; the health check takes it out and puts it back', async () => {
    const servers = await Promise.all([startServerProcess(cleanup), startServerProcess(cleanup), startServerProcess(cleanup)]);
    const proxy = await startHaproxy(cleanup, haproxyBinary, servers.map((server) => server.port));
    // leastconn spreads the six tunnels two per server.
    const client = await open(proxy.url, { tunnelsPerEndpoint: 6, minReconnectDelay: 20, maxReconnectDelay: 200 });
    await until(() => client.endpoints[0]!.tunnels === 6);
    const load = cleanup.add(new Load(client, 32), (each) => each.stop());
    await load.answered(600);
    const victim = servers[1]!;
    const survivors = [servers[0]!.pid, servers[2]!.pid];
    expect([...load.pidsIn('before').keys()].sort()).to.deep.equal(servers.map((server) => server.pid).sort());

    load.phase = 'killed';
    await kill(victim);
    await proxy.waitForStatus('s2', 'DOWN');
    load.phase = 'down';
    await load.answered(1200);
    // With the dead one marked down, leastconn (which would favour a server with no connections) never picks it.
    const whileDown = await freshAnswers(proxy.url, 4, 100);

    const back = await startServerProcess(cleanup, victim.port);
    await proxy.waitForStatus('s2', 'UP');
    load.phase = 'returned';
    // A new tunnel goes to the server with the fewest connections: the one that came back.
    const afterReturn = await freshAnswers(proxy.url, 1, 20);
    await load.stop();

    const tally = load.tally();
    console.log(`      outcomes ${JSON.stringify(tally)}; calls ${load.started}, ended ${load.outcomes.length}`);
    console.log(`      answers while down: ${JSON.stringify(Object.fromEntries(load.pidsIn('down')))}; new client while down: ${JSON.stringify(Object.fromEntries(whileDown))}; new client after return: ${JSON.stringify(Object.fromEntries(afterReturn))} (returned pid ${back.pid})`);

    expect(load.outcomes.length).to.equal(load.started);
    for (const outcome of load.outcomes) {
      if (outcome.code === undefined) continue;
      expect(outcome, JSON.stringify(outcome)).to.deep.include({ method: 'work', code: 'UNAVAILABLE', mayHaveRun: true });
    }
    expect([...load.pidsIn('down').keys()].sort()).to.deep.equal([...survivors].sort());
    expect([...whileDown.keys()].every((pid) => survivors.includes(pid))).to.equal(true);
    expect([...afterReturn.keys()]).to.deep.equal([back.pid]);
  });
});
