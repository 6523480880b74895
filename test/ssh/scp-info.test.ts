/**
 * Information-only SCP (pyATS's behaviour): nothing is bound, the testbed entry points devices at
 * this host's own sshd with the account given. Checked against a real OpenSSH sshd: a copy made
 * with nothing but the entry's fields lands in the entry's root.
 */
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isFileServerError } from '../../src/errors.js';
import { FileServer } from '../../src/file-server.js';
import { Testbed } from '../../src/testbed/testbed.js';
import { describeWith } from '../helpers/env.js';
import { run } from '../helpers/ssh.js';
import { startSshd } from '../helpers/sshd.js';
import { tmpDir } from '../helpers/tmp.js';

describe('information-only SCP', () => {
  it('binds nothing and publishes address, port 22, root and the account', async () => {
    await using tmp = await tmpDir();
    const testbed = new Testbed();
    const before = process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length;
    await using server = await FileServer.start({
      protocol: 'scp',
      name: 'host-scp',
      testbed,
      address: '127.0.0.1',
      root: tmp.path,
      username: 'labuser',
      password: 'labpass',
    });
    expect(process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length).toBe(before);
    expect(testbed.servers.get('host-scp')).toMatchObject({
      protocol: 'scp',
      address: '127.0.0.1',
      port: 22,
      root: tmp.path,
      username: 'labuser',
      password: 'labpass',
      url: 'scp://127.0.0.1:22/',
      embedded: false,
    });
    await server.stop();
    expect(testbed.servers.has('host-scp')).toBe(false);
  });

  it('uses the port given', async () => {
    await using server = await FileServer.start({
      protocol: 'scp',
      address: '127.0.0.1',
      port: 2222,
      username: 'u',
      password: 'p',
    });
    expect(server.port).toBe(2222);
  });

  it('refuses what only a server of our own could do, and missing credentials', async () => {
    const base = { protocol: 'scp', address: '127.0.0.1', username: 'u', password: 'p' } as const;
    for (const extra of [
      { readOnly: true },
      { maxFileSize: 10 },
      { overwrite: false },
      { scp: { nope: 1 } as never },
    ]) {
      const server = new FileServer({ ...base, ...extra });
      await expect(server.start()).rejects.toSatisfy((e) => isFileServerError(e, 'ERR_INVALID_OPTIONS'));
    }
    const anonymous = new FileServer({ protocol: 'scp', address: '127.0.0.1' });
    await expect(anonymous.start()).rejects.toSatisfy(
      (e) =>
        isFileServerError(e, 'ERR_INVALID_OPTIONS') && /username and password/.test((e as Error).message),
    );
  });

  it('with verify, fails at start when no SSH server answers', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const server = new FileServer({
      protocol: 'scp',
      address: '127.0.0.1',
      port,
      username: 'u',
      password: 'p',
      scp: { verify: true, verifyTimeoutMs: 2000 },
    });
    await expect(server.start()).rejects.toSatisfy(
      (e) => isFileServerError(e, 'ERR_START_FAILED') && /No SSH server answers/.test((e as Error).message),
    );
  });
});

describeWith(
  { tools: ['sshd', 'sshpass', 'scp', 'ssh-keygen', 'useradd'], root: true },
  'information-only SCP against OpenSSH sshd',
  () => {
    it('the entry alone is enough for a device to copy', async () => {
      await using sshd = await startSshd({ address: '127.0.0.1' });
      await using tmp = await tmpDir();
      const testbed = new Testbed();
      await using server = await FileServer.start({
        protocol: 'scp',
        name: 'lab',
        testbed,
        address: '127.0.0.1',
        port: sshd.port,
        root: sshd.home,
        username: sshd.username,
        password: sshd.password,
        scp: { verify: true },
      });
      expect(server.info.sshIdentification).toMatch(/^SSH-2\.0-OpenSSH/);
      const entry = testbed.servers.get('lab')!;
      const file = path.join(tmp.path, 'config.txt');
      await writeFile(file, 'hostname router1\n');
      const r = await run(
        'sshpass',
        [
          '-e',
          'scp',
          '-P',
          String(entry.port),
          '-o',
          'StrictHostKeyChecking=no',
          '-o',
          'UserKnownHostsFile=/dev/null',
          '-o',
          'LogLevel=ERROR',
          file,
          `${entry.username}@${entry.address}:${entry.root}/config.txt`,
        ],
        { SSHPASS: String(entry.password) },
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(await readFile(path.join(sshd.home, 'config.txt'), 'utf8')).toBe('hostname router1\n');
    });
  },
);
