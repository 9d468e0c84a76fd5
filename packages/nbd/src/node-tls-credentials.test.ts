import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadPskCredentials, loadX509Credentials } from './node-tls-credentials.js';
import { TlsCredentialsError, type TlsCredentialsErrorCode } from './tls-credentials-error.js';

// A certificate without its key: enough to check every way a credentials directory can be wrong. Loading a good
// set, and serving with it, is tested against qemu and libnbd in tests/nbd (which makes certificates with certtool).
const certificate = fileURLToPath(new URL('../../../fixtures/certificates/plain-subject.pem', import.meta.url));
/** A CA whose key usage lacks cRLSign, and a CRL it signed (certtool, as for qemu). */
const weakCa = fileURLToPath(new URL('../../../fixtures/certificates/ca-without-crl-sign.pem', import.meta.url));
const weakCaCrl = fileURLToPath(new URL('../../../fixtures/certificates/ca-without-crl-sign.crl', import.meta.url));
const strayKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' });

async function failure(load: Promise<unknown>): Promise<{ code: TlsCredentialsErrorCode; file: string; message: string }> {
  const error = await load.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(TlsCredentialsError);
  const { code, file, message } = error as TlsCredentialsError;
  return { code, file, message };
}

describe('TLS credentials loading', () => {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(process.platform === 'linux' ? '/dev/shm' : tmpdir(), 'nbd-creds-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('x509: a missing directory, a file given as the directory, a missing file', async () => {
    expect(await failure(loadX509Credentials(join(dir, 'nope')))).toMatchObject({ code: 'E_TLS_MISSING', file: join(dir, 'nope') });
    writeFileSync(join(dir, 'plain'), 'x');
    expect(await failure(loadX509Credentials(join(dir, 'plain')))).toMatchObject({ code: 'E_TLS_UNREADABLE' });
    copyFileSync(certificate, join(dir, 'server-cert.pem'));
    // qemu-nbd requires ca-cert.pem even when clients are not verified; so do we.
    expect(await failure(loadX509Credentials(dir, { verifyPeer: false }))).toMatchObject({ code: 'E_TLS_MISSING', file: join(dir, 'ca-cert.pem') });
  });

  it('x509: files that are not PEM, and a key that is not the certificate\'s', async () => {
    copyFileSync(certificate, join(dir, 'ca-cert.pem'));
    copyFileSync(certificate, join(dir, 'server-cert.pem'));
    writeFileSync(join(dir, 'server-key.pem'), 'not a key\n');
    expect(await failure(loadX509Credentials(dir))).toMatchObject({ code: 'E_TLS_MALFORMED', file: join(dir, 'server-key.pem') });
    writeFileSync(join(dir, 'server-key.pem'), strayKey);
    const mismatch = await failure(loadX509Credentials(dir));
    expect(mismatch).toMatchObject({ code: 'E_TLS_MALFORMED', file: join(dir, 'server-key.pem') });
    expect(mismatch.message).toContain('does not belong to server-cert.pem');
    writeFileSync(join(dir, 'ca-cert.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(await failure(loadX509Credentials(dir))).toMatchObject({ code: 'E_TLS_MALFORMED', file: join(dir, 'ca-cert.pem') });
    copyFileSync(certificate, join(dir, 'ca-cert.pem'));
    rmSync(join(dir, 'server-cert.pem'));
    mkdirSync(join(dir, 'server-cert.pem'));
    expect(await failure(loadX509Credentials(dir))).toMatchObject({ code: 'E_TLS_UNREADABLE', file: join(dir, 'server-cert.pem') });
  });

  it('x509: a CRL that is not PEM', async () => {
    copyFileSync(certificate, join(dir, 'ca-cert.pem'));
    copyFileSync(certificate, join(dir, 'server-cert.pem'));
    writeFileSync(join(dir, 'server-key.pem'), strayKey);
    writeFileSync(join(dir, 'ca-crl.pem'), 'garbage\n');
    expect(await failure(loadX509Credentials(dir))).toMatchObject({ code: 'E_TLS_MALFORMED', file: join(dir, 'ca-crl.pem') });
  });

  it('x509: a CRL from a CA that may not sign CRLs (OpenSSL would then refuse every client)', async () => {
    copyFileSync(weakCa, join(dir, 'ca-cert.pem'));
    copyFileSync(certificate, join(dir, 'server-cert.pem'));
    writeFileSync(join(dir, 'server-key.pem'), strayKey);
    copyFileSync(weakCaCrl, join(dir, 'ca-crl.pem'));
    const error = await failure(loadX509Credentials(dir));
    expect(error).toMatchObject({ code: 'E_TLS_MALFORMED', file: join(dir, 'ca-crl.pem') });
    expect(error.message).toContain('lacks CRL signing');
  });

  it('psk: a file or a directory holding keys.psk', async () => {
    writeFileSync(join(dir, 'keys.psk'), 'alice:00ff\n');
    for (const path of [dir, join(dir, 'keys.psk')]) {
      const credentials = await loadPskCredentials(path);
      expect(credentials.kind).toBe('psk');
      expect([...credentials.pskKeys!.keys()]).toEqual(['alice']);
    }
  });

  it('psk: missing, unreadable, malformed', async () => {
    expect(await failure(loadPskCredentials(join(dir, 'none.psk')))).toMatchObject({ code: 'E_TLS_MISSING' });
    expect(await failure(loadPskCredentials(dir))).toMatchObject({ code: 'E_TLS_MISSING', file: join(dir, 'keys.psk') });
    mkdirSync(join(dir, 'sub'));
    mkdirSync(join(dir, 'sub', 'keys.psk'));
    expect(await failure(loadPskCredentials(join(dir, 'sub')))).toMatchObject({ code: 'E_TLS_UNREADABLE' });
    writeFileSync(join(dir, 'bad.psk'), 'alice=00ff\n');
    const bad = await failure(loadPskCredentials(join(dir, 'bad.psk')));
    expect(bad).toMatchObject({ code: 'E_TLS_MALFORMED', file: join(dir, 'bad.psk') });
    expect(bad.message).toContain('line 1');
  });
});
