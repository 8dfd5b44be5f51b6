/**
 * Starts each box from its README recipe (readmeRecipe), with the recipe's example ports replaced by free ones and,
 * where the daemon needs them, file paths inside the box's temp folder added around it.
 */
import { freePort, fill, readmeRecipe, startBox, type Box } from '../helpers/boxes.js';
import type { Cleanup } from '../helpers/cleanup.js';

/** Running is a started box and the port clients dial. */
export interface Running {
  box: Box;
  port: number;
}

/** startHaproxy runs the README recipe `recipe` with `ports` (example port -> real port) and extra replacements. */
export async function startHaproxy(
  cleanup: Cleanup,
  binary: string,
  recipe: string,
  listen: string,
  servers: ReadonlyArray<readonly [string, number]>,
  extra: ReadonlyArray<readonly [string, string]> = [],
): Promise<Running> {
  const port = await freePort();
  const config = fill(readmeRecipe(recipe), [[listen, `127.0.0.1:${port}`], ...servers.map(([from, to]) => [from, `127.0.0.1:${to}`] as const), ...extra]);
  const box = await startBox(cleanup, binary, {
    name: 'haproxy',
    configFile: 'haproxy.cfg',
    config,
    checkArgs: ['-c', '-f', '{config}'],
    runArgs: ['-db', '-f', '{config}'],
    port,
  });
  return { box, port };
}

/** startNginx runs the README recipe `recipe` (a `server` block, or a `stream` block) inside a minimal nginx.conf. */
export async function startNginx(
  cleanup: Cleanup,
  binary: string,
  recipe: string,
  listen: string,
  serverPort: number,
  context: 'http' | 'stream',
  extra: ReadonlyArray<readonly [string, string]> = [],
): Promise<Running> {
  const port = await freePort();
  const block = fill(readmeRecipe(recipe), [[listen, `127.0.0.1:${port}`], ['127.0.0.1:8080', `127.0.0.1:${serverPort}`], ...extra]);
  const wrapped =
    context === 'http'
      ? `http {\n    access_log off;\n    client_body_temp_path {dir}/body;\n    proxy_temp_path {dir}/proxy;\n    fastcgi_temp_path {dir}/fastcgi;\n    uwsgi_temp_path {dir}/uwsgi;\n    scgi_temp_path {dir}/scgi;\n${block}}\n`
      : block;
  const config = [
    context === 'stream' ? 'load_module /usr/lib/nginx/modules/ngx_stream_module.so;' : '',
    'daemon off;',
    'master_process off;',
    'worker_processes 1;',
    'pid {dir}/nginx.pid;',
    'error_log {dir}/error.log warn;',
    'events { worker_connections 1024; }',
    wrapped,
  ].join('\n');
  const box = await startBox(cleanup, binary, {
    name: 'nginx',
    configFile: 'nginx.conf',
    config,
    checkArgs: ['-t', '-q', '-e', '{dir}/error.log', '-p', '{dir}', '-c', '{config}'],
    runArgs: ['-e', '{dir}/error.log', '-p', '{dir}', '-c', '{config}'],
    port,
  });
  return { box, port };
}

/** startSquid runs the README recipe `squid` with its ports replaced, plus file paths in the temp folder. */
export async function startSquid(cleanup: Cleanup, binary: string, allowedPort: number): Promise<Running> {
  const port = await freePort();
  const recipe = fill(readmeRecipe('squid'), [['127.0.0.1:3128', `127.0.0.1:${port}`], ['tunnelrpc_ports port 8080', `tunnelrpc_ports port ${allowedPort}`]]);
  // The harness adds only where squid keeps its files, and no cache, pinger or shutdown grace.
  const config = `${recipe}pid_filename {dir}/squid.pid\ncache_log {dir}/cache.log\naccess_log none\ncache deny all\npinger_enable off\nshutdown_lifetime 0 seconds\ncoredump_dir {dir}\n`;
  const box = await startBox(cleanup, binary, {
    name: 'squid',
    configFile: 'squid.conf',
    config,
    checkArgs: ['-k', 'parse', '-f', '{config}'],
    runArgs: ['-N', '-f', '{config}'],
    port,
    openFolder: true,
  });
  return { box, port };
}

/** startTinyproxy runs the README recipe `tinyproxy` with its ports replaced, in the foreground. */
export async function startTinyproxy(cleanup: Cleanup, binary: string, allowedPort: number): Promise<Running> {
  const port = await freePort();
  const recipe = fill(readmeRecipe('tinyproxy'), [['Port 8888', `Port ${port}`], ['ConnectPort 8080', `ConnectPort ${allowedPort}`]]);
  // The harness adds the unprivileged user tinyproxy drops to when started as root, and its pid file.
  const config = `${recipe}User nobody\nGroup nogroup\nPidFile "{dir}/tinyproxy.pid"\nLogLevel Warning\n`;
  // tinyproxy has no config test of its own: -c with a bad file fails at start, which startBox reports.
  const box = await startBox(cleanup, binary, {
    name: 'tinyproxy',
    configFile: 'tinyproxy.conf',
    config,
    checkArgs: ['-v'],
    runArgs: ['-d', '-c', '{config}'],
    port,
    openFolder: true,
  });
  return { box, port };
}
