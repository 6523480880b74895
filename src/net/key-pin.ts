/**
 * Public key pins in curl's `--pinnedpubkey` form, which the testbed entries of FTPS and HTTPS
 * servers carry.
 * @internal
 * @module
 */
import { createHash, type KeyObject } from 'node:crypto';

/** `sha256//<base64 of the SHA-256 of the DER SubjectPublicKeyInfo>`. @internal */
export function publicKeyPin(key: KeyObject | Buffer): string {
  const spki = Buffer.isBuffer(key) ? key : key.export({ type: 'spki', format: 'der' });
  return `sha256//${createHash('sha256').update(spki).digest('base64')}`;
}
