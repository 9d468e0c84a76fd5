import { describe, expect, it } from 'vitest';
import { isDiskError } from '@q/raw';
import { formatNbdUri, parseNbdUri, type NbdTarget } from './nbd-uri.js';

const tcp = (host: string, port: number, exportName: string): NbdTarget => ({ address: { kind: 'tcp', host, port }, exportName });
const unix = (path: string, exportName: string): NbdTarget => ({ address: { kind: 'unix', path }, exportName });

function codeOf(name: string): string | undefined {
  try {
    parseNbdUri(name);
  } catch (error) {
    if (!isDiskError(error)) throw error;
    expect(error.file).toBe(name);
    expect(error.message).not.toContain('\n');
    return error.code;
  }
  return undefined;
}

describe('parseNbdUri', () => {
  it.each([
    ['nbd://127.0.0.1:10899/foo', tcp('127.0.0.1', 10899, 'foo')],
    ['nbd://example.com/disk', tcp('example.com', 10809, 'disk')],
    ['nbd://Example.COM:1/', tcp('example.com', 1, '')],
    ['nbd://127.0.0.1:10899', tcp('127.0.0.1', 10899, '')],
    ['nbd+tcp://127.0.0.1:10899/foo', tcp('127.0.0.1', 10899, 'foo')],
    ['NBD://127.0.0.1/x', tcp('127.0.0.1', 10809, 'x')],
    // The export is the path after the first slash, percent-decoded, as QEMU and libnbd take it.
    ['nbd://h:1//abs/name', tcp('h', 1, '/abs/name')],
    ['nbd://h:1/f%6fo%20bar', tcp('h', 1, 'foo bar')],
    ['nbd://[::1]:10809/foo', tcp('::1', 10809, 'foo')],
    ['nbd://[::1]/foo', tcp('::1', 10809, 'foo')],
    ['nbd+unix:///foo?socket=/run/nbd.sock', unix('/run/nbd.sock', 'foo')],
    ['nbd+unix:///?socket=/x%20y', unix('/x y', '')],
    ['nbd+unix://?socket=rel.sock', unix('rel.sock', '')],
    ['nbd:127.0.0.1:10899:exportname=foo', tcp('127.0.0.1', 10899, 'foo')],
    ['nbd:localhost:10899', tcp('localhost', 10899, '')],
    ['nbd:[::1]:1:exportname=a:b', tcp('::1', 1, 'a:b')],
    ['nbd:unix:/tmp/s.sock', unix('/tmp/s.sock', '')],
    ['nbd:unix:/tmp/s.sock:exportname=disk', unix('/tmp/s.sock', 'disk')],
  ])('%s', (name, expected) => {
    expect(parseNbdUri(name)).toEqual(expected);
  });

  it.each([
    'nbd:///foo',
    'nbd://127.0.0.1:/',
    'nbd://127.0.0.1:0/',
    'nbd://127.0.0.1:99999/',
    'nbd://127.0.0.1:port/',
    'nbd://user@127.0.0.1:1/',
    'nbd://127.0.0.1:1/foo?x=1',
    'nbd://127.0.0.1:1/foo#frag',
    'nbd://::1/foo',
    'nbd://h/%zz',
    'nbd+unix:///foo',
    'nbd+unix://host/foo?socket=/x',
    'nbd+unix:///foo?socket=/x&socket=/y',
    'nbd+unix:///foo?socket=/x&tls=on',
    'nbd+unix:///foo?socket=',
    'nbd:127.0.0.1',
    'nbd:localhost:abc',
    'nbd:unix:',
    'nbd+unix:/x',
    'http://h/x',
    '/local/file',
    `nbd://h/${'x'.repeat(4097)}`,
  ])('refuses %s with E_INVALID', (name) => {
    expect(codeOf(name)).toBe('E_INVALID');
  });

  it('refuses nbds:// as unsupported: this client has no TLS', () => {
    expect(codeOf('nbds://127.0.0.1/x')).toBe('E_UNSUPPORTED');
    expect(codeOf('nbds+unix:///x?socket=/s')).toBe('E_UNSUPPORTED');
  });
});

describe('formatNbdUri', () => {
  it('gives every spelling of an export the one name QEMU prints', () => {
    for (const name of ['nbd://127.0.0.1:10809/foo', 'nbd://127.0.0.1/foo', 'nbd+tcp://127.0.0.1/f%6fo', 'nbd:127.0.0.1:10809:exportname=foo']) {
      expect(formatNbdUri(parseNbdUri(name))).toBe('nbd://127.0.0.1:10809/foo');
    }
    expect(formatNbdUri(parseNbdUri('nbd:unix:/run/a.sock:exportname=x'))).toBe('nbd+unix:///x?socket=/run/a.sock');
    expect(formatNbdUri(parseNbdUri('nbd://[::1]:5/'))).toBe('nbd://[::1]:5/');
  });

  it('round-trips names that need escaping', () => {
    for (const target of [tcp('h', 1, 'a b/c?d#e%f'), unix('/tmp/odd ?&#%.sock', '/x'), tcp('::1', 2, '')]) {
      expect(parseNbdUri(formatNbdUri(target))).toEqual(target);
    }
  });
});
