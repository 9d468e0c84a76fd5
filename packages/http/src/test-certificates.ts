import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './qemu-images.js';

/** PEM files of a test CA and a server certificate it signs for 127.0.0.1 and localhost. */
export interface TestCertificates {
  /** The CA certificate: give it to clients (NODE_EXTRA_CA_CERTS for Node's fetch). */
  ca: string;
  certificate: string;
  key: string;
}

/**
 * Makes a CA and a server certificate for HTTPS tests with openssl in `dir` (Node only, for tests). Node's fetch
 * reads extra CAs only at startup, so clients that must trust it are child processes run with
 * `NODE_EXTRA_CA_CERTS=<ca>`.
 */
export async function makeTestCertificates(dir: string): Promise<TestCertificates> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=q test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  await run('openssl', ['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext'], dir);
  return { ca: join(dir, 'ca.pem'), certificate: join(dir, 'server.pem'), key: join(dir, 'server.key') };
}
