import { describe, expect, it } from 'vitest';
import { parsePskFile } from './psk-file.js';
import { TlsCredentialsError } from './tls-credentials-error.js';

describe('parsePskFile', () => {
  it('reads the lines psktool writes', () => {
    const keys = parsePskFile('alice:95f667e87a191ce4f65d081131e556f1\nbob:00FF10\n\n', 'keys.psk');
    expect([...keys.keys()]).toEqual(['alice', 'bob']);
    expect([...keys.get('bob')!]).toEqual([0x00, 0xff, 0x10]);
    expect(keys.get('alice')!.length).toBe(16);
  });

  it('tolerates CRLF line ends', () => {
    expect(parsePskFile('carol:abcd\r\n', 'k').get('carol')).toEqual(new Uint8Array([0xab, 0xcd]));
  });

  it.each([
    ['alice 00ff', /line 1: no ":"/],
    [':00ff', /line 1: empty username/],
    ['alice:', /empty key for 'alice'/],
    ['ok:00\nalice:0g', /line 2: the key of 'alice' is not an even number of hex digits/],
    ['alice:abc', /not an even number/],
    ['alice:00\nalice:11', /line 2: 'alice' appears twice/],
    ['\n\n', /no keys/],
  ])('refuses %j with a typed error naming the line', (text, message) => {
    let error: unknown;
    try {
      parsePskFile(text, '/etc/keys.psk');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(TlsCredentialsError);
    expect((error as TlsCredentialsError).code).toBe('E_TLS_MALFORMED');
    expect((error as TlsCredentialsError).file).toBe('/etc/keys.psk');
    expect((error as Error).message).toMatch(message);
  });
});
