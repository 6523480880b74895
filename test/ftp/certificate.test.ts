import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTlsIdentity, describeCertificate } from '../../src/backends/certificate.js';
import { describeWith } from '../helpers/env.js';
import { tmpDir } from '../helpers/tmp.js';

describe('self-signed FTPS certificate', () => {
  it.each(['ecdsa-p256', 'rsa-2048'] as const)(
    '%s: parses, verifies itself and names the addresses',
    async (keyType) => {
      const id = await createTlsIdentity(
        ['198.18.0.1', '::1', 'fe80::1%eth0', '::ffff:10.0.0.1', 'ftp.test'],
        {
          keyType,
        },
      );
      const x509 = new X509Certificate(id.cert);
      expect(x509.verify(x509.publicKey)).toBe(true);
      expect(x509.checkPrivateKey(createPrivateKey(id.key))).toBe(true);
      expect(x509.checkIP('198.18.0.1')).toBe('198.18.0.1');
      expect(x509.checkIP('::1')).toBe('::1');
      expect(x509.checkIP('fe80::1')).toBe('fe80::1');
      expect(x509.checkIP('198.18.0.2')).toBeUndefined();
      expect(x509.checkHost('ftp.test')).toBe('ftp.test');
      expect(x509.subjectAltName).toContain('IP Address:0:0:0:0:0:FFFF:A00:1');
      expect(x509.ca).toBe(false);
      expect(Date.parse(x509.validFrom)).toBeLessThan(Date.now());
      expect(Date.parse(x509.validTo)).toBeGreaterThan(Date.now() + 300 * 86_400_000);
      expect(id.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      expect(describeCertificate(id.cert)).toEqual({
        fingerprint256: id.fingerprint256,
        publicKeyPin: id.publicKeyPin,
      });
    },
  );
});

describeWith({ tools: ['openssl'] }, 'certificate read by OpenSSL', () => {
  it('openssl x509 shows the same fingerprint and the SAN', async () => {
    await using dir = await tmpDir();
    const id = await createTlsIdentity(['127.0.0.1']);
    const file = path.join(dir.path, 'cert.pem');
    await writeFile(file, id.cert);
    const text = execFileSync(
      'openssl',
      ['x509', '-in', file, '-noout', '-text', '-fingerprint', '-sha256'],
      {
        encoding: 'utf8',
      },
    );
    expect(text).toContain('IP Address:127.0.0.1');
    expect(text).toContain('TLS Web Server Authentication');
    expect(text).toContain(`sha256 Fingerprint=${id.fingerprint256}`);
    const verify = execFileSync('openssl', ['verify', '-CAfile', file, file], { encoding: 'utf8' });
    expect(verify.trim()).toBe(`${file}: OK`);
  });
});
