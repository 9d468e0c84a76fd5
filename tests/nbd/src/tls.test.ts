// NBD over TLS against real clients: libnbd's nbdinfo and qemu's qemu-img / qemu-io, with x509 certificates and
// pre-shared keys made by GnuTLS's certtool and psktool, and a hand-written client for what happens on the wire
// before STARTTLS, compared with what qemu-nbd does.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, qemuIo, run, runOk } from '@q/test-support';
import type { ServeProcess } from './nbd-server.js';
import { startQemuNbd } from './qemu-nbd-process.js';
import {
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_SERVER,
  RawNbdClient,
} from './raw-client.js';
import { serveScope } from './serve-scope.js';
import { haggleAfterTls, haggleBeforeTls, u32 } from './starttls-probe.js';
import { makeTlsMaterial, type TlsMaterial } from './tls-material.js';

const scope = serveScope('qcow-nbd-tls-serve-');
let tls: TlsMaterial;
beforeAll(() => {
  tls = makeTlsMaterial();
});
afterAll(() => tls?.cleanup());

const SIZE = 64 << 20;

/** A 64 MiB qcow2 image with data, a zeroed range and holes, written by qemu-io. */
function sampleImage(): string {
  const image = scope.dir.path('disk.qcow2');
  qemuImg(['create', '-q', '-f', 'qcow2', image, '64M']);
  qemuIo(image, ['write -P 0x11 1M 2M', 'write -P 0x22 10M 64k', 'write -z 20M 1M', 'write -P 0x33 63M 1M']);
  return image;
}

const port = (server: ServeProcess): number => (server.address as { port: number }).port;
const socketOf = (server: ServeProcess): string => (server.address as { path: string }).path;

/** libnbd URIs (nbdinfo(1), nbd_connect_uri(3)): nbds:// insists on TLS. */
const certUri = (server: ServeProcess, clientDir: string): string =>
  'port' in server.address
    ? `nbds://127.0.0.1:${port(server)}/?tls-certificates=${clientDir}`
    : `nbds+unix:///?socket=${socketOf(server)}&tls-certificates=${clientDir}`;
const pskUri = (server: ServeProcess, user: string, file: string): string => `nbds://${user}@127.0.0.1:${port(server)}/?tls-psk-file=${file}`;

/** qemu's client side: a credentials object and the nbd driver's options (TCP, or a Unix socket named localhost). */
const x509Object = (dir: string): string[] => ['--object', `tls-creds-x509,id=tls0,endpoint=client,dir=${dir}`];
const pskObject = (dir: string, user: string): string[] => ['--object', `tls-creds-psk,id=tls0,endpoint=client,dir=${dir},username=${user}`];
const nbdOpts = (server: ServeProcess): string =>
  'port' in server.address
    ? `driver=nbd,host=127.0.0.1,port=${port(server)},tls-creds=tls0`
    : `driver=nbd,path=${socketOf(server)},tls-creds=tls0,tls-hostname=localhost`;

interface NbdInfo {
  TLS: boolean;
  exports: Array<{ 'export-size': number; is_read_only: boolean }>;
}
const nbdinfo = (uri: string): NbdInfo => JSON.parse(runOk('nbdinfo', ['--json', uri])) as NbdInfo;

/** What the server prints arrives through a pipe, a moment after the client it concerns has gone: wait for it. */
async function stderrOf(server: { stderr(): string }, expected: string | RegExp): Promise<string> {
  for (let waited = 0; waited < 10_000; waited += 50) {
    const text = server.stderr();
    if (typeof expected === 'string' ? text.includes(expected) : expected.test(text)) return text;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return server.stderr();
}

/** A client that must get nothing: it fails, and prints no export size. */
function expectRefused(result: { status: number; stdout: string; stderr: string }): void {
  expect(result.status, result.stdout + result.stderr).not.toBe(0);
  expect(result.stdout).not.toContain(String(SIZE));
  expect(result.stdout).not.toContain('64 MiB');
}

describe('qcow serve --tls-creds (x509)', () => {
  it('nbdinfo and qemu-img read the export over TLS with a client certificate', async () => {
    const image = sampleImage();
    const server = await scope.serve(['-t', '-r', '--tls-creds', tls.server, image], 'tcp');
    const info = nbdinfo(certUri(server, tls.client));
    expect(info.TLS).toBe(true);
    expect(info.exports[0]!['export-size']).toBe(SIZE);
    expect(info.exports[0]!.is_read_only).toBe(true);
    const compare = run('qemu-img', ['compare', ...x509Object(tls.client), '--image-opts', nbdOpts(server), `driver=qcow2,file.filename=${image}`]);
    expect(compare.status, compare.stdout + compare.stderr).toBe(0);
    expect(compare.stdout).toContain('Images are identical');
  });

  it('qemu-io writes over TLS (Unix socket) land in the image: check is clean and the data reads back', async () => {
    const image = sampleImage();
    const server = await scope.serve(['-t', '--tls-creds', tls.server, image]);
    const io = (commands: string[]): string =>
      runOk('qemu-io', [...x509Object(tls.client), '--image-opts', ...commands.flatMap((c) => ['-c', c]), nbdOpts(server)]);
    io(['write -P 0x66 5M 300k', 'write -z 1M 512k', 'discard 10M 64k', 'flush']);
    const readBack = io(['read -P 0x66 5M 300k', 'read -P 0 1M 512k']);
    expect(readBack).not.toMatch(/fail|mismatch/i);
    expect(nbdinfo(certUri(server, tls.client)).exports[0]!['export-size']).toBe(SIZE);
    expect(await server.stop()).toBe(0);
    const check = run('qemu-img', ['check', image]);
    expect(check.status, check.stdout + check.stderr).toBe(0);
    qemuIo(image, ['read -P 0x66 5M 300k', 'read -P 0 1M 512k', 'read -P 0x11 1536k 1536k', 'read -P 0x33 63M 1M']);
  });

  it('refuses a client without TLS, one without a certificate and one from another CA, and keeps serving', async () => {
    const image = sampleImage();
    const server = await scope.serve(['-t', '-r', '--tls-creds', tls.server, image], 'tcp');
    expectRefused(run('nbdinfo', ['--json', `nbd://127.0.0.1:${port(server)}`]));
    expectRefused(run('nbdinfo', ['--json', certUri(server, tls.noCert)]));
    expectRefused(run('nbdinfo', ['--json', certUri(server, tls.foreign)]));
    expectRefused(run('qemu-img', ['info', '--image-opts', `driver=nbd,host=127.0.0.1,port=${port(server)}`]));
    expectRefused(run('qemu-img', ['info', ...x509Object(tls.foreign), '--image-opts', nbdOpts(server)]));
    expect(server.child.exitCode).toBeNull();
    expect(nbdinfo(certUri(server, tls.client)).exports[0]!['export-size']).toBe(SIZE);
    // Every refusal is one line on the server's stderr (as qemu-nbd reports failed negotiations).
    expect(await stderrOf(server, /TLS: TLS handshake failed/)).toMatch(/TLS: TLS handshake failed/);
    expect(await server.stop()).toBe(0);
  });

  it('a revoked client certificate (ca-crl.pem) is refused, as by qemu-nbd', async () => {
    const image = sampleImage();
    const server = await scope.serve(['-t', '-r', '--tls-creds', tls.crlServer, image]);
    expect(nbdinfo(certUri(server, tls.client)).exports[0]!['export-size']).toBe(SIZE);
    expectRefused(run('nbdinfo', ['--json', certUri(server, tls.client2)]));
    expect(await stderrOf(server, 'CERT_REVOKED')).toContain('client certificate refused: CERT_REVOKED');
    const socket = scope.dir.path('qemu-nbd.sock');
    const qemu = await startQemuNbd(socket, ['--object', `tls-creds-x509,id=tls0,endpoint=server,dir=${tls.crlServer}`, '--tls-creds', 'tls0', '-r', image]);
    try {
      expect(nbdinfo(`nbds+unix:///?socket=${socket}&tls-certificates=${tls.client}`).exports[0]!['export-size']).toBe(SIZE);
      expectRefused(run('nbdinfo', ['--json', `nbds+unix:///?socket=${socket}&tls-certificates=${tls.client2}`]));
    } finally {
      await qemu.stop();
    }
  });

  it('--tls-verify-peer=off serves clients without a certificate (qemu: verify-peer=off)', async () => {
    const image = sampleImage();
    const server = await scope.serve(['-t', '-r', '--tls-creds', tls.server, '--tls-verify-peer=off', image], 'tcp');
    expect(nbdinfo(certUri(server, tls.noCert)).exports[0]!['export-size']).toBe(SIZE);
    const info = runOk('qemu-img', ['info', ...x509Object(tls.noCert), '--image-opts', nbdOpts(server)]);
    expect(info).toContain(`(${SIZE} bytes)`);
  });

  it('--tls-authz serves only the listed distinguished names, written as for qemu-nbd', async () => {
    const image = sampleImage();
    const server = await scope.serve(['-t', '-r', '--tls-creds', tls.server, '--tls-authz', tls.client1Identity, '--tls-authz', 'CN=someone-else', image], 'tcp');
    expect(nbdinfo(certUri(server, tls.client)).exports[0]!['export-size']).toBe(SIZE);
    expectRefused(run('nbdinfo', ['--json', certUri(server, tls.client2)]));
    expectRefused(run('qemu-img', ['info', ...x509Object(tls.client2), '--image-opts', nbdOpts(server)]));
    const denied = `TLS identity '${tls.client2Identity}' is not authorised`;
    expect(await stderrOf(server, denied)).toContain(denied);
    runOk('qemu-io', [...x509Object(tls.client), '--image-opts', '-r', '-c', 'read -P 0x22 10M 64k', nbdOpts(server)]);

    // The same identity string admits the same client to qemu-nbd (authz-simple), and refuses the other.
    const socket = scope.dir.path('qemu-nbd.sock');
    const qemu = await startQemuNbd(socket, [
      '--object',
      `tls-creds-x509,id=tls0,endpoint=server,dir=${tls.server}`,
      '--object',
      `authz-simple,id=auth0,identity=${tls.client1Identity.replaceAll(',', ',,')}`,
      '--tls-creds',
      'tls0',
      '--tls-authz',
      'auth0',
      '-r',
      image,
    ]);
    try {
      expect(nbdinfo(`nbds+unix:///?socket=${socket}&tls-certificates=${tls.client}`).exports[0]!['export-size']).toBe(SIZE);
      expectRefused(run('nbdinfo', ['--json', `nbds+unix:///?socket=${socket}&tls-certificates=${tls.client2}`]));
      const qemuDenied = `authz check for ${tls.client2Identity} is denied`;
      expect(await stderrOf(qemu, qemuDenied)).toContain(qemuDenied);
    } finally {
      await qemu.stop();
    }
  });
});

describe('qcow serve --tls-psk', () => {
  it('serves nbdinfo and qemu holding a key from the psktool file; a wrong key gets nothing', async () => {
    const image = sampleImage();
    // The directory form, as qemu's tls-creds-psk dir=.
    const server = await scope.serve(['-t', '--tls-psk', tls.pskDir, image], 'tcp');
    const info = nbdinfo(pskUri(server, 'alice', tls.pskFile));
    expect(info.TLS).toBe(true);
    expect(info.exports[0]!['export-size']).toBe(SIZE);
    const io = run('qemu-io', [...pskObject(tls.pskDir, 'bob'), '--image-opts', '-c', 'write -P 0x77 0 128k', '-c', 'read -P 0x77 0 128k', '-c', 'read -P 0x11 1M 1M', nbdOpts(server)]);
    expect(io.status, io.stdout + io.stderr).toBe(0);
    expect(io.stdout).not.toMatch(/fail|mismatch/i);
    expectRefused(run('nbdinfo', ['--json', pskUri(server, 'alice', tls.wrongPsk)]));
    expectRefused(run('qemu-img', ['info', ...pskObject(tls.wrongPskDir, 'alice'), '--image-opts', nbdOpts(server)]));
    expectRefused(run('nbdinfo', ['--json', `nbd://127.0.0.1:${port(server)}`]));
    expect(server.child.exitCode).toBeNull();
    expect(await server.stop()).toBe(0);
    qemuIo(image, ['read -P 0x77 0 128k']);
    expect(run('qemu-img', ['check', image]).status).toBe(0);
  });

  it('--tls-psk FILE with --tls-authz USERNAME serves only that user', async () => {
    const image = sampleImage();
    const server = await scope.serve(['-t', '-r', '--tls-psk', tls.pskFile, '--tls-authz', 'bob', image], 'tcp');
    expect(nbdinfo(pskUri(server, 'bob', tls.pskFile)).exports[0]!['export-size']).toBe(SIZE);
    expectRefused(run('nbdinfo', ['--json', pskUri(server, 'alice', tls.pskFile)]));
    expect(await stderrOf(server, "TLS identity 'alice' is not authorised")).toContain("TLS identity 'alice' is not authorised");
  });
});

describe('STARTTLS on the wire, beside qemu-nbd', () => {
  it('before TLS every option is refused with TLS_REQD and nothing about the export is said, as by qemu-nbd', async () => {
    const image = sampleImage();
    const common = ['-r', '-x', 'secret-name', '-D', 'secret description'];
    const ours = await scope.serve(['-t', ...common, '--tls-creds', tls.server, image]);
    const socket = scope.dir.path('qemu-nbd.sock');
    const qemu = await startQemuNbd(socket, ['--object', `tls-creds-x509,id=tls0,endpoint=server,dir=${tls.server}`, '--tls-creds', 'tls0', ...common, image]);
    try {
      const before = await haggleBeforeTls({ path: socketOf(ours) });
      const expected: Array<[number, number]> = [
        [NBD_OPT_LIST, NBD_REP_ERR_TLS_REQD],
        [NBD_OPT_STRUCTURED_REPLY, NBD_REP_ERR_TLS_REQD],
        [NBD_OPT_INFO, NBD_REP_ERR_TLS_REQD],
        [NBD_OPT_GO, NBD_REP_ERR_TLS_REQD],
        [NBD_OPT_LIST_META_CONTEXT, NBD_REP_ERR_TLS_REQD],
        [NBD_OPT_SET_META_CONTEXT, NBD_REP_ERR_TLS_REQD],
        [4242, NBD_REP_ERR_TLS_REQD],
        [NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID],
      ];
      expect(before.answers).toEqual(expected);
      expect(before.said).not.toMatch(/secret|67108864|64 MiB/);
      expect((await haggleBeforeTls({ path: socket })).answers).toEqual(expected);

      const after = await haggleAfterTls({ path: socketOf(ours) }, tls.client);
      const upgraded: Array<[number, number]> = [
        [NBD_OPT_STARTTLS, NBD_REP_ACK],
        [NBD_OPT_LIST, NBD_REP_SERVER],
        [NBD_OPT_LIST, NBD_REP_ACK],
        [NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID],
      ];
      expect(after).toEqual({ answers: upgraded, listed: 'secret-name' });
      expect(await haggleAfterTls({ path: socket }, tls.client)).toEqual({ answers: upgraded, listed: 'secret-name' });
    } finally {
      await qemu.stop();
    }
  });

  it('without TLS, STARTTLS is answered NBD_REP_ERR_POLICY, as by qemu-nbd', async () => {
    const image = sampleImage();
    const ours = await scope.serve(['-t', '-r', image]);
    const socket = scope.dir.path('qemu-nbd.sock');
    const qemu = await startQemuNbd(socket, ['-r', image]);
    try {
      for (const address of [{ path: socketOf(ours) }, { path: socket }]) {
        const client = await RawNbdClient.open(address);
        await client.greet();
        expect((await client.option(NBD_OPT_STARTTLS)).map((r) => r.type)).toEqual([NBD_REP_ERR_POLICY]);
        expect((await client.option(NBD_OPT_STARTTLS, Buffer.from('x'))).map((r) => r.type)).toEqual([NBD_REP_ERR_INVALID]);
        expect(await client.handshake({ structured: true, greet: false })).toBe(SIZE);
        client.destroy();
      }
    } finally {
      await qemu.stop();
    }
  });

  it('drops a client that sends more after STARTTLS without waiting for the reply', async () => {
    const image = sampleImage();
    const server = await scope.serve(['-t', '-r', '--tls-creds', tls.server, image]);
    const client = await RawNbdClient.open(server.address);
    await client.greet();
    const option = (code: number): Buffer => Buffer.concat([Buffer.from('IHAVEOPT', 'latin1'), u32(code), u32(0)]);
    client.socket.write(Buffer.concat([option(NBD_OPT_STARTTLS), option(NBD_OPT_LIST)]));
    await client.expectClosed();
    await expect(client.need(1)).rejects.toThrow();
    expect(nbdinfo(certUri(server, tls.client)).exports[0]!['export-size']).toBe(SIZE);
  });
});

describe('TLS credential errors', () => {
  /** `qcow serve` with bad TLS flags: exit 1, one line naming the file, nothing listening. */
  function expectOneLine(tlsArgs: string[], names: string): void {
    const image = sampleImage();
    const socket = scope.dir.path('never.sock');
    const result = qcow(['serve', '-k', socket, ...tlsArgs, image]);
    expect(result.status).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines, result.stderr).toHaveLength(1);
    expect(lines[0]).toContain(names);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(socket)).toBe(false);
  }

  it('a missing directory or file, a malformed PEM, a bad PSK line: one line, exit 1, before listening', () => {
    expectOneLine(['--tls-creds', scope.dir.path('no-such-dir')], 'no-such-dir');
    const broken = scope.dir.path('broken');
    runOk('cp', ['-r', tls.server, broken]);
    writeFileSync(join(broken, 'server-cert.pem'), '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
    expectOneLine(['--tls-creds', broken], join(broken, 'server-cert.pem'));
    runOk('cp', [join(tls.client, 'client-key.pem'), join(broken, 'server-key.pem')]);
    runOk('cp', [join(tls.server, 'server-cert.pem'), join(broken, 'server-cert.pem')]);
    expectOneLine(['--tls-creds', broken], join(broken, 'server-key.pem'));
    const psk = scope.dir.path('bad.psk');
    writeFileSync(psk, 'alice:00ff\nbob 1234\n');
    expectOneLine(['--tls-psk', psk], 'line 2');
    expectOneLine(['--tls-psk', scope.dir.dir], join(scope.dir.dir, 'keys.psk'));
  });
});
