import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { dropHeaderExtension, HeaderExtensionType, qcow, qemuImg, qemuIo, scratch } from '@q/test-support';

const s = scratch('qcow-untrusted-');
afterAll(() => s.cleanup());

/** `qcow info` (or another command) with and without --untrusted: the first must work, the second refuse. */
function refusedOnlyWhenUntrusted(args: string[], reason: RegExp): void {
  const plain = qcow(args);
  expect(plain.stderr).toBe('');
  expect(plain.status).toBe(0);
  const untrusted = qcow([args[0]!, '--untrusted', ...args.slice(1)]);
  expect(untrusted.status).toBe(1);
  expect(untrusted.stderr).toMatch(reason);
  // One line, never a stack trace.
  expect(untrusted.stderr.trim().split('\n')).toHaveLength(1);
}

describe('--untrusted', () => {
  mkdirSync(s.path('vm'));
  mkdirSync(s.path('elsewhere'));

  it('keeps backing files inside the image directory, symbolic links included', () => {
    qemuImg(['create', '-q', '-f', 'qcow2', s.path('elsewhere/base.qcow2'), '1M']);
    qemuImg(['create', '-q', '-f', 'qcow2', '-b', s.path('elsewhere/base.qcow2'), '-F', 'qcow2', s.path('vm/abs.qcow2')]);
    refusedOnlyWhenUntrusted(['map', s.path('vm/abs.qcow2')], /lies outside the image's directory/);
    qemuImg(['create', '-q', '-f', 'qcow2', '-b', '../elsewhere/base.qcow2', '-F', 'qcow2', s.path('vm/dotdot.qcow2')]);
    refusedOnlyWhenUntrusted(['map', s.path('vm/dotdot.qcow2')], /lies outside/);
    symlinkSync(s.path('elsewhere/base.qcow2'), s.path('vm/link.qcow2'));
    qemuImg(['create', '-q', '-f', 'qcow2', '-u', '-b', 'link.qcow2', '-F', 'qcow2', s.path('vm/via-link.qcow2'), '1M']);
    refusedOnlyWhenUntrusted(['map', s.path('vm/via-link.qcow2')], /lies outside/);
    // Inside the directory (a subdirectory too) is fine.
    mkdirSync(s.path('vm/layers'));
    qemuImg(['create', '-q', '-f', 'qcow2', s.path('vm/layers/base.qcow2'), '1M']);
    qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'layers/base.qcow2', '-F', 'qcow2', s.path('vm/inside.qcow2')]);
    expect(qcow(['map', '--untrusted', s.path('vm/inside.qcow2')]).status).toBe(0);
  });

  it('keeps an external data file inside the image directory', () => {
    qemuImg(['create', '-q', '-f', 'qcow2', '-o', `data_file=${s.path('elsewhere/data.raw')}`, s.path('vm/data.qcow2'), '1M']);
    refusedOnlyWhenUntrusted(['map', s.path('vm/data.qcow2')], /lies outside/);
  });

  it('never probes a backing file: one without a recorded format is refused, a raw one stays raw', () => {
    qemuImg(['create', '-q', '-f', 'qcow2', s.path('vm/plain-base.qcow2'), '1M']);
    // qemu-img no longer writes such images; older ones exist. Drop the format qemu-img recorded.
    qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'plain-base.qcow2', '-F', 'qcow2', s.path('vm/unrecorded.qcow2')]);
    dropHeaderExtension(s.path('vm/unrecorded.qcow2'), HeaderExtensionType.backingFormat);
    refusedOnlyWhenUntrusted(['map', s.path('vm/unrecorded.qcow2')], /no recorded format/);
    // A "raw" backing file holding a qcow2 header that names a host file: raw it is, the header is guest data.
    qemuImg(['create', '-q', '-f', 'qcow2', '-u', '-b', '/etc/passwd', '-F', 'raw', s.path('vm/guest-disk.raw'), '1M']);
    qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'guest-disk.raw', '-F', 'raw', s.path('vm/over-raw.qcow2')]);
    const map = qcow(['map', '--untrusted', '--output=json', s.path('vm/over-raw.qcow2')]);
    expect(map.status).toBe(0);
    expect(JSON.parse(map.stdout)[0]).toMatchObject({ depth: 1, data: true });
  });

  it('refuses names with a protocol', () => {
    qemuImg(['create', '-q', '-f', 'qcow2', '-u', '-b', 'nbd://127.0.0.1:1/x', '-F', 'raw', s.path('vm/url.qcow2'), '1M']);
    const result = qcow(['map', '--untrusted', s.path('vm/url.qcow2')]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/protocol/);
  });

  it('holds metadata to tighter limits: a 300 TiB disk needs a 4.7 MiB L1 table', () => {
    qemuImg(['create', '-q', '-f', 'qcow2', s.path('vm/huge.qcow2'), '300T']);
    refusedOnlyWhenUntrusted(['info', s.path('vm/huge.qcow2')], /Active L1 table \(bytes\) too large/);
  });

  it('holds the chain to 8 layers', () => {
    qemuImg(['create', '-q', '-f', 'qcow2', s.path('vm/layer0.qcow2'), '1M']);
    for (let i = 1; i <= 9; i++) {
      qemuImg(['create', '-q', '-f', 'qcow2', '-b', `layer${i - 1}.qcow2`, '-F', 'qcow2', s.path(`vm/layer${i}.qcow2`)]);
    }
    qemuIo(s.path('vm/layer0.qcow2'), ['write -P 7 0 4k']);
    refusedOnlyWhenUntrusted(['map', s.path('vm/layer9.qcow2')], /deeper than 8 layers/);
    expect(qcow(['map', '--untrusted', s.path('vm/layer8.qcow2')]).status).toBe(0);
  });

  it('still opens ordinary images made by qemu-img, with snapshots and compression', () => {
    const image = s.path('vm/ordinary.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', image, '64M']);
    qemuIo(image, ['write -P 9 0 1M']);
    qemuImg(['snapshot', '-c', 'one', image]);
    writeFileSync(s.path('vm/readme'), 'not an image');
    for (const args of [['info', image], ['map', image], ['compare', image, image], ['io', '-r', '-c', 'read -P 9 0 1M', image]]) {
      const result = qcow([args[0]!, '--untrusted', ...args.slice(1)]);
      expect([args.join(' '), result.status, result.stderr]).toEqual([args.join(' '), 0, '']);
    }
  });
});
