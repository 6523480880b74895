/**
 * The examples of docs/scp-sftp.md. Each `#region` is copied verbatim into the guide
 * (test/docs.test.ts checks).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ssh2 from 'ssh2';
import { FileServer, Testbed } from 'testbed-fileserver';
import { expect, it } from 'vitest';
import { tmpDir } from '../helpers/tmp.js';

it('scp guide: an embedded SSH server with a pinned host key', async () => {
  // #region embedded
  await using server = await FileServer.start({ protocol: 'scp', embedded: true, address: '127.0.0.1' });
  const { address, port, username, password, root, hostKeys, hostKeyFingerprints } = server.info;
  console.log(hostKeyFingerprints); // { 'ssh-ed25519': 'SHA256:p6...', 'ssh-rsa': 'SHA256:Xw...' }

  // known_hosts lines for OpenSSH (scp -o UserKnownHostsFile=<file> -o StrictHostKeyChecking=yes):
  const knownHosts = (hostKeys as string[]).map((key) => `[${address}]:${port} ${key}\n`).join('');

  // A client pinning the fingerprint (here ssh2; a device compares what it prints on first connect).
  const fingerprints = Object.values(hostKeyFingerprints as Record<string, string>);
  const pinned = (key: Buffer) =>
    fingerprints.includes(`SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`);
  const client = new ssh2.Client();
  await new Promise<void>((ready, fail) => {
    client.once('ready', () => ready()).once('error', fail);
    client.connect({ host: address, port, username: username!, password: password!, hostVerifier: pinned });
  });
  const sftp = await new Promise<ssh2.SFTPWrapper>((ok, fail) =>
    client.sftp((e, s) => (e ? fail(e) : ok(s))),
  );
  await new Promise((ok, fail) =>
    sftp.writeFile('R1.cfg', 'hostname R1\n', (e) => (e ? fail(e) : ok(undefined))),
  );
  client.end();
  console.log(await readFile(path.join(root, 'R1.cfg'), 'utf8')); // hostname R1
  // #endregion embedded
  expect(knownHosts.split('\n').filter(Boolean)).toHaveLength(2);
  expect(await readFile(path.join(root, 'R1.cfg'), 'utf8')).toBe('hostname R1\n');
});

it('scp guide: information only, as pyATS', async () => {
  await using home = await tmpDir();
  // #region info-only
  const testbed = new Testbed();
  await using server = await FileServer.start({
    protocol: 'scp', // embedded left out: nothing is started, this host's sshd does the copying
    name: 'lab-host',
    testbed,
    address: '127.0.0.1',
    root: home.path, // where devices copy to, on this host
    username: 'labuser', // an account of this host, given by you
    password: 'its-password',
  });
  console.log(testbed.servers.get('lab-host'));
  // { protocol: 'scp', address: '127.0.0.1', port: 22, root: '/tmp/...', username: 'labuser',
  //   password: 'its-password', url: 'scp://127.0.0.1:22/', embedded: false, ... }
  // #endregion info-only
  expect(testbed.servers.get('lab-host')).toMatchObject({ port: 22, username: 'labuser', embedded: false });
  expect(server.port).toBe(22);
});
