import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openHttpFile } from './http-file.js';
import { startNginx, type NginxServer } from './nginx-server.js';
import { makeImages, run } from './qemu-images.js';
import { makeTestCertificates } from './test-certificates.js';

/**
 * HTTPS against nginx with a certificate for 127.0.0.1 from a CA made here. Node's fetch reads extra CAs only at
 * startup (NODE_EXTRA_CA_CERTS), so the image is read in a child `node` importing the built packages, as a user's
 * program would; it prints the SHA-256 of the guest bytes, which must be that of qemu-img's raw conversion.
 */
const packageDir = join(import.meta.dirname, '..');
const entries = {
  http: join(packageDir, 'dist', 'index.js'),
  qcow2: join(packageDir, 'node_modules', '@q', 'qcow2', 'dist', 'index.js'),
};
const dir = mkdtempSync(join(tmpdir(), 'q-https-'));
const root = join(dir, 'root');
let server: NginxServer;

beforeAll(async () => {
  for (const entry of Object.values(entries)) {
    if (!existsSync(entry)) throw new Error(`${entry} is missing: build the workspace first (pnpm build)`);
  }
  mkdirSync(root);
  await makeImages(root);
  const certificates = await makeTestCertificates(dir);
  server = await startNginx({ root, tls: certificates });
});

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const SCRIPT = `
const [httpEntry, qcowEntry, url] = process.argv.slice(2);
const { httpStore } = await import(httpEntry);
const { openImage } = await import(qcowEntry);
const { createHash } = await import('node:crypto');
try {
  const device = await openImage(url, { store: httpStore({ retries: 0 }) });
  const hash = createHash('sha256');
  const chunk = new Uint8Array(256 * 1024);
  for (let offset = 0; offset < device.size; offset += chunk.length) {
    const part = chunk.subarray(0, Math.min(chunk.length, device.size - offset));
    await device.read(part, offset);
    hash.update(part);
  }
  await device.close();
  console.log(hash.digest('hex'));
} catch (error) {
  console.error(error.code + ': ' + error.message);
  process.exit(2);
}
`;

function readInChild(url: string, env: Record<string, string>): Promise<{ status: number; stdout: string; stderr: string }> {
  const script = join(dir, 'read-image.mjs');
  writeFileSync(script, SCRIPT);
  const args = [script, pathToFileURL(entries.http).href, pathToFileURL(entries.qcow2).href, url];
  return new Promise((resolve) => {
    execFile(process.execPath, args, { env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout: stdout.trim(), stderr: stderr.trim() });
    });
  });
}

describe('https', () => {
  it('reads a chain over https in a node that trusts the CA, byte for byte as qemu-img', async () => {
    await run('qemu-img', ['convert', '-O', 'raw', 'top.qcow2', join(dir, 'top.raw')], root);
    const want = createHash('sha256').update(readFileSync(join(dir, 'top.raw'))).digest('hex');
    const result = await readInChild(`${server.url}top.qcow2`, { NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') });
    expect(result).toEqual({ status: 0, stdout: want, stderr: '' });
  });

  it('refuses a server it cannot trust with a one-line E_IO, in a child and here', async () => {
    const result = await readInChild(`${server.url}zstd.qcow2`, {});
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^E_IO: network error: .*certificate.*$/);
    await expect(openHttpFile(`${server.url}zstd.qcow2`, { retries: 0 })).rejects.toMatchObject({ code: 'E_IO', message: expect.stringContaining('certificate') });
  });
});
