// Certificates and pre-shared keys made at test time with GnuTLS's certtool and psktool (Debian gnutls-bin), laid
// out the way qemu's tls-creds-x509 / tls-creds-psk objects and libnbd's tls-certificates / tls-psk-file read them.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runOk, scratch } from '@q/test-support';

/** Directories and files of one test file's TLS world; `cleanup` removes them all. */
export interface TlsMaterial {
  /** The server's --tls-creds DIR: ca-cert.pem, server-cert.pem, server-key.pem (localhost and 127.0.0.1). */
  server: string;
  /** The server directory plus ca-crl.pem, a CRL of the CA that revokes client2. */
  crlServer: string;
  /** A client directory (ca-cert.pem, client-cert.pem, client-key.pem) of an authorised client, CN=client1. */
  client: string;
  /** Another client of the same CA, CN=client2. */
  client2: string;
  /** A client that trusts the CA but has no certificate of its own. */
  noCert: string;
  /** A client whose certificate another CA signed (it still trusts the server's CA). */
  foreign: string;
  /** Distinguished names of client1 and client2 as qemu-nbd prints them. */
  client1Identity: string;
  client2Identity: string;
  /** A directory holding keys.psk (alice and bob), as qemu's tls-creds-psk takes it. */
  pskDir: string;
  /** keys.psk itself. */
  pskFile: string;
  /** A keys file where alice has some other key. */
  wrongPsk: string;
  /** The same for qemu's client side: a directory whose keys.psk has the wrong key for alice. */
  wrongPskDir: string;
  cleanup(): void;
}

/** Makes a CA, a server certificate, client certificates of that CA and of another, a CRL, and PSK files. */
export function makeTlsMaterial(): TlsMaterial {
  const dir = scratch('qcow-nbd-tls-');
  const path = (...parts: string[]): string => join(dir.dir, ...parts);
  const template = (name: string, lines: string[]): string => {
    const file = path(`${name}.info`);
    writeFileSync(file, `${lines.join('\n')}\nexpiration_days = 2\n`);
    return file;
  };
  // ECDSA keys: generated instantly, where RSA-3072 (certtool's default) takes a second on a busy machine.
  const key = (file: string): string => {
    runOk('certtool', ['--generate-privkey', '--key-type=ecdsa', '--outfile', file]);
    return file;
  };
  const authority = (name: string): { cert: string; key: string } => {
    const caKey = key(path(`${name}-key.pem`));
    const cert = path(`${name}-cert.pem`);
    // crl_signing_key: OpenSSL (so node) uses a CRL only from a CA whose key usage says it may sign CRLs.
    const usage = [`cn = ${name}`, 'ca', 'cert_signing_key', 'crl_signing_key'];
    runOk('certtool', ['--generate-self-signed', '--load-privkey', caKey, '--template', template(name, usage), '--outfile', cert]);
    return { cert, key: caKey };
  };
  const issue = (ca: { cert: string; key: string }, folder: string, role: 'server' | 'client', lines: string[]): void => {
    mkdirSync(path(folder), { recursive: true });
    const own = key(path(folder, `${role}-key.pem`));
    const usage = role === 'server' ? ['tls_www_server', 'signing_key'] : ['tls_www_client', 'signing_key'];
    const args = ['--generate-certificate', '--load-privkey', own, '--load-ca-certificate', ca.cert, '--load-ca-privkey', ca.key];
    runOk('certtool', [...args, '--template', template(`${folder}-${role}`, [...lines, ...usage]), '--outfile', path(folder, `${role}-cert.pem`)]);
  };
  const trusting = (folder: string, ca: string): string => {
    mkdirSync(path(folder), { recursive: true });
    copyFileSync(ca, path(folder, 'ca-cert.pem'));
    return path(folder);
  };

  const ca = authority('test-ca');
  const other = authority('other-ca');
  issue(ca, 'server', 'server', ['organization = qcow-ts test', 'cn = localhost', 'dns_name = localhost', 'ip_address = 127.0.0.1']);
  issue(ca, 'client1', 'client', ['country = GB', 'organization = qcow-ts test', 'cn = client1']);
  issue(ca, 'client2', 'client', ['country = GB', 'organization = qcow-ts test', 'cn = client2']);
  issue(other, 'foreign', 'client', ['country = GB', 'organization = qcow-ts test', 'cn = client1']);
  for (const folder of ['server', 'client1', 'client2', 'foreign', 'no-cert']) trusting(folder, ca.cert);
  mkdirSync(path('crl-server'));
  for (const file of ['ca-cert.pem', 'server-cert.pem', 'server-key.pem']) copyFileSync(path('server', file), path('crl-server', file));
  const revoke = ['--generate-crl', '--load-ca-privkey', ca.key, '--load-ca-certificate', ca.cert, '--load-certificate', path('client2', 'client-cert.pem')];
  runOk('certtool', [...revoke, '--template', template('crl', ['crl_next_update = 2', 'crl_number = 1']), '--outfile', path('crl-server', 'ca-crl.pem')]);

  mkdirSync(path('psk'));
  runOk('psktool', ['-u', 'alice', '-p', path('psk', 'keys.psk')]);
  runOk('psktool', ['-u', 'bob', '-p', path('psk', 'keys.psk')]);
  mkdirSync(path('wrong-psk'));
  runOk('psktool', ['-u', 'alice', '-p', path('wrong-psk', 'keys.psk')]);

  return {
    server: path('server'),
    crlServer: path('crl-server'),
    client: path('client1'),
    client2: path('client2'),
    noCert: path('no-cert'),
    foreign: path('foreign'),
    client1Identity: 'C=GB,O=qcow-ts test,CN=client1',
    client2Identity: 'C=GB,O=qcow-ts test,CN=client2',
    pskDir: path('psk'),
    pskFile: path('psk', 'keys.psk'),
    wrongPsk: path('wrong-psk', 'keys.psk'),
    wrongPskDir: path('wrong-psk'),
    cleanup: () => dir.cleanup(),
  };
}
