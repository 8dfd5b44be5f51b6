/**
 * rtt-probe: a server and a client in this one process on 127.0.0.1, a few calls between them, then one JSON line
 * with the TCP_INFO both ends read of their tunnel: `{"client": TcpInfo | null, "server": TcpInfo | null}`. The
 * TCP_INFO test runs it inside a network namespace whose loopback has a netem delay.
 *
 *   node test/dist/scripts/rtt-probe.js
 */
import { connect, createClient } from '@tunnelrpc/client';
import { Echo, createEchoService } from '@tunnelrpc/examples';
import { RpcServer, type TcpInfo } from '@tunnelrpc/server';

let serverReader: (() => TcpInfo | undefined) | undefined;
const server = new RpcServer({ listeners: [(event) => { if (event.type === 'open') serverReader = event.tcpInfo; }] }).register(Echo, createEchoService());
const address = await server.listen(0, '127.0.0.1');
const client = await connect(address.url);
const echo = createClient(Echo, client);
for (let i = 0; i < 10; i++) await echo.echo({ text: `probe ${i}` });
console.log(JSON.stringify({ client: client.endpoints[0]?.tcpInfo[0] ?? null, server: serverReader?.() ?? null }));
await client.close();
await server.close();
