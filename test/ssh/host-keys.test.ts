import { createHash } from 'node:crypto';
import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { describeHostKey, generateHostKey } from '../../src/backends/ssh/host-keys.js';

describe('SSH host keys', () => {
  it('every generated Ed25519 key is usable (ssh2 alone spoils one in 256)', async () => {
    const keys = await Promise.all(Array.from({ length: 1000 }, () => generateHostKey('ed25519')));
    for (const key of keys) {
      expect(key.type).toBe('ssh-ed25519');
      const blob = Buffer.from(key.publicKey.split(' ')[1]!, 'base64');
      expect(blob.length).toBe(4 + 11 + 4 + 32); // string "ssh-ed25519", string key[32]
    }
  });

  it('describes a key the way OpenSSH does', () => {
    const pair = ssh2.utils.generateKeyPairSync('rsa', { bits: 2048 });
    const key = describeHostKey(pair.private);
    expect(key.publicKey).toBe(pair.public.split(' ').slice(0, 2).join(' '));
    const blob = Buffer.from(key.publicKey.split(' ')[1]!, 'base64');
    expect(key.fingerprint).toBe(
      `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`,
    );
  });

  it('refuses what is not a private key', () => {
    expect(() => describeHostKey('not a key')).toThrow(/cannot read a host key/);
    const pair = ssh2.utils.generateKeyPairSync('ed25519');
    expect(() => describeHostKey(pair.public)).toThrow(/cannot read a host key/);
  });
});
