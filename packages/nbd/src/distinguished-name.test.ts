import { readdirSync, readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CertificateFormatError, subjectDistinguishedName } from './distinguished-name.js';

const folder = fileURLToPath(new URL('../../../fixtures/certificates/', import.meta.url));

describe('subjectDistinguishedName', () => {
  // Each certificate has the identity qemu-nbd printed for it beside it (fixtures/certificates/*.json).
  for (const file of readdirSync(folder).filter((name) => name.endsWith('.pem'))) {
    it(`names ${file} as qemu-nbd does`, () => {
      const der = new X509Certificate(readFileSync(join(folder, file))).raw;
      const answer = JSON.parse(readFileSync(join(folder, file.replace(/\.pem$/, '.json')), 'utf8')) as { qemuNbdIdentity: string };
      expect(subjectDistinguishedName(new Uint8Array(der))).toBe(answer.qemuNbdIdentity);
    });
  }

  it('throws a typed error for bytes that are not a certificate, cut or not', () => {
    const der = new Uint8Array(new X509Certificate(readFileSync(join(folder, 'plain-subject.pem'))).raw);
    for (const bad of [new Uint8Array(0), new Uint8Array([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), der.subarray(0, 200), new Uint8Array([0x04, 0x00])]) {
      expect(() => subjectDistinguishedName(bad)).toThrow(CertificateFormatError);
    }
  });
});
