import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/**
 * A real nginx for tests of HTTP stores (Node only; `@q/http/testing`). Each server gets its own prefix directory
 * (config, logs, pid, temp paths), listens on a free loopback port, runs in the foreground as one process
 * (`daemon off; master_process off;`) and is stopped by its pid. A missing nginx is an error, never a skip: a test
 * of a web server without one would prove nothing.
 */
export interface NginxOptions {
  /** The directory served at `/`. */
  root: string;
  /** Serve HTTPS with this certificate chain and key (PEM files). */
  tls?: { certificate: string; key: string };
  /** Directives put inside the `server` block, such as `location /whole/ { max_ranges 0; }`. */
  serverDirectives?: string;
  /** The nginx binary; default: `nginx` on PATH or in /usr/sbin. */
  binary?: string;
}

export interface NginxServer {
  /** `http://127.0.0.1:PORT/` (or https). */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** The directory of the config and the logs. */
  readonly prefix: string;
  /** Requests logged so far, oldest first; waits until the log stops growing (nginx logs after it answers). */
  accessLog(): Promise<AccessLogEntry[]>;
  /** Stops nginx (SIGTERM, then SIGKILL after 5 s) and removes the prefix directory. */
  stop(): Promise<void>;
}

/** One request as nginx logged it. `range` is the Range header sent ('-' when none). */
export interface AccessLogEntry {
  method: string;
  uri: string;
  status: number;
  range: string;
  bodyBytes: number;
}

const STARTUP_MS = 15_000;

export async function startNginx(options: NginxOptions): Promise<NginxServer> {
  const binary = options.binary ?? findNginx();
  // A free port can be taken by someone else before nginx binds it; a fresh port on each try.
  let lastError: unknown;
  for (let tries = 0; tries < 3; tries++) {
    try {
      return await startOnce(binary, options, await freePort());
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

async function startOnce(binary: string, options: NginxOptions, port: number): Promise<NginxServer> {
  const prefix = mkdtempSync(join(tmpdir(), 'q-nginx-'));
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(conf, nginxConf(prefix, port, options));
  const child = spawn(binary, ['-e', join(prefix, 'error.log'), '-p', prefix, '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Uint8Array) => (stderr += new TextDecoder().decode(chunk)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const fail = (why: string): Error => {
    killOnExit();
    process.removeListener('exit', killOnExit);
    const log = existsSync(join(prefix, 'error.log')) ? readFileSync(join(prefix, 'error.log'), 'utf8') : '';
    rmSync(prefix, { recursive: true, force: true });
    return new Error(`nginx (${binary}) ${why}: ${(stderr + log).trim().split('\n').slice(-5).join(' | ')}`);
  };
  const deadline = Date.now() + STARTUP_MS;
  for (;;) {
    const state = await Promise.race([exited.then(() => 'exited' as const), spawnError, canConnect(port).then((up) => (up ? ('up' as const) : ('down' as const)))]);
    if (state instanceof Error) throw fail(`could not be started (${state.message})`);
    if (state === 'exited') throw fail('exited at startup');
    if (state === 'up') break;
    if (Date.now() > deadline) throw fail(`did not accept connections within ${STARTUP_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const scheme = options.tls === undefined ? 'http' : 'https';
  return {
    url: `${scheme}://127.0.0.1:${port}/`,
    port,
    pid: child.pid!,
    prefix,
    accessLog: () => readAccessLog(join(prefix, 'access.log')),
    stop: async () => {
      await stopChild(child, exited);
      process.removeListener('exit', killOnExit);
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

function nginxConf(prefix: string, port: number, options: NginxOptions): string {
  const path = (name: string): string => JSON.stringify(join(prefix, name));
  const tls =
    options.tls === undefined
      ? ''
      : `ssl_certificate ${JSON.stringify(options.tls.certificate)};\n    ssl_certificate_key ${JSON.stringify(options.tls.key)};`;
  return `daemon off;
master_process off;
worker_processes 1;
pid ${path('nginx.pid')};
error_log ${path('error.log')} warn;
events { worker_connections 256; }
http {
  # Images are bytes; pages and modules need their types (a browser runs no module served as octet-stream).
  types { text/html html; text/javascript js mjs; application/json json; }
  default_type application/octet-stream;
  log_format q '$request_method $request_uri $status $http_range $body_bytes_sent';
  access_log ${path('access.log')} q;
  client_body_temp_path ${path('client-body')};
  proxy_temp_path ${path('proxy')};
  fastcgi_temp_path ${path('fastcgi')};
  uwsgi_temp_path ${path('uwsgi')};
  scgi_temp_path ${path('scgi')};
  sendfile on;
  server {
    listen 127.0.0.1:${port}${options.tls === undefined ? '' : ' ssl'};
    server_name 127.0.0.1;
    root ${JSON.stringify(options.root)};
    ${tls}
    location / { }
    ${options.serverDirectives ?? ''}
  }
}
`;
}

async function readAccessLog(path: string): Promise<AccessLogEntry[]> {
  let text = '';
  // nginx writes a request's line after the answer is sent: wait until two looks agree.
  for (let looks = 0; looks < 40; looks++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = existsSync(path) ? readFileSync(path, 'utf8') : '';
    if (looks > 0 && now === text) break;
    text = now;
  }
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [method = '', uri = '', status = '0', range = '-', bodyBytes = '0'] = line.split(' ');
      return { method, uri, status: Number(status), range, bodyBytes: Number(bodyBytes) };
    });
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  process.kill(child.pid!, 'SIGTERM');
  const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function findNginx(): string {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin'];
  for (const dir of dirs) {
    if (dir !== '' && existsSync(join(dir, 'nginx'))) return join(dir, 'nginx');
  }
  throw new Error('nginx is not installed (apt-get install nginx): the HTTP store is tested against a real nginx');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
