import { TlsCredentialsError } from './tls-credentials-error.js';

/**
 * Parses a PSK keys file as `psktool` (GnuTLS) writes it and qemu's `tls-creds-psk` reads it (`keys.psk`): one
 * `username:hexkey` per line. Blank lines are skipped; anything else that is not such a line is an error naming
 * the line, so a damaged file stops the server instead of silently locking a user out. `file` is for messages.
 */
export function parsePskFile(text: string, file: string): Map<string, Uint8Array> {
  const keys = new Map<string, Uint8Array>();
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!.replace(/\s+$/, '');
    if (line === '') continue;
    const fail = (why: string): never => {
      throw new TlsCredentialsError('E_TLS_MALFORMED', file, `line ${index + 1}: ${why} (expected username:hexkey, as psktool writes)`);
    };
    const colon = line.indexOf(':');
    if (colon < 0) fail('no ":" between username and key');
    const username = line.slice(0, colon);
    const hexKey = line.slice(colon + 1);
    if (username === '') fail('empty username');
    if (hexKey === '') fail(`empty key for '${username}'`);
    if (!/^[0-9a-fA-F]+$/.test(hexKey) || hexKey.length % 2 !== 0) fail(`the key of '${username}' is not an even number of hex digits`);
    if (keys.has(username)) fail(`'${username}' appears twice`);
    const key = new Uint8Array(hexKey.length / 2);
    for (let i = 0; i < key.length; i++) key[i] = Number.parseInt(hexKey.slice(2 * i, 2 * i + 2), 16);
    keys.set(username, key);
  }
  if (keys.size === 0) throw new TlsCredentialsError('E_TLS_MALFORMED', file, 'no keys in the file (expected username:hexkey lines, as psktool writes)');
  return keys;
}
