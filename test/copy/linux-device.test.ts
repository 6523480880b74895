/**
 * End to end with a Linux "device": OpenSSH's sshd runs inside a network namespace, SshDevice
 * logs in to it, and copyToDevice / copyFromDevice make the device's own clients (curl,
 * tftp-hpa, busybox, lftp, OpenSSH scp, sshpass) move files to and from our servers, whose
 * address comes from the SSH connection. Byte-exact, confirmed by the servers' transfer events.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copyFromDevice } from '../../src/copy/from-device.js';
import { SshDevice } from '../../src/copy/ssh-device.js';
import { copyToDevice } from '../../src/copy/to-device.js';
import { FileServer } from '../../src/file-server.js';
import { Testbed } from '../../src/testbed/testbed.js';
import type { Protocol } from '../../src/transfer.js';
import { describeWith } from '../helpers/env.js';
import { createTestHost, type TestHost } from '../helpers/netns.js';
import { type Sshd, startSshd } from '../helpers/sshd.js';
import { tmpDir } from '../helpers/tmp.js';

const TOOLS = ['ip', 'sshd', 'ssh-keygen', 'useradd', 'curl', 'tftp', 'busybox', 'lftp', 'scp', 'sshpass'];

describeWith({ tools: TOOLS, root: true }, 'copy with a Linux device in a namespace', () => {
  let host: TestHost;
  let sshd: Sshd;
  let device: SshDevice;
  let testbed: Testbed;
  let work: Awaited<ReturnType<typeof tmpDir>>;
  let image: Buffer;
  let imagePath: string;

  beforeAll(async () => {
    host = await createTestHost();
    sshd = await startSshd({ host });
    work = await tmpDir();
    image = randomBytes(1_500_000 + 123);
    imagePath = path.join(work.path, 'image.bin');
    await writeFile(imagePath, image);
    testbed = new Testbed({
      devices: {
        dev: {
          os: 'linux',
          connections: { cli: { protocol: 'ssh', ip: sshd.address, port: sshd.port } },
          credentials: { default: { username: sshd.username, password: sshd.password } },
        },
      },
    });
    device = SshDevice.fromTestbed(testbed, 'dev', { hostKeyFingerprint: sshd.fingerprint });
    await device.connect();
  });

  afterAll(async () => {
    await device?.close();
    await work?.[Symbol.asyncDispose]();
    await sshd?.[Symbol.asyncDispose]();
    await host?.[Symbol.asyncDispose]();
  });

  it('takes the server address from the SSH connection', () => {
    expect(device.localAddress).toBe(host.hostAddress);
  });

  // Every protocol with each client the linux builder knows; scp and sftp both reach our SSH server.
  const cases: Array<{ serves: Protocol; protocol: Protocol; client: string; upload: boolean }> = [
    { serves: 'tftp', protocol: 'tftp', client: 'tftp', upload: true },
    { serves: 'tftp', protocol: 'tftp', client: 'busybox', upload: true },
    { serves: 'tftp', protocol: 'tftp', client: 'curl', upload: true },
    { serves: 'http', protocol: 'http', client: 'curl', upload: true },
    { serves: 'http', protocol: 'http', client: 'busybox', upload: false },
    { serves: 'https', protocol: 'https', client: 'curl', upload: true },
    { serves: 'ftp', protocol: 'ftp', client: 'curl', upload: true },
    { serves: 'ftp', protocol: 'ftp', client: 'lftp', upload: true },
    { serves: 'ftp', protocol: 'ftp', client: 'busybox', upload: true },
    { serves: 'sftp', protocol: 'scp', client: 'scp', upload: true },
    { serves: 'sftp', protocol: 'scp', client: 'sshpass', upload: true },
    { serves: 'sftp', protocol: 'sftp', client: 'scp', upload: true },
  ];

  for (const { serves, protocol, client, upload } of cases) {
    it(`${protocol} with ${client}: a named server, to the device${upload ? ' and back' : ''}`, async () => {
      await using root = await tmpDir();
      await writeFile(path.join(root.path, 'image.bin'), image);
      await using server = await FileServer.start({
        protocol: serves,
        name: 'lab',
        testbed,
        root: root.path,
        via: device,
      });
      const name = `${protocol}-${client}.bin`;
      const to = await copyToDevice(device, {
        server: 'lab',
        protocol,
        file: 'image.bin',
        destination: `${sshd.home}/${name}`,
        osOptions: { client },
      });
      expect(to.confirmedBy).toBe('server');
      expect(to.transfer).toMatchObject({ ok: true, bytes: image.length, direction: 'download' });
      expect(to.transfer?.peer.address).toBe(host.deviceAddress);
      expect((await readFile(path.join(sshd.home, name))).equals(image)).toBe(true);
      if (!upload) return;
      const from = await copyFromDevice(device, {
        server: 'lab',
        protocol,
        source: `${sshd.home}/${name}`,
        file:
          client === 'scp' || client === 'sshpass' || protocol === 'tftp' ? `back-${name}` : `back/${name}`,
        osOptions: { client },
      });
      expect(from.transfer).toMatchObject({ ok: true, bytes: image.length, direction: 'upload' });
      expect((await readFile(path.join(root.path, from.transfer!.path))).equals(image)).toBe(true);
      expect(server.activeTransfers).toBe(0);
    });
  }

  it('ftp with curl to an FTPS server that requires TLS: --ssl-reqd with the key pinned, both ways', async () => {
    await using root = await tmpDir();
    await writeFile(path.join(root.path, 'image.bin'), image);
    await using server = await FileServer.start({
      protocol: 'ftp',
      name: 'lab',
      testbed,
      root: root.path,
      via: device,
      ftp: { tls: true },
    });
    const to = await copyToDevice(device, {
      server: 'lab',
      file: 'image.bin',
      destination: `${sshd.home}/ftps.bin`,
    });
    expect(to.command).toContain(`--ssl-reqd --insecure --pinnedpubkey ${server.info.publicKeyPin}`);
    expect(to.transfer).toMatchObject({ ok: true, bytes: image.length, direction: 'download' });
    expect((await readFile(path.join(sshd.home, 'ftps.bin'))).equals(image)).toBe(true);
    const from = await copyFromDevice(device, {
      server: 'lab',
      source: `${sshd.home}/ftps.bin`,
      file: 'back/ftps.bin',
    });
    expect(from.transfer).toMatchObject({ ok: true, bytes: image.length, direction: 'upload' });
    expect((await readFile(path.join(root.path, 'back', 'ftps.bin'))).equals(image)).toBe(true);
    await expect(
      copyToDevice(device, {
        server: 'lab',
        file: 'image.bin',
        destination: `${sshd.home}/x.bin`,
        osOptions: { client: 'lftp' },
      }),
    ).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_PROTOCOL' });
  });

  it('without a server or protocol: a temporary scp server, the password answered at the prompt', async () => {
    const to = await copyToDevice(device, { file: imagePath, destination: `${sshd.home}/default.bin` });
    expect(to.url).toMatch(new RegExp(`^scp://${host.hostAddress.replace(/\./g, '\\.')}:\\d+/image\\.bin$`));
    expect(to.command).toMatch(/^if scp -O /);
    expect(to.confirmedBy).toBe('server');
    expect((await readFile(path.join(sshd.home, 'default.bin'))).equals(image)).toBe(true);
  });

  for (const protocol of ['tftp', 'http', 'https', 'ftp', 'sftp'] as const) {
    it(`${protocol} without a server: a temporary one on the connection's address, stopped afterwards`, async () => {
      const to = await copyToDevice(device, { protocol, file: imagePath, destination: `${sshd.home}/` });
      expect(to.url).toContain(host.hostAddress);
      expect(to.confirmedBy).toBe('server');
      expect((await readFile(path.join(sshd.home, 'image.bin'))).equals(image)).toBe(true);
      await using out = await tmpDir();
      const from = await copyFromDevice(device, {
        protocol,
        source: `${sshd.home}/image.bin`,
        file: `${out.path}/`,
      });
      expect(from.localFile).toBe(path.join(out.path, 'image.bin'));
      expect((await readFile(from.localFile!)).equals(image)).toBe(true);
      // The temporary server is gone: its port no longer answers.
      const port = Number(new URL(to.url.replace(/^\w+:/, 'http:')).port);
      const probe = await device.execute(`curl -sS -m 2 http://${host.hostAddress}:${port}/ ; echo "rc=$?"`);
      expect(probe).toMatch(/rc=(7|28)/);
    });
  }

  it('maps a missing file to reason not-found and leaves no file on the device (tftp-hpa exits 0 and creates it)', async () => {
    // Writable by the device's user, so that a client that creates its file first could.
    await mkdir(path.join(sshd.home, 'missing'));
    await chmod(path.join(sshd.home, 'missing'), 0o777);
    for (const [protocol, client] of [
      ['tftp', 'tftp'],
      ['tftp', 'busybox'],
      ['http', 'curl'],
      ['ftp', 'lftp'],
    ] as const) {
      await using server = await FileServer.start({ protocol, name: 'lab', testbed, via: device });
      const error = await copyToDevice(device, {
        server: 'lab',
        file: 'nope.bin',
        destination: `${sshd.home}/missing/`,
        osOptions: { client },
      }).catch((e: unknown) => e);
      expect(error, client).toMatchObject({
        code: 'ERR_DEVICE_COMMAND_FAILED',
        details: { reason: 'not-found' },
      });
      expect(await readdir(path.join(sshd.home, 'missing')).catch(() => []), client).toEqual([]);
      expect(server.state).toBe('running');
    }
  });

  it('maps refused credentials to reason permission, without showing the password', async () => {
    await using server = await FileServer.start({ protocol: 'ftp', name: 'lab', testbed, via: device });
    const wrong = 'Wrong-Password-1';
    testbed.servers.set('other', { ...testbed.servers.get('lab'), password: wrong });
    try {
      for (const client of ['curl', 'lftp']) {
        const error = await copyToDevice(device, {
          server: 'other',
          file: 'x.bin',
          destination: `${sshd.home}/`,
          osOptions: { client },
        }).catch((e: unknown) => e);
        expect(error, client).toMatchObject({
          code: 'ERR_DEVICE_COMMAND_FAILED',
          details: { reason: 'permission' },
        });
        expect(JSON.stringify(error)).not.toContain(wrong);
      }
    } finally {
      testbed.servers.delete('other');
    }
    expect(server.state).toBe('running');
  });

  it('refuses to overwrite when overwrite is false, and leaves the file alone', async () => {
    await using server = await FileServer.start({
      protocol: 'http',
      name: 'lab',
      testbed,
      via: device,
      root: work.path,
    });
    const existing = path.join(sshd.home, 'keep.bin');
    await writeFile(existing, 'keep me');
    const error = await copyToDevice(device, {
      server: 'lab',
      file: 'image.bin',
      destination: existing,
      overwrite: false,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_DEVICE_COMMAND_FAILED', details: { reason: 'exists' } });
    expect(await readFile(existing, 'utf8')).toBe('keep me');
    expect(server.activeTransfers).toBe(0);
  });

  it('scp from an OpenSSH server the testbed names, password answered at the prompt', async () => {
    // A second sshd on the host end of the link: a server we do not run, so only the output and the exit status count.
    await using hostSshd = await startSshd({ address: host.hostAddress });
    await writeFile(path.join(hostSshd.home, 'image.bin'), image);
    const named = new Testbed({
      servers: {
        corp: {
          protocol: 'scp',
          address: hostSshd.address,
          port: hostSshd.port,
          username: hostSshd.username,
          password: hostSshd.password,
        },
      },
    });
    for (const [protocol, client] of [
      ['scp', 'scp'],
      ['sftp', 'scp'],
      ['scp', 'sshpass'],
    ] as const) {
      const name = `${protocol}-${client}.bin`;
      const to = await copyToDevice(device, {
        server: 'corp',
        testbed: named,
        protocol,
        file: 'image.bin',
        destination: `${sshd.home}/${name}`,
        osOptions: { client },
      });
      expect(to.confirmedBy).toBe('device');
      expect(to.command).not.toContain(hostSshd.password);
      expect((await readFile(path.join(sshd.home, name))).equals(image)).toBe(true);
      await copyFromDevice(device, {
        server: 'corp',
        testbed: named,
        protocol,
        source: `${sshd.home}/${name}`,
        osOptions: { client },
      });
      expect((await stat(path.join(hostSshd.home, name))).size).toBe(image.length);
    }
  });
});
