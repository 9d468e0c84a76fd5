import type { KeyObject, X509Certificate } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { TlsOptions } from 'node:tls';
import { mayIssueCrls } from './key-usage.js';
import { parsePskFile } from './psk-file.js';
import { TlsCredentialsError } from './tls-credentials-error.js';

/**
 * What `listenNbd` needs to offer NBD_OPT_STARTTLS: the options of the server side of every upgrade, key material
 * already read and checked. Build it with loadX509Credentials or loadPskCredentials.
 */
export interface NbdTlsCredentials {
  /** Certificates (qemu's `tls-creds-x509`) or pre-shared keys (`tls-creds-psk`). */
  readonly kind: 'x509' | 'psk';
  /** node:tls server options for the handshake. */
  readonly serverOptions: TlsOptions;
  /** PSK: the key of each username; the username a client proves is its identity. */
  readonly pskKeys?: ReadonlyMap<string, Uint8Array>;
}

/**
 * Certificates from a directory laid out as qemu's `tls-creds-x509` expects: ca-cert.pem (required, as qemu-nbd
 * requires it even when clients are not verified), server-cert.pem, server-key.pem, and ca-crl.pem when present.
 * `verifyPeer` (default true, qemu's default): clients must present a certificate signed by the CA; without a
 * certificate, or with one from another CA, the handshake ends the connection.
 */
export async function loadX509Credentials(dir: string, options: { verifyPeer?: boolean } = {}): Promise<NbdTlsCredentials> {
  await requireDirectory(dir);
  // node:crypto is imported here, not at the top: every `qcow` command routes nbd:// names through this package,
  // and loading crypto's two dozen modules cost `qcow info` about 5 ms of its start.
  const { X509Certificate, createPrivateKey } = await import('node:crypto');
  const checkCertificate = (path: string, pem: Buffer): X509Certificate => {
    try {
      return new X509Certificate(pem);
    } catch (error) {
      throw new TlsCredentialsError('E_TLS_MALFORMED', path, 'not a PEM certificate', { cause: error });
    }
  };
  const ca = await readCredential(join(dir, 'ca-cert.pem'));
  const cert = await readCredential(join(dir, 'server-cert.pem'));
  const key = await readCredential(join(dir, 'server-key.pem'));
  const crlPath = join(dir, 'ca-crl.pem');
  const crl = (await exists(crlPath)) ? await readCredential(crlPath) : undefined;
  const authority = checkCertificate(join(dir, 'ca-cert.pem'), ca);
  const serverCertificate = checkCertificate(join(dir, 'server-cert.pem'), cert);
  if (crl !== undefined) {
    await checkContext({ crl }, crlPath, 'not a PEM certificate revocation list');
    // qemu-nbd (GnuTLS) would use this CRL; OpenSSL would refuse every client instead. Better not to start.
    if (!mayIssueCrls(new Uint8Array(authority.raw))) {
      throw new TlsCredentialsError('E_TLS_MALFORMED', crlPath, "unusable: ca-cert.pem's key usage lacks CRL signing (reissue the CA with certtool's crl_signing_key, or remove the CRL)");
    }
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new TlsCredentialsError('E_TLS_MALFORMED', join(dir, 'server-key.pem'), 'not a PEM private key (an encrypted key is not supported)', { cause: error });
  }
  // Checked here because OpenSSL does not: given a key that does not match, it drops the key without an error and
  // every handshake then fails.
  if (!serverCertificate.checkPrivateKey(privateKey)) {
    throw new TlsCredentialsError('E_TLS_MALFORMED', join(dir, 'server-key.pem'), 'does not belong to server-cert.pem');
  }
  const verifyPeer = options.verifyPeer ?? true;
  // proto.md "TLS versions": TLS 1.2 MUST be supported and older versions SHOULD NOT be on by default. node's
  // default cipher list already excludes everything weak; GnuTLS clients (qemu, libnbd) negotiate TLS 1.3 with it.
  const serverOptions: TlsOptions = { ca, cert, key, minVersion: 'TLSv1.2', requestCert: verifyPeer, rejectUnauthorized: verifyPeer, ...(crl === undefined ? {} : { crl }) };
  await checkContext(serverOptions, dir, 'the files do not make a usable TLS configuration');
  return { kind: 'x509', serverOptions };
}

/**
 * Pre-shared keys from a `psktool` file (`username:hexkey` lines), or from a directory holding one as keys.psk,
 * which is where qemu's `tls-creds-psk` looks. The server then has no certificate: the key is the authentication.
 */
export async function loadPskCredentials(path: string): Promise<NbdTlsCredentials> {
  const info = await fsp.stat(path).catch((error: unknown) => {
    throw new TlsCredentialsError('E_TLS_MISSING', path, 'no such file or directory', { cause: error });
  });
  const file = info.isDirectory() ? join(path, 'keys.psk') : path;
  const pskKeys = parsePskFile((await readCredential(file)).toString('utf8'), file);
  const serverOptions: TlsOptions = {
    minVersion: 'TLSv1.2',
    // TLS 1.3: node's PSK callback is OpenSSL's pre-1.3 PSK interface, which OpenSSL can only use with SHA-256
    // suites in 1.3, so the SHA-384 one is left out (GnuTLS clients then pick one of these two). TLS 1.2 (older
    // GnuTLS, or clients that cap at 1.2): only the ECDHE-PSK suites, which keep forward secrecy, as GnuTLS's
    // "+ECDHE-PSK" that qemu and libnbd enable; plain PSK would let a stolen key decrypt recorded sessions, and
    // DHE-PSK needs DH parameters node does not have by default.
    ciphers: ['TLS_AES_128_GCM_SHA256', 'TLS_CHACHA20_POLY1305_SHA256', 'ECDHE-PSK-CHACHA20-POLY1305', 'ECDHE-PSK-AES256-CBC-SHA384', 'ECDHE-PSK-AES128-CBC-SHA256'].join(':'),
  };
  return { kind: 'psk', serverOptions, pskKeys };
}

async function requireDirectory(dir: string): Promise<void> {
  const info = await fsp.stat(dir).catch((error: unknown) => {
    throw new TlsCredentialsError('E_TLS_MISSING', dir, 'no such directory', { cause: error });
  });
  if (!info.isDirectory()) throw new TlsCredentialsError('E_TLS_UNREADABLE', dir, 'not a directory (expected one holding ca-cert.pem, server-cert.pem and server-key.pem)');
}

async function exists(path: string): Promise<boolean> {
  return fsp.stat(path).then(
    () => true,
    () => false,
  );
}

async function readCredential(path: string): Promise<Buffer> {
  try {
    return await fsp.readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new TlsCredentialsError('E_TLS_MISSING', path, 'no such file', { cause: error });
    throw new TlsCredentialsError('E_TLS_UNREADABLE', path, `cannot be read (${code ?? 'error'})`, { cause: error });
  }
}

/** Imports node:tls only here (about 10 ms at start), for processes that load credentials. */
async function checkContext(options: TlsOptions, path: string, problem: string): Promise<void> {
  const { createSecureContext } = await import('node:tls');
  try {
    createSecureContext(options);
  } catch (error) {
    throw new TlsCredentialsError('E_TLS_MALFORMED', path, problem, { cause: error });
  }
}
