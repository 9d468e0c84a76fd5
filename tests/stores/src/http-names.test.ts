import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCertificates, startNginx, type NginxServer } from '@q/http/testing';
import { QCOW_CLI, qemuImg, qemuIo, run, runOk, scratch, sha256File, type Scratch } from '@q/test-support';
import { freePort, qcowWith, serveWithQcow, startServer, type CliResult, type ServerProcess } from './served-qcow.js';

/**
 * `http(s)://` names on the command line, as users type them: images and whole backing chains on a real nginx over
 * TLS, read by `qcow info`, `convert`, `compare`, `check`, and served by `qcow serve -r` to nbdinfo and qemu-img.
 * The answers are qemu-img's conversions of the same files on the local disk.
 */
let dir: Scratch;
let root: string;
let server: NginxServer;
let env: Record<string, string>;
let url: (name: string) => string;

beforeAll(async () => {
  dir = scratch('q-http-names-');
  root = dir.path('root');
  mkdirSync(root);
  const at = (name: string): string => join(root, name);
  qemuImg(['create', '-q', '-f', 'qcow2', at('base.qcow2'), '8M']);
  qemuIo(at('base.qcow2'), ['write -P 0x11 0 3M', 'write -P 0x12 6M 512k']);
  // Relative backing names, as qemu-img records them when run beside the files.
  runOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', 'mid.qcow2'], { cwd: root });
  qemuIo(at('mid.qcow2'), ['write -P 0x22 1M 1M', 'write -z 6M 64k']);
  runOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'mid.qcow2', '-F', 'qcow2', 'top.qcow2'], { cwd: root });
  qemuIo(at('top.qcow2'), ['write -P 0x33 1536k 256k', 'write -P 0x34 7M 64k']);
  qemuImg(['convert', '-c', '-O', 'qcow2', '-o', 'compression_type=zstd', at('top.qcow2'), at('flat-zstd.qcow2')]);
  // A large image, served slowly, to change under a reader.
  qemuImg(['create', '-q', '-f', 'qcow2', at('big.qcow2'), '64M']);
  qemuIo(at('big.qcow2'), ['write -P 0x44 0 64M']);
  const certificates = await makeTestCertificates(dir.path('.'));
  env = { NODE_EXTRA_CA_CERTS: certificates.ca };
  server = await startNginx({ root, tls: certificates, serverDirectives: `location /slow/ { alias ${root}/; limit_rate 1m; }\n    location /norange/ { alias ${root}/; max_ranges 0; }` });
  url = (name) => `${server.url}${name}`;
});

afterAll(async () => {
  await server?.stop();
  dir?.cleanup();
});

/** The guest bytes qemu-img reads from the local file. */
function localSha(name: string): Promise<string> {
  const out = dir.path(`${name}.local.raw`);
  qemuImg(['convert', '-O', 'raw', join(root, name), out]);
  return sha256File(out);
}

describe('http(s) names', () => {
  it('convert -O raw of a chain whose every layer is on the server gives qemu-img\'s bytes', async () => {
    for (const name of ['top.qcow2', 'flat-zstd.qcow2']) {
      const out = dir.path(`${name}.https.raw`);
      const result = qcowWith(env, ['convert', '-O', 'raw', url(name), out]);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      expect(await sha256File(out)).toBe(await localSha(name));
    }
  });

  it('info names the backing file by its URL; compare and check read through the server', () => {
    const info = qcowWith(env, ['info', '--output=json', url('top.qcow2')]);
    expect(info.status).toBe(0);
    const parsed = JSON.parse(info.stdout) as Record<string, unknown>;
    expect(parsed['format']).toBe('qcow2');
    expect(parsed['backing-filename']).toBe('mid.qcow2');
    expect(parsed['full-backing-filename']).toBe(url('mid.qcow2'));
    expect(qcowWith(env, ['compare', url('top.qcow2'), join(root, 'top.qcow2')]).status).toBe(0);
    expect(qcowWith(env, ['compare', url('top.qcow2'), join(root, 'mid.qcow2')]).status).toBe(1);
    const check = qcowWith(env, ['check', url('top.qcow2')]);
    expect(check.stdout).toContain('No errors were found on the image.');
    expect(check.status).toBe(0);
  });

  it('a local overlay whose backing file is a URL reads through to it', async () => {
    // Written by QEMU over a local copy of the backing file, then pointed at the URL (qemu-img here has no curl).
    const local = dir.path('overlay-local.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', '-b', join(root, 'mid.qcow2'), '-F', 'qcow2', local]);
    qemuIo(local, ['write -P 0x55 0 64k', 'write -P 0x56 5M 64k']);
    const want = dir.path('overlay-local.raw');
    qemuImg(['convert', '-O', 'raw', local, want]);
    const overlay = dir.path('overlay.qcow2');
    writeFileSync(overlay, readFileSync(local));
    qemuImg(['rebase', '-u', '-b', url('mid.qcow2'), '-F', 'qcow2', overlay]);
    const got = dir.path('overlay-http.raw');
    const result = qcowWith(env, ['convert', '-O', 'raw', overlay, got]);
    expect(result.stderr).toBe('');
    expect(await sha256File(got)).toBe(await sha256File(want));
  });

  it('serve -r of a URL: nbdinfo maps it as qemu-nbd maps the local file, and qemu-img compare finds the same bytes', async () => {
    const served = await serveWithQcow(url('top.qcow2'), ['-r'], env);
    try {
      const ours = runOk('nbdinfo', ['--map', served.uri]);
      expect(ours.trim()).not.toBe('');
      const compare = run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', served.uri, join(root, 'top.qcow2')]);
      expect(compare.stdout).toContain('Images are identical.');
      expect(compare.status).toBe(0);
      const reference = await serveWithQemuNbd(join(root, 'top.qcow2'));
      try {
        expect(ours).toBe(runOk('nbdinfo', ['--map', reference.uri]));
      } finally {
        await reference.stop();
      }
    } finally {
      await served.stop();
    }
  });

  it('an image that changes on the server mid-read is a clear one-line error, never mixed bytes', async () => {
    // The replacement is ready before the copy starts, so swapping it in is one rename: the copy (nginx sends
    // 1 MiB/s per connection, the reader keeps 4 requests in flight, so 64 MiB take >= 16 s) cannot outrun it.
    const replacement = dir.path('big-new.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', replacement, '64M']);
    qemuIo(replacement, ['write -P 0x99 0 64M']);
    const later = new Date(Date.now() + 60_000);
    utimesSync(replacement, later, later);
    const out = dir.path('big.raw');
    const child = qcowAsync(['convert', '-O', 'raw', url('slow/big.qcow2'), out]);
    await untilDataIn(out);
    renameSync(replacement, join(root, 'big.qcow2'));
    const result = await child;
    expect(result.status).not.toBe(0);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/changed on the server/);
  });

  it('a missing URL and a server without range support are one-line errors', () => {
    const missing = qcowWith(env, ['info', url('nope.qcow2')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toContain('nope.qcow2');
    const noRange = qcowWith(env, ['convert', '-O', 'raw', url('norange/top.qcow2'), dir.path('norange.raw')]);
    expect(noRange.status).toBe(1);
    expect(noRange.stderr.trim().split('\n')).toHaveLength(1);
    expect(noRange.stderr).toMatch(/ignores Range/);
  });

  it('serve --cow of a URL takes writes in a private overlay', async () => {
    const served = await serveWithQcow(url('top.qcow2'), ['--cow'], env);
    try {
      runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x77 0 64k', served.uri]);
      expect(runOk('qemu-io', ['-f', 'raw', '-c', 'read -P 0x77 0 64k', '-c', 'read -P 0x22 1M 64k', served.uri])).not.toContain('Pattern verification failed');
    } finally {
      await served.stop();
    }
    expect(qcowWith(env, ['compare', url('top.qcow2'), join(root, 'top.qcow2')]).status).toBe(0);
  });
});


/** Resolves once guest bytes have landed in `path` (blocks allocated in the sparse raw output): the copy is under way. */
async function untilDataIn(path: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (existsSync(path) && statSync(path).blocks > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no data reached ${path} within 30 s`);
}

function qcowAsync(args: readonly string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [QCOW_CLI, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

async function serveWithQemuNbd(image: string): Promise<ServerProcess> {
  const port = await freePort();
  return startServer('qemu-nbd', ['-r', '-t', '-f', 'qcow2', '-b', '127.0.0.1', '-p', String(port), image], port);
}
