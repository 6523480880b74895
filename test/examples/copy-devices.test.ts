/**
 * The examples of docs/copy-and-devices.md about devices, one per OS family. Linux runs against
 * OpenSSH in a network namespace, IOS-XE and NX-OS against the simulated CLI of
 * test/helpers/cisco-sim.ts; IOS-XR and Junos show the commands their builders write. Each
 * `#region` is copied verbatim into the guide (test/docs.test.ts checks).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  copyBuilderFor,
  copyFromDevice,
  copyToDevice,
  FileServer,
  isFileServerError,
  SshDevice,
  Testbed,
} from 'testbed-fileserver';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSimulatedDevice } from '../helpers/cisco-sim.js';
import { describeWith } from '../helpers/env.js';
import { createTestHost, type TestHost } from '../helpers/netns.js';
import { type Sshd, startSshd } from '../helpers/sshd.js';
import { tmpDir } from '../helpers/tmp.js';

const image = Buffer.alloc(1 << 20, 'image ');

describeWith(
  { tools: ['ip', 'sshd', 'ssh-keygen', 'useradd', 'curl', 'scp'], root: true },
  'Linux device',
  () => {
    let host: TestHost;
    let sshd: Sshd;
    let work: Awaited<ReturnType<typeof tmpDir>>;
    beforeAll(async () => {
      host = await createTestHost();
      sshd = await startSshd({ host });
      work = await tmpDir();
      await mkdir(path.join(work.path, 'images'));
      await writeFile(path.join(work.path, 'images', 'app.tar.gz'), image);
      await writeFile(path.join(sshd.home, 'app.log'), 'started\n');
    });
    afterAll(async () => {
      await work?.[Symbol.asyncDispose]();
      await sshd?.[Symbol.asyncDispose]();
      await host?.[Symbol.asyncDispose]();
    });

    it('copies to and from a Linux host with its own curl and scp', async () => {
      const images = path.join(work.path, 'images');
      const logs = path.join(work.path, 'logs');
      const home = sshd.home;
      // #region linux
      const testbed = new Testbed({
        devices: {
          web1: {
            os: 'linux',
            connections: { cli: { protocol: 'ssh', ip: sshd.address } },
            credentials: { default: { username: sshd.username, password: sshd.password } },
          },
        },
      });
      await using web1 = await SshDevice.fromTestbed(testbed, 'web1').connect();
      console.log(await web1.execute('uname -s')); // Linux

      // A named server, bound to the address web1 reaches us on (the SSH connection's local end).
      await using _images = await FileServer.start({
        protocol: 'http',
        name: 'images',
        testbed,
        root: images,
        via: web1,
      });
      const result = await copyToDevice(web1, {
        server: 'images',
        file: 'app.tar.gz',
        destination: `${home}/`,
      });
      console.log(result.command); // if curl -sS --fail -u tb... -o /home/.../app.tar.gz.tbfs-part http://198.18.0.1:41234/app.tar.gz; then mv ...
      console.log(result.confirmedBy, result.transfer?.bytes); // server 1048576

      // No server: a temporary one (scp by default) for this copy only; the password is answered at scp's prompt.
      await copyFromDevice(web1, { source: `${home}/app.log`, file: `${logs}/` });
      // #endregion linux
      expect(result.confirmedBy).toBe('server');
      expect((await readFile(path.join(home, 'app.tar.gz'))).equals(image)).toBe(true);
      expect(await readFile(path.join(logs, 'app.log'), 'utf8')).toBe('started\n');
    });
  },
);

it('IOS-XE: enable, dialogs, VRF, a source interface set and restored', async () => {
  await using sim = await startSimulatedDevice({ os: 'iosxe', enableSecret: 'En-1', askErase: true });
  await using work = await tmpDir();
  await writeFile(path.join(work.path, 'cat9k.bin'), image);
  const root = work.path;
  const r1Ip = sim.address;
  // #region iosxe
  const testbed = new Testbed({
    devices: {
      R1: {
        os: 'iosxe',
        connections: { cli: { protocol: 'ssh', ip: r1Ip, port: sim.port } },
        credentials: { default: { username: 'admin', password: 'Sim-Pass-1' }, enable: { password: 'En-1' } },
      },
    },
  });
  await using r1 = await SshDevice.fromTestbed(testbed, 'R1').connect(); // enable, terminal length 0
  await using _images = await FileServer.start({ protocol: 'ftp', name: 'images', testbed, root, via: r1 });
  const result = await copyToDevice(r1, {
    server: 'images',
    file: 'cat9k.bin',
    destination: 'bootflash:',
    vrf: 'Mgmt-intf',
    sourceInterface: 'GigabitEthernet0/0', // `ip ftp source-interface ...` for the copy, restored afterwards
  });
  console.log(result.command); // copy ftp://tb...:***@127.0.0.1:40321/cat9k.bin bootflash:cat9k.bin vrf Mgmt-intf
  console.log(result.output); // Destination filename [cat9k.bin]? ... Erase bootflash: before copying? [confirm] ... 1048576 bytes copied in 0.1 secs
  // #endregion iosxe
  expect(result.transfer).toMatchObject({ ok: true, bytes: image.length });
  expect(sim.answers.find((a) => a.prompt === 'erase')?.answer).toBe('n');
  expect(sim.commands).toContain('ip ftp source-interface GigabitEthernet0/0');
  expect(sim.config).toEqual([]);
});

it('NX-OS: vrf management by default, the ftp password at its prompt', async () => {
  await using sim = await startSimulatedDevice({ os: 'nxos' });
  await using work = await tmpDir();
  await writeFile(path.join(sim.flash, 'show-tech.gz'), image);
  const testbed = new Testbed({
    devices: {
      N9K: {
        os: 'nxos',
        connections: { cli: { protocol: 'ssh', ip: sim.address, port: sim.port } },
        credentials: { default: { username: sim.username, password: sim.password } },
      },
    },
  });
  const uploads = work.path;
  // #region nxos
  await using n9k = await SshDevice.fromTestbed(testbed, 'N9K').connect();
  await using _up = await FileServer.start({
    protocol: 'ftp',
    name: 'uploads',
    testbed,
    root: uploads,
    via: n9k,
  });
  const sent = await copyFromDevice(n9k, {
    server: 'uploads',
    source: 'bootflash:show-tech.gz',
    file: 'N9K/show-tech.gz',
  });
  console.log(sent.command); // copy bootflash:show-tech.gz ftp://tb...@127.0.0.1:40321/N9K/show-tech.gz vrf management
  console.log(sent.transfer?.path, sent.transfer?.ok); // N9K/show-tech.gz true
  // #endregion nxos
  expect(sent.command).toMatch(/ vrf management$/);
  expect((await readFile(path.join(uploads, 'N9K', 'show-tech.gz'))).equals(image)).toBe(true);
});

it('IOS-XR and Junos: the commands their builders write', () => {
  // #region iosxr-junos
  const remote = {
    protocol: 'ftp',
    host: '198.18.0.1',
    port: 21,
    path: 'xr.iso',
    username: 'lab',
    password: 'pw',
  } as const;
  // IOS-XR asks for FTP credentials even when the URL has them (genielibs#152): the password goes to the prompt.
  const xr = copyBuilderFor('iosxr').build({
    direction: 'to-device',
    remote,
    deviceFile: 'harddisk:',
    vrf: 'MGMT',
  });
  console.log(xr.command); // copy ftp://lab@198.18.0.1/xr.iso harddisk:xr.iso vrf MGMT
  const junos = copyBuilderFor('junos').build({
    direction: 'to-device',
    remote,
    deviceFile: '/var/tmp/',
    vrf: 'mgmt_junos',
  });
  console.log(junos.command); // file copy ftp://lab@198.18.0.1/xr.iso /var/tmp/xr.iso routing-instance mgmt_junos
  // #endregion iosxr-junos
  expect(xr.command).toBe('copy ftp://lab@198.18.0.1/xr.iso harddisk:xr.iso vrf MGMT');
  expect(junos.command).toBe(
    'file copy ftp://lab@198.18.0.1/xr.iso /var/tmp/xr.iso routing-instance mgmt_junos',
  );
  expect(xr.dialog.some((s) => s.secret && s.answer === 'pw')).toBe(true);
});

it('errors say why, in a word', async () => {
  await using sim = await startSimulatedDevice({ os: 'iosxe' });
  const testbed = new Testbed();
  await using r1 = await new SshDevice({
    os: 'iosxe',
    host: sim.address,
    port: sim.port,
    username: sim.username,
    password: sim.password,
    testbed,
  }).connect();
  await using _images = await FileServer.start({ protocol: 'http', name: 'images', testbed, via: r1 });
  // #region errors
  const outcome = await copyToDevice(r1, {
    server: 'images',
    file: 'missing.bin',
    destination: 'bootflash:',
  }).catch((error: unknown) => error);
  if (isFileServerError(outcome, 'ERR_DEVICE_COMMAND_FAILED')) {
    console.log(outcome.details?.reason); // not-found
    console.log(outcome.details?.output); // ... %Error opening http://127.0.0.1:40321/missing.bin (No such file or directory)
  }
  // #endregion errors
  expect(outcome).toMatchObject({ code: 'ERR_DEVICE_COMMAND_FAILED', details: { reason: 'not-found' } });
});
