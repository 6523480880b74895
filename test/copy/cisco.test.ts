/**
 * The IOS-XE and NX-OS builders against a simulated CLI over a real SSH session: the dialogs
 * (filename questions, [confirm], overwrite, erase, vrf, password prompts), enable mode, the
 * command length limit, source-interface configuration and its restoration, error mapping, and
 * confirmation by our servers' transfer events. The simulated device really fetches from and
 * sends to our servers.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyFromDevice } from '../../src/copy/from-device.js';
import { SshDevice } from '../../src/copy/ssh-device.js';
import { copyToDevice } from '../../src/copy/to-device.js';
import { FileServer } from '../../src/file-server.js';
import { Testbed } from '../../src/testbed/testbed.js';
import { type SimOptions, type SimulatedDevice, startSimulatedDevice } from '../helpers/cisco-sim.js';
import { describeWith } from '../helpers/env.js';
import { tmpDir } from '../helpers/tmp.js';

const image = randomBytes(200_000 + 7);

/** A loopback address of its own, so that port 69 is free for this file's TFTP servers. */
const ownLoopback = () =>
  `127.${1 + Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;

async function setup(options: SimOptions) {
  const sim = await startSimulatedDevice(options);
  const testbed = new Testbed({
    devices: {
      R1: {
        os: options.os,
        connections: { cli: { protocol: 'ssh', ip: sim.address, port: sim.port } },
        credentials: {
          default: { username: sim.username, password: sim.password },
          ...(options.enableSecret ? { enable: { password: options.enableSecret } } : {}),
        },
      },
    },
  });
  const device = SshDevice.fromTestbed(testbed, 'R1', {
    hostKeyFingerprint: sim.fingerprint,
    localAddress: ownLoopback(),
  });
  await device.connect();
  return { sim, testbed, device };
}

describe('IOS-XE', () => {
  let sim: SimulatedDevice;
  let testbed: Testbed;
  let device: SshDevice;
  let root: Awaited<ReturnType<typeof tmpDir>>;

  beforeEach(async () => {
    ({ sim, testbed, device } = await setup({ os: 'iosxe', enableSecret: 'En-Secret', askErase: true }));
    root = await tmpDir();
    await writeFile(path.join(root.path, 'ios.bin'), image);
  });
  afterEach(async () => {
    await device.close();
    await sim[Symbol.asyncDispose]();
    await root[Symbol.asyncDispose]();
  });

  it('enters enable mode, turns paging off, and copies over http and ftp with the credentials in the URL', async () => {
    expect(sim.commands.slice(0, 3)).toEqual(['enable', 'terminal length 0', 'terminal width 511']);
    for (const protocol of ['http', 'ftp'] as const) {
      await using server = await FileServer.start({
        protocol,
        name: 'images',
        testbed,
        root: root.path,
        via: device,
      });
      const result = await copyToDevice(device, {
        server: 'images',
        file: 'ios.bin',
        destination: 'bootflash:',
      });
      expect(result.confirmedBy).toBe('server');
      expect(result.bytes).toBe(image.length);
      expect(result.command).toBe(
        `copy ${protocol}://${server.info.username}:***@${device.localAddress}:${server.port}/ios.bin bootflash:ios.bin`,
      );
      expect(result.output).toContain(`${image.length} bytes copied`);
      expect(result.output).not.toContain(server.info.password!);
      expect((await readFile(path.join(sim.flash, 'ios.bin'))).equals(image)).toBe(true);
    }
    expect(sim.answers.filter((a) => a.prompt === 'erase').map((a) => a.answer)).toEqual(['n', 'n']);
    // The second copy found ios.bin on the flash: the overwrite [confirm] took Enter.
    expect(sim.answers.filter((a) => a.prompt === 'overwrite').map((a) => a.answer)).toEqual(['\n']);
  });

  it('copies over https once the device trusts the server certificate, and fails with a typed error before', async () => {
    await using server = await FileServer.start({
      protocol: 'https',
      name: 'images',
      testbed,
      root: root.path,
      via: device,
    });
    const untrusted = await copyToDevice(device, {
      server: 'images',
      file: 'ios.bin',
      destination: 'bootflash:',
    }).catch((e: unknown) => e);
    expect(untrusted).toMatchObject({ code: 'ERR_DEVICE_COMMAND_FAILED' });
    expect((untrusted as Error).message).toMatch(/%Error opening https:\/\//);
    sim.trustpoints.push(server.info.certificate!);
    const result = await copyToDevice(device, {
      server: 'images',
      file: 'ios.bin',
      destination: 'bootflash:',
    });
    expect(result.command).toBe(
      `copy https://${server.info.username}:***@${device.localAddress}:${server.port}/ios.bin bootflash:ios.bin`,
    );
    expect(result.confirmedBy).toBe('server');
    expect(result.transfer).toMatchObject({ ok: true, protocol: 'https', bytes: image.length });
    expect((await readFile(path.join(sim.flash, 'ios.bin'))).equals(image)).toBe(true);
  });

  it('copies from the device: remote host and filename questions answered with their defaults', async () => {
    await writeFile(path.join(sim.flash, 'running.cfg'), image);
    await using _server = await FileServer.start({
      protocol: 'http',
      name: 'uploads',
      testbed,
      root: root.path,
      via: device,
    });
    const result = await copyFromDevice(device, {
      server: 'uploads',
      source: 'bootflash:running.cfg',
      file: 'R1/run.cfg',
    });
    expect(result.transfer).toMatchObject({
      ok: true,
      direction: 'upload',
      bytes: image.length,
      path: 'R1/run.cfg',
    });
    expect((await readFile(path.join(root.path, 'R1', 'run.cfg'))).equals(image)).toBe(true);
    expect(sim.answers.filter((a) => a.prompt !== 'enable').map((a) => a.prompt)).toEqual([
      'remote host',
      'destination filename',
    ]);
  });

  it('without a server: a temporary one on the SSH connection address, gone afterwards', async () => {
    const local = path.join(root.path, 'ios.bin');
    const result = await copyToDevice(device, {
      protocol: 'ftp',
      file: local,
      destination: 'bootflash:adhoc.bin',
    });
    expect(result.url).toMatch(/^ftp:\/\/127\.\d+\.\d+\.\d+:\d+\/ios\.bin$/);
    expect(new URL(result.url).hostname).toBe(device.localAddress);
    expect(result.confirmedBy).toBe('server');
    expect((await readFile(path.join(sim.flash, 'adhoc.bin'))).equals(image)).toBe(true);
    await using out = await tmpDir();
    const back = await copyFromDevice(device, {
      protocol: 'http',
      source: 'bootflash:adhoc.bin',
      file: path.join(out.path, 'back.bin'),
    });
    expect((await readFile(back.localFile!)).equals(image)).toBe(true);
  });

  // IOS-XE's tftp client only talks to port 69, and binding it takes root.
  describeWith({ root: true }, 'tftp on port 69', () => {
    it('tftp: port 69 only; a server on another port is refused before the device is asked', async () => {
      {
        await using _server = await FileServer.start({
          protocol: 'tftp',
          name: 'images',
          testbed,
          root: root.path,
          via: device,
          port: 69,
        });
        const result = await copyToDevice(device, {
          server: 'images',
          file: 'ios.bin',
          destination: 'bootflash:',
        });
        expect(result.command).toBe(`copy tftp://${device.localAddress}/ios.bin bootflash:ios.bin`);
        expect(result.transfer).toMatchObject({ ok: true, bytes: image.length, protocol: 'tftp' });
        expect((await readFile(path.join(sim.flash, 'ios.bin'))).equals(image)).toBe(true);
        const back = await copyFromDevice(device, {
          server: 'images',
          source: 'bootflash:ios.bin',
          file: 'up.bin',
        });
        expect(back.transfer).toMatchObject({ ok: true, direction: 'upload', bytes: image.length });
      }
      await using other = await FileServer.start({
        protocol: 'tftp',
        name: 'images',
        testbed,
        root: root.path,
        via: device,
      });
      const before = sim.commands.length;
      const error = await copyToDevice(device, {
        server: 'images',
        file: 'ios.bin',
        destination: 'bootflash:',
      }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_INVALID_OPTIONS', details: { port: other.port } });
      expect(sim.commands.length).toBe(before);
    });

    it('tftp without a server: a temporary one on port 69 of the connection address', async () => {
      const result = await copyToDevice(device, {
        protocol: 'tftp',
        file: path.join(root.path, 'ios.bin'),
        destination: 'bootflash:t.bin',
      });
      expect(result.url).toBe(`tftp://${device.localAddress}/ios.bin`);
      expect(result.confirmedBy).toBe('server');
      expect((await readFile(path.join(sim.flash, 't.bin'))).equals(image)).toBe(true);
    });
  });

  it('scp to our embedded SSH server: password at the prompt, confirmed by the server', async () => {
    await using server = await FileServer.start({
      protocol: 'scp',
      embedded: true,
      name: 'images',
      testbed,
      root: root.path,
      via: device,
    });
    const result = await copyToDevice(device, {
      server: 'images',
      file: 'ios.bin',
      destination: 'bootflash:s.bin',
    });
    expect(result.command).toBe(
      `copy scp://${server.info.username}@${device.localAddress}:${server.port}/ios.bin bootflash:s.bin`,
    );
    expect(result.transfer).toMatchObject({ ok: true, protocol: 'scp', bytes: image.length });
    expect(sim.answers.map((a) => a.prompt)).toContain('password');
    const back = await copyFromDevice(device, {
      server: 'images',
      source: 'bootflash:s.bin',
      file: 's-back.bin',
    });
    expect(back.transfer).toMatchObject({ ok: true, direction: 'upload', bytes: image.length });
    expect((await readFile(path.join(root.path, 's-back.bin'))).equals(image)).toBe(true);
  });

  it('keeps the command within 253 characters by answering the file name at the prompt', async () => {
    const deep = `${'d'.repeat(50)}/${'e'.repeat(50)}/${'f'.repeat(50)}`;
    await writeFile(path.join(root.path, 'ios.bin'), image);
    await using _server = await FileServer.start({
      protocol: 'http',
      name: 'images',
      testbed,
      root: root.path,
      via: device,
    });
    const destination = `bootflash:${deep}/image-with-a-long-name.bin`;
    const result = await copyToDevice(device, { server: 'images', file: 'ios.bin', destination });
    const sent = sim.commands.find((c) => c.startsWith('copy '))!;
    expect(sent.length).toBeLessThanOrEqual(253);
    expect(sent.endsWith(`bootflash:${deep}/`)).toBe(true);
    expect(result.deviceFile).toBe(destination);
    expect((await readFile(path.join(sim.flash, deep, 'image-with-a-long-name.bin'))).equals(image)).toBe(
      true,
    );
    // Too long even without the file name: refused before anything runs.
    const error = await copyToDevice(device, {
      server: 'images',
      file: 'ios.bin',
      destination: `bootflash:${'x'.repeat(300)}/a.bin`,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_INVALID_OPTIONS', details: { max: 253 } });
  });

  it('configures the source interface for the copy and restores what was there before', async () => {
    await using _server = await FileServer.start({
      protocol: 'http',
      name: 'images',
      testbed,
      root: root.path,
      via: device,
    });
    sim.config.push('ip http client source-interface Loopback9', 'ip ftp source-interface Vlan1');
    await copyToDevice(device, {
      server: 'images',
      file: 'ios.bin',
      destination: 'bootflash:',
      sourceInterface: 'Gi0/0',
    });
    expect(sim.commands).toContain('ip http client source-interface Gi0/0');
    expect(sim.config).toEqual([
      'ip ftp source-interface Vlan1',
      'ip http client source-interface Loopback9',
    ]);
    // Nothing configured before: the line is removed again.
    sim.config.length = 0;
    await copyToDevice(device, {
      server: 'images',
      file: 'ios.bin',
      destination: 'bootflash:',
      sourceInterface: 'Gi0/0',
    });
    expect(sim.commands).toContain('no ip http client source-interface Gi0/0');
    expect(sim.config).toEqual([]);
  });

  it('does not overwrite when told not to, and says why', async () => {
    await using _server = await FileServer.start({
      protocol: 'http',
      name: 'images',
      testbed,
      root: root.path,
      via: device,
    });
    await writeFile(path.join(sim.flash, 'ios.bin'), 'old');
    const error = await copyToDevice(device, {
      server: 'images',
      file: 'ios.bin',
      destination: 'bootflash:',
      overwrite: false,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_DEVICE_COMMAND_FAILED', details: { reason: 'exists' } });
    expect(await readFile(path.join(sim.flash, 'ios.bin'), 'utf8')).toBe('old');
    expect(sim.answers.at(-1)).toEqual({ prompt: 'overwrite', answer: 'n' });
  });

  it('maps %Error output to typed errors: not found, refused login, timed out', async () => {
    await using _server = await FileServer.start({
      protocol: 'ftp',
      name: 'images',
      testbed,
      root: root.path,
      via: device,
    });
    const missing = await copyToDevice(device, {
      server: 'images',
      file: 'nope.bin',
      destination: 'bootflash:',
    }).catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: 'ERR_DEVICE_COMMAND_FAILED', details: { reason: 'not-found' } });
    expect((missing as Error).message).toMatch(/%Error opening ftp:\/\/.*\(No such file or directory\)/);

    testbed.servers.set('bad', { ...testbed.servers.get('images'), password: 'Not-The-Password' });
    const refused = await copyToDevice(device, {
      server: 'bad',
      file: 'ios.bin',
      destination: 'bootflash:',
    }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'ERR_DEVICE_COMMAND_FAILED', details: { reason: 'permission' } });
    expect(JSON.stringify(refused)).not.toContain('Not-The-Password');

    // A server that never answers: the device's client times out.
    const silent = await import('node:net').then((net) => net.createServer(() => {}).listen(0, '127.0.0.1'));
    await new Promise((resolve) => silent.once('listening', resolve));
    testbed.servers.set('silent', {
      protocol: 'ftp',
      address: '127.0.0.1',
      port: (silent.address() as { port: number }).port,
      username: 'u',
      password: 'p',
    });
    try {
      const timedOut = await copyToDevice(device, {
        server: 'silent',
        file: 'ios.bin',
        destination: 'bootflash:',
      }).catch((e: unknown) => e);
      expect(timedOut).toMatchObject({ code: 'ERR_DEVICE_COMMAND_FAILED', details: { reason: 'timeout' } });
    } finally {
      silent.close();
    }
  });

  it('scp: user in the URL, password answered at the prompt; a refused one is not retried forever', async () => {
    // An SSH server the testbed only names (not a running FileServer of it): the device's word counts.
    await using ssh = await FileServer.start({
      protocol: 'scp',
      embedded: true,
      root: root.path,
      via: device,
    });
    testbed.servers.set('corp', {
      protocol: 'scp',
      address: ssh.address,
      port: ssh.port,
      username: ssh.info.username!,
      password: ssh.info.password!,
    });
    const result = await copyToDevice(device, {
      server: 'corp',
      file: 'ios.bin',
      destination: 'bootflash:scp.bin',
    });
    expect(result.command).toBe(
      `copy scp://${ssh.info.username}@${device.localAddress}:${ssh.port}/ios.bin bootflash:scp.bin`,
    );
    expect(result.confirmedBy).toBe('device');
    expect((await readFile(path.join(sim.flash, 'scp.bin'))).equals(image)).toBe(true);
    await copyFromDevice(device, { server: 'corp', source: 'bootflash:scp.bin', file: 'back.bin' });
    expect((await readFile(path.join(root.path, 'back.bin'))).equals(image)).toBe(true);

    testbed.servers.set('corp', { ...testbed.servers.get('corp'), password: 'Wrong-Pass-9' });
    const error = await copyToDevice(device, {
      server: 'corp',
      file: 'ios.bin',
      destination: 'bootflash:x.bin',
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'ERR_DEVICE_COMMAND_FAILED',
      details: { reason: 'credentials-refused' },
    });
    expect(JSON.stringify(error)).not.toContain('Wrong-Pass-9');
    // The session was interrupted back to its prompt and still works.
    expect(await device.execute('terminal length 0')).toBe('');
  });

  it('does not take the device at its word: success needs the server to have sent the file', async () => {
    await using lying = await startSimulatedDevice({ os: 'iosxe', lie: true });
    await using liar = new SshDevice({
      os: 'iosxe',
      host: lying.address,
      port: lying.port,
      username: lying.username,
      password: lying.password,
      testbed,
    });
    await using _server = await FileServer.start({
      protocol: 'http',
      name: 'images',
      testbed,
      root: root.path,
      via: device,
    });
    const error = await copyToDevice(liar, {
      server: 'images',
      file: 'ios.bin',
      destination: 'bootflash:',
      confirmTimeoutMs: 500,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_TRANSFER_FAILED' });
    expect((error as Error).message).toMatch(/server saw no transfer/);
  });

  it('times out a command that hangs, interrupts it, and keeps the session usable', async () => {
    const silent = await import('node:net').then((net) => net.createServer(() => {}).listen(0, '127.0.0.1'));
    await new Promise((resolve) => silent.once('listening', resolve));
    testbed.servers.set('silent', {
      protocol: 'ftp',
      address: '127.0.0.1',
      port: (silent.address() as { port: number }).port,
      username: 'u',
      password: 'p',
    });
    try {
      const error = await copyToDevice(device, {
        server: 'silent',
        file: 'ios.bin',
        destination: 'bootflash:',
        timeoutMs: 800,
      }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_DEVICE_TIMEOUT' });
    } finally {
      silent.close();
    }
    expect(await device.execute('terminal length 0')).toBe('');
    await using _server = await FileServer.start({
      protocol: 'http',
      name: 'images',
      testbed,
      root: root.path,
      via: device,
    });
    await copyToDevice(device, { server: 'images', file: 'ios.bin', destination: 'bootflash:' });
  });

  it('aborts through an AbortSignal', async () => {
    const silent = await import('node:net').then((net) => net.createServer(() => {}).listen(0, '127.0.0.1'));
    await new Promise((resolve) => silent.once('listening', resolve));
    testbed.servers.set('silent', {
      protocol: 'ftp',
      address: '127.0.0.1',
      port: (silent.address() as { port: number }).port,
      username: 'u',
      password: 'p',
    });
    try {
      const error = await copyToDevice(device, {
        server: 'silent',
        file: 'ios.bin',
        destination: 'bootflash:',
        signal: AbortSignal.timeout(500),
      }).catch((e: unknown) => e);
      expect(error).toMatchObject({ name: 'TimeoutError' });
    } finally {
      silent.close();
    }
    expect(await device.execute('terminal length 0')).toBe('');
  });
});

describe('NX-OS', () => {
  let sim: SimulatedDevice;
  let testbed: Testbed;
  let device: SshDevice;
  let root: Awaited<ReturnType<typeof tmpDir>>;

  beforeEach(async () => {
    ({ sim, testbed, device } = await setup({ os: 'nxos' }));
    root = await tmpDir();
    await writeFile(path.join(root.path, 'nxos.bin'), image);
  });
  afterEach(async () => {
    await device.close();
    await sim[Symbol.asyncDispose]();
    await root[Symbol.asyncDispose]();
  });

  it('appends vrf management, answers the ftp password prompt, and confirms "Copy complete"', async () => {
    await using server = await FileServer.start({
      protocol: 'ftp',
      name: 'images',
      testbed,
      root: root.path,
      via: device,
    });
    const result = await copyToDevice(device, {
      server: 'images',
      file: 'nxos.bin',
      destination: 'bootflash:',
    });
    expect(result.command).toBe(
      `copy ftp://${server.info.username}@${device.localAddress}:${server.port}/nxos.bin bootflash:nxos.bin vrf management`,
    );
    expect(result.confirmedBy).toBe('server');
    expect(sim.answers.map((a) => a.prompt)).toEqual(['password']);
    expect((await readFile(path.join(sim.flash, 'nxos.bin'))).equals(image)).toBe(true);
    // Again: the (y/n) overwrite question is answered y.
    await copyToDevice(device, { server: 'images', file: 'nxos.bin', destination: 'bootflash:' });
    expect(sim.answers.at(-1)).toEqual({ prompt: 'overwrite', answer: 'y' });
  });

  it('vrf false leaves the keyword out and answers the vrf question with nothing', async () => {
    await using _server = await FileServer.start({
      protocol: 'http',
      name: 'images',
      testbed,
      root: root.path,
      via: device,
    });
    await copyToDevice(device, {
      server: 'images',
      file: 'nxos.bin',
      destination: 'bootflash:x.bin',
      vrf: false,
    });
    expect(sim.commands.at(-1)).toMatch(/^copy http:\/\/.* bootflash:x\.bin$/);
    expect(sim.answers.map((a) => a.prompt)).toContain('vrf');
  });

  it('copies from the device and maps "Copy failed"', async () => {
    await writeFile(path.join(sim.flash, 'show-tech.txt'), image);
    await using _server = await FileServer.start({
      protocol: 'ftp',
      name: 'up',
      testbed,
      root: root.path,
      via: device,
    });
    const result = await copyFromDevice(device, { server: 'up', source: 'bootflash:show-tech.txt' });
    expect(result.transfer).toMatchObject({ ok: true, path: 'show-tech.txt', bytes: image.length });
    const error = await copyFromDevice(device, { server: 'up', source: 'bootflash:none.txt' }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'ERR_DEVICE_COMMAND_FAILED', details: { reason: 'not-found' } });
  });

  it('maps a refused ftp password (answered at the prompt) to reason permission', async () => {
    await using _server = await FileServer.start({
      protocol: 'ftp',
      name: 'images',
      testbed,
      root: root.path,
      via: device,
    });
    // The password never reaches the URL on NX-OS; the prompt asks, and a wrong one is refused by our server.
    testbed.servers.set('bad', { ...testbed.servers.get('images'), password: 'Wrong-1' });
    const error = await copyToDevice(device, {
      server: 'bad',
      file: 'nxos.bin',
      destination: 'bootflash:',
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_DEVICE_COMMAND_FAILED', details: { reason: 'permission' } });
    expect(JSON.stringify(error)).not.toContain('Wrong-1');
  });
});
