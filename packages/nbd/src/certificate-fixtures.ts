// Test helper: the certificates of fixtures/certificates, with the answers qemu-nbd and openssl gave for them.
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const folder = fileURLToPath(new URL('../../../fixtures/certificates/', import.meta.url));

/** fixtures/certificates: each PEM certificate with a JSON of answers taken from qemu-nbd and openssl. */
export function certificateFixtures(): Array<{ file: string; der: Uint8Array; answer: { qemuNbdIdentity?: string; mayIssueCrls: boolean } }> {
  return readdirSync(folder)
    .filter((name) => name.endsWith('.pem'))
    .map((file) => ({
      file,
      der: new Uint8Array(new X509Certificate(readFileSync(join(folder, file))).raw),
      answer: JSON.parse(readFileSync(join(folder, file.replace(/\.pem$/, '.json')), 'utf8')) as { qemuNbdIdentity?: string; mayIssueCrls: boolean },
    }));
}

