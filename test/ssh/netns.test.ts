/**
 * A device in a network namespace copies with OpenSSH's scp (legacy and SFTP mode) to and from
 * the embedded SSH server, reached through the address FileServer resolved for its subnet, with
 * the host key pinned from the server's info.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FileServer } from '../../src/file-server.js';
import type { TransferEvent } from '../../src/transfer.js';
import { describeWith } from '../helpers/env.js';
import { makeTree } from '../helpers/ftp.js';
import { createTestHost, type TestHost } from '../helpers/netns.js';
import { knownHostsText } from '../helpers/ssh.js';
import { tmpDir } from '../helpers/tmp.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describeWith({ tools: ['sshpass', 'scp', 'ip'], root: true }, 'SCP from a network-namespace device', () => {
  let host: TestHost;
  let tmp: Awaited<ReturnType<typeof tmpDir>>;
  let server: FileServer;
  let root: string;
  let knownHosts: string;
  const events: TransferEvent[] = [];
  const payload = Buffer.from(Array.from({ length: 1_200_000 }, (_, i) => (i * 97) & 255));

  beforeAll(async () => {
    host = await createTestHost();
    tmp = await tmpDir('tbfs-ssh-ns-');
    root = await makeTree(tmp.path);
    await writeFile(path.join(tmp.path, 'device.bin'), payload);
    server = await FileServer.start({ protocol: 'scp', embedded: true, root, subnet: host.subnet });
    server.on('transfer', (e) => events.push(e));
    knownHosts = path.join(tmp.path, 'known_hosts');
    await writeFile(knownHosts, knownHostsText(server));
  });
  afterAll(async () => {
    await server?.stop();
    await tmp?.[Symbol.asyncDispose]();
    await host?.[Symbol.asyncDispose]();
  });

  it.each([
    ['legacy', ['-O']],
    ['sftp', []],
  ])('scp (%s) on the device uploads and downloads byte-exact', async (mode, flags) => {
    const { address, port, username, password, embedded } = server.info;
    expect(address).toBe(host.hostAddress);
    expect(embedded).toBe(true);
    const scp = (...args: string[]) =>
      host.exec('env', [
        `SSHPASS=${password}`,
        'sshpass',
        '-e',
        'scp',
        ...flags,
        '-P',
        String(port),
        '-o',
        `UserKnownHostsFile=${knownHosts}`,
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        'PubkeyAuthentication=no',
        '-o',
        'LogLevel=ERROR',
        '-F',
        '/dev/null',
        ...args,
      ]);
    const remote = `${username}@${address}:from-device-${mode}.bin`;
    const up = await scp(path.join(tmp.path, 'device.bin'), remote);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(sha(await readFile(path.join(root, `from-device-${mode}.bin`)))).toBe(sha(payload));
    const back = path.join(tmp.path, `back-${mode}.bin`);
    const down = await scp(remote, back);
    expect(down.code).toBe(0);
    expect(sha(await readFile(back))).toBe(sha(payload));
    const mine = events.filter((e) => e.path === `from-device-${mode}.bin`);
    expect(mine.map((e) => [e.direction, e.ok, e.bytes, e.peer.address])).toEqual([
      ['upload', true, payload.length, host.deviceAddress],
      ['download', true, payload.length, host.deviceAddress],
    ]);
  });
});
