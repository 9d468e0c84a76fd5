// qemu-nbd's process flags on `qcow serve`, each checked against what qemu-nbd 7.2 was seen to do: --fork and
// --pid-file, -e (clients beyond N wait unanswered), -t (without it: exit after the last client), -D, stale and
// live Unix sockets, and one-line messages for bad values.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { qcow, qemuImg, qemuIo, run, runOk } from '@q/test-support';
import { RawNbdClient, NBD_CMD_DISC } from './raw-client.js';
import { serveScope } from './serve-scope.js';

const scope = serveScope('qcow-nbd-flags-');

/** Servers started with --fork are not our children: their pids, to stop them after each test. */
let forked: number[] = [];
afterEach(async () => {
  for (const pid of forked) {
    if (isRunning(pid)) process.kill(pid, 'SIGTERM');
    await until(() => !isRunning(pid), 20_000);
  }
  forked = [];
});

/** Whether `pid` is a live process. A daemon nobody reaps stays a zombie (state Z) once it has exited. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function until(condition: () => boolean, ms = 60_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return true;
}

function image(name = 'disk.qcow2', size = '16M'): string {
  const path = scope.dir.path(name);
  qemuImg(['create', '-q', '-f', 'qcow2', path, size]);
  qemuIo(path, ['write -P 0x11 0 1M']);
  return path;
}

const unixUri = (socket: string, name = ''): string => `nbd+unix:///${name}?socket=${socket}`;

interface NbdInfo {
  'export-name': string;
  'export-size': number;
  description?: string;
  is_read_only: boolean;
}

function nbdinfo(uri: string): NbdInfo {
  return (JSON.parse(runOk('nbdinfo', ['--json', uri])) as { exports: NbdInfo[] }).exports[0]!;
}

/** A raw connection and whether the server's 18-byte greeting has arrived on it. */
function rawConnection(path: string): { socket: Socket; greeted: () => boolean } {
  let received = 0;
  const socket = connect(path);
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  socket.on('error', () => {});
  return { socket, greeted: () => received >= 18 };
}

describe('qcow serve --fork and --pid-file', () => {
  it('returns once the server listens; the pid file names the server; without -t it exits after its client', async () => {
    const disk = image();
    const socket = scope.dir.path('fork.sock');
    const pidFile = scope.dir.path('server.pid');
    // qcow() waits for stdout and stderr to close too: the background server must not hold them.
    const started = qcow(['serve', '--fork', `--pid-file=${pidFile}`, '-k', socket, disk], { timeoutMs: 30_000 });
    expect(started.status, started.stderr).toBe(0);
    expect(started.stdout + started.stderr).toBe('');
    const text = readFileSync(pidFile, 'utf8');
    expect(text).toMatch(/^\d+\n$/);
    const pid = Number(text);
    forked.push(pid);
    expect(isRunning(pid)).toBe(true);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toContain('serve');
    // No retry: the socket accepts as soon as the command has returned.
    expect(nbdinfo(unixUri(socket))['export-size']).toBe(16 << 20);
    expect(await until(() => !isRunning(pid))).toBe(true);
    expect(existsSync(socket)).toBe(false);
    // qemu-nbd 7.2 leaves its pid file behind; so do we.
    expect(existsSync(pidFile)).toBe(true);
  });

  it('with -t the forked server stays for client after client, until SIGTERM', async () => {
    const disk = image();
    const socket = scope.dir.path('fork.sock');
    const pidFile = scope.dir.path('server.pid');
    expect(qcow(['serve', '--fork', '-t', '--pid-file', pidFile, '-k', socket, disk], { timeoutMs: 30_000 }).status).toBe(0);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    forked.push(pid);
    for (let i = 0; i < 3; i++) runOk('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0x11 0 64k', unixUri(socket)]);
    expect(isRunning(pid)).toBe(true);
    process.kill(pid, 'SIGTERM');
    expect(await until(() => !isRunning(pid))).toBe(true);
    expect(existsSync(socket)).toBe(false);
  });

  it('exits 1 with the server\'s one error line when it cannot open the image or listen', () => {
    const pidFile = scope.dir.path('server.pid');
    const missing = qcow(['serve', '--fork', `--pid-file=${pidFile}`, '-k', scope.dir.path('a.sock'), scope.dir.path('missing.qcow2')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toContain('missing.qcow2');
    expect(existsSync(pidFile)).toBe(false);
    const noDirectory = scope.dir.path('none/a.sock');
    const unbound = qcow(['serve', '--fork', '-k', noDirectory, image()]);
    expect(unbound.status).toBe(1);
    expect(unbound.stderr).toBe(`qcow: Failed to bind socket to ${noDirectory}: No such file or directory\n`);
  });

  it('--pid-file without --fork holds the serving process\'s pid; an unwritable one is an error', async () => {
    const pidFile = scope.dir.path('server.pid');
    const server = await scope.serve(['-t', `--pid-file=${pidFile}`, image()]);
    expect(readFileSync(pidFile, 'utf8')).toBe(`${server.child.pid}\n`);
    expect(statSync(pidFile).mode & 0o777).toBe(0o600);
    const bad = qcow(['serve', '--pid-file=/nonexistent-dir/x.pid', '-k', scope.dir.path('b.sock'), image('other.qcow2')]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe("qcow: Could not create '/nonexistent-dir/x.pid': No such file or directory\n");
  });
});

describe('qcow serve -e and -t', () => {
  it('-e 2: two clients are served at once; a third waits unanswered until one leaves', async () => {
    const server = await scope.serve(['-t', '-e', '2', image()]);
    const path = (server.address as { path: string }).path;
    const first = rawConnection(path);
    const second = rawConnection(path);
    expect(await until(() => first.greeted() && second.greeted())).toBe(true);
    const third = rawConnection(path);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(third.greeted()).toBe(false);
    first.socket.destroy();
    expect(await until(() => third.greeted())).toBe(true);
    for (const connection of [second, third]) connection.socket.destroy();
  });

  it('default (-e 1, no -t): a second client waits; when the first leaves the server exits 0 and drops it', async () => {
    const server = await scope.serve([image()]);
    const first = await RawNbdClient.open(server.address);
    expect(await first.handshake({ structured: true })).toBe(16 << 20);
    const waiting = spawn('nbdinfo', ['--size', server.uri], { stdio: 'ignore' });
    const waited = new Promise<number | null>((resolve) => waiting.once('exit', (code) => resolve(code)));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(waiting.exitCode).toBeNull();
    first.send(NBD_CMD_DISC, 1n, 0, 0);
    expect(await server.exited()).toBe(0);
    // As with qemu-nbd, whose backlog is reset when it exits: the waiting client never gets an answer.
    expect(await waited).not.toBe(0);
  });

  it('without -t a probe that hangs up and nbdinfo --list do not end the server; a real client does', async () => {
    const server = await scope.serve(['-x', 'disk', image()]);
    runOk('nbdinfo', ['--list', server.uri]);
    expect(run('nbdinfo', [`${server.uri.replace('///', '///nosuch')}`]).status).not.toBe(0);
    expect(server.child.exitCode).toBeNull();
    expect(nbdinfo(unixUri((server.address as { path: string }).path, 'disk'))['export-name']).toBe('disk');
    expect(await server.exited()).toBe(0);
  });
});

describe('qcow serve -D and Unix sockets', () => {
  it('-D is the description nbdinfo shows, as with qemu-nbd', async () => {
    const server = await scope.serve(['-t', '-x', 'disk', '-D', 'a test disk', image()]);
    const socket = (server.address as { path: string }).path;
    expect(nbdinfo(unixUri(socket, 'disk'))).toMatchObject({ 'export-name': 'disk', description: 'a test disk' });
    expect(runOk('nbdinfo', ['--list', server.uri])).toContain('description: a test disk');
  });

  it('a stale socket left by a killed server is replaced; a live server\'s socket is not taken', async () => {
    const disk = image();
    const killed = await scope.serve(['-t', disk]);
    const socket = (killed.address as { path: string }).path;
    killed.child.kill('SIGKILL');
    await killed.stop();
    expect(statSync(socket).isSocket()).toBe(true);

    const started = qcow(['serve', '--fork', '-t', '-x', 'first', `--pid-file=${scope.dir.path('first.pid')}`, '-k', socket, disk], { timeoutMs: 30_000 });
    expect(started.status, started.stderr).toBe(0);
    forked.push(Number(readFileSync(scope.dir.path('first.pid'), 'utf8')));
    expect(nbdinfo(unixUri(socket, 'first'))['export-name']).toBe('first');

    // qemu-nbd 7.2 would unlink the live socket and orphan the first server; we refuse, as bind(2) does.
    const second = qcow(['serve', '-t', '-x', 'second', '-k', socket, image('other.qcow2')], { timeoutMs: 30_000 });
    expect(second.status).toBe(1);
    expect(second.stderr).toBe(`qcow: Failed to bind socket to ${socket}: Address already in use\n`);
    expect(nbdinfo(unixUri(socket, 'first'))['export-name']).toBe('first');
  });
});

describe('qcow serve flag errors: qemu-nbd\'s one-line messages, exit 1', () => {
  const cases: Array<[string[], string]> = [
    [['-e', 'abc'], "Invalid shared device number 'abc'"],
    [['-e', '-1'], "Invalid shared device number '-1'"],
    [['-e', '08'], "Invalid shared device number '08'"],
    [['--shared=2147483648'], "Invalid shared device number '2147483648'"],
    [['--cache=bogus'], "Invalid cache mode `bogus'"],
    [['-n', '--cache=unsafe'], '-n and --cache can only be specified once'],
    [['--discard=bogus'], "Invalid discard mode `bogus'"],
    [['--discard=unmap', '--discard=ignore'], '--discard can only be specified once'],
    [['--detect-zeroes=ON'], 'Failed to parse detect_zeroes mode: invalid parameter value: ON'],
    [['--detect-zeroes=unmap'], 'setting detect-zeroes to unmap is not allowed without setting discard operation to unmap'],
    // qemu-nbd checks detect-zeroes against the --discard given before it.
    [['--detect-zeroes=unmap', '--discard=unmap'], 'setting detect-zeroes to unmap is not allowed without setting discard operation to unmap'],
    // Two lines, as qemu-nbd prints them: the parameter, then the value.
    [['-l', 'snapshot.foo=1'], "Invalid parameter 'snapshot.foo'\nqcow: Failed in parsing snapshot param `snapshot.foo=1'"],
    [['--aio=bogus'], "Invalid aio mode 'bogus'"],
  ];
  it.each(cases)('%j', (flags, message) => {
    const result = qcow(['serve', ...flags, '-k', scope.dir.path('x.sock'), scope.dir.path('any.qcow2')]);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(`qcow: ${message}\n`);
  });

  it('accepts what qemu-nbd accepts: -e 0x10, -e " 3", -e 010, --discard=on then --detect-zeroes=unmap', async () => {
    for (const [index, flags] of [['-e', '0x10'], ['-e', ' 3'], ['-e', '010'], ['--discard=on', '--detect-zeroes=unmap']].entries()) {
      const server = await scope.serve(['-t', ...flags, image(`ok-${index}.qcow2`)]);
      expect(nbdinfo(server.uri)['export-size']).toBe(16 << 20);
      expect(await server.stop()).toBe(0);
    }
  });

  it('--help lists every flag', () => {
    const help = qcow(['serve', '--help']);
    expect(help.status).toBe(0);
    for (const flag of ['--read-only', '--snapshot', '--load-snapshot', '--format', '--bind', '--port', '--socket', '--export-name', '--description', '--shared', '--persistent', '--fork', '--pid-file', '--nocache', '--cache', '--discard', '--detect-zeroes', '--aio', '--allocation-depth', '--bitmap']) {
      expect(help.stdout, flag).toContain(flag);
    }
  });
});

describe('qcow serve of a raw image whose format was guessed, as qemu-nbd', () => {
  it('warns, and refuses a client write that would give the first sector a qcow2 header (EPERM)', async () => {
    const disk = scope.dir.path('guessed.raw');
    qemuImg(['create', '-q', '-f', 'raw', disk, '1M']);
    const header = scope.dir.path('header.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', header, '1M']);
    const server = await scope.serve(['-t', disk]);
    const refused = run('qemu-io', ['-f', 'raw', '-c', `write -s ${header} 0 512`, server.uri]);
    expect(refused.stdout + refused.stderr).toContain('write failed: Operation not permitted');
    // Elsewhere the client writes what it likes, the header included.
    expect(run('qemu-io', ['-f', 'raw', '-c', `write -s ${header} 512 512`, server.uri]).status).toBe(0);
    expect(await server.stop()).toBe(0);
    expect(server.stderr()).toContain("WARNING: Image format was not specified for '" + disk + "' and probing guessed raw.");
    expect(JSON.parse(qemuImg(['info', '--output=json', disk])).format).toBe('raw');
  });
});
