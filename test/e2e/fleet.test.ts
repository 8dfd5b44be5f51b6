/**
 * Scale-out with real processes: a client pool over three example server processes, one killed under load and
 * started again; and the cluster example, whose workers each get calls from a pool with one tunnel per worker.
 * Every figure is a count: calls by outcome, calls sent to the dead endpoint after its ejection, answers per
 * process.
 */
import { expect } from 'chai';
import { connect, createClient, type RpcClient } from '@tunnelrpc/client';
import { Fleet } from '@tunnelrpc/examples/fleet';
import { Cleanup } from '../helpers/cleanup.js';
import { kill, startClusterProcess, startServerProcess } from '../helpers/fleet.js';
import { Load, until } from '../helpers/load.js';

describe('client pool over server processes', function () {
  this.timeout(120_000);
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function open(urls: string | string[], options: Parameters<typeof connect>[1]): Promise<RpcClient> {
    return cleanup.add(await connect(urls, options), (client) => client.close());
  }

  it('ends every call with a result or a code when one of three servers is killed under load, sends nothing to it once ejected, spreads over the two left, and gives it calls again when it returns', async () => {
    const servers = await Promise.all([startServerProcess(cleanup), startServerProcess(cleanup), startServerProcess(cleanup)]);
    const client = await open(servers.map((server) => server.url), { minReconnectDelay: 20, maxReconnectDelay: 200 });
    await until(() => client.endpoints.every((endpoint) => endpoint.state === 'ready'));
    const load = cleanup.add(new Load(client, 32), (each) => each.stop());
    await load.answered(600);
    const victim = servers[1]!;
    const survivors = [servers[0]!.pid, servers[2]!.pid];

    load.phase = 'killed';
    const sentAtKill = client.endpoints[1]!.sent;
    const killedAt = Date.now();
    await kill(victim);
    await until(() => client.endpoints[1]!.ejections > 0);
    const ejectedAfter = Date.now() - killedAt;
    const sentAtEjection = client.endpoints[1]!.sent;
    load.phase = 'ejected';
    await load.answered(1200);
    const sentWhileEjected = client.endpoints[1]!.sent - sentAtEjection;
    const ejectedState = client.endpoints[1]!;

    // Calls answered between the restart and the phase change below may reach the returning server: they belong
    // to neither phase.
    load.phase = 'returning';
    const back = await startServerProcess(cleanup, victim.port);
    await until(() => client.endpoints[1]!.state === 'ready');
    load.phase = 'returned';
    await until(() => (load.pidsIn('returned').get(back.pid) ?? 0) >= 50);
    await load.stop();

    const tally = load.tally();
    const spread = load.pidsIn('ejected');
    console.log(`      outcomes ${JSON.stringify(tally)}; calls ${load.started}, ended ${load.outcomes.length}`);
    console.log(`      ejected ${ejectedAfter} ms after the kill (${ejectedState.ejections} ejections, state ${ejectedState.state}); sent to it between kill and ejection ${sentAtEjection - sentAtKill}, after ejection ${sentWhileEjected}`);
    console.log(`      answers while ejected: ${JSON.stringify(Object.fromEntries(spread))}; after return: ${JSON.stringify(Object.fromEntries(load.pidsIn('returned')))}`);

    // Every call ended, with a result or a code.
    expect(load.outcomes.length).to.equal(load.started);
    for (const outcome of load.outcomes) {
      if (outcome.code === undefined) continue;
      // Only a call that may have run on the killed server fails, and only when it is not idempotent.
      expect(outcome, JSON.stringify(outcome)).to.deep.include({ method: 'work', code: 'UNAVAILABLE', mayHaveRun: true });
    }
    expect(tally['whoami ok']).to.equal(load.outcomes.filter((outcome) => outcome.method === 'whoami').length);
    // None went to the dead one once it was ejected; the two left shared the load.
    expect(sentWhileEjected).to.equal(0);
    expect([...spread.keys()].sort()).to.deep.equal([...survivors].sort());
    // The returning server gets calls again.
    expect(load.pidsIn('returned').get(back.pid) ?? 0).to.be.at.least(50);
  });

  it('answers from every cluster worker to a pool with tunnelsPerEndpoint equal to the workers', async () => {
    const workers = 2;
    const cluster = await startClusterProcess(cleanup, workers);
    const client = await open(cluster.url, { tunnelsPerEndpoint: workers });
    await until(() => client.endpoints[0]!.tunnels === workers);
    const fleet = createClient(Fleet, client);
    const answers = await Promise.all(Array.from({ length: 200 }, () => fleet.whoami()));
    const pids = new Map<number, number>();
    for (const { pid } of answers) pids.set(pid, (pids.get(pid) ?? 0) + 1);
    console.log(`      answers per worker: ${JSON.stringify(Object.fromEntries(pids))}`);
    expect(pids.size).to.equal(workers);
    expect(pids.has(cluster.child.pid!)).to.equal(false);
  });
});
