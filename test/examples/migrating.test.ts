/**
 * The examples of docs/migrating-from-pyats.md: each pyATS idiom's equivalent, run for real.
 * The device is OpenSSH's sshd on loopback with a throw-away account (a Linux "device").
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  copy,
  copyFromDevice,
  copyToDevice,
  FileServer,
  resolveUrl,
  SshDevice,
  startDynamicServers,
  Testbed,
} from 'testbed-fileserver';
import { expect, it } from 'vitest';
import { describeWith } from '../helpers/env.js';
import { startSshd } from '../helpers/sshd.js';
import { tmpDir } from '../helpers/tmp.js';

it('FileServer as a context manager, info as a dict', async () => {
  await using dir = await tmpDir();
  const root = dir.path;
  const testbed = new Testbed();
  // #region context-manager
  // pyATS: with FileServer(protocol='ftp', subnet='10.0.0.0/8', path='/srv', name='images',
  //                        testbed=testbed) as info:
  await using server = await FileServer.start({
    protocol: 'ftp',
    subnet: '127.0.0.0/8',
    root,
    name: 'images',
    testbed,
  });
  const { address, port, username, password } = server.info; // info['port'], info['credentials']['ftp']
  testbed.server('images'); // testbed.servers['images'], until the block ends
  // #endregion context-manager
  expect(testbed.server('images')).toMatchObject({ address, port, username, password });
});

it('the Easypy plugin: dynamic servers for the length of a job', async () => {
  await using dir = await tmpDir();
  const file = path.join(dir.path, 'testbed.yaml');
  await writeFile(
    file,
    'testbed:\n  servers:\n    images: { dynamic: true, subnet: 127.0.0.0/8, path: ./images, custom: { http_auth: false } }\n',
  );
  // #region plugin
  // pyATS: the fileserver plugin's pre_job / post_job, with [filetransfer] protocol = http
  const testbed = await Testbed.load(file);
  {
    await using _servers = await startDynamicServers(testbed, { defaultProtocol: 'http' });
    console.log(testbed.servers.get('images')?.url); // http://127.0.0.1:40123/ (auth off: custom.http_auth)
  }
  // here every dynamic server is stopped, and testbed.servers['images'] is the YAML entry again
  // #endregion plugin
  expect(testbed.server('images')).toMatchObject({ dynamic: true, auth: false });
  expect(testbed.server('images').url).toBeUndefined();
});

describeWith({ tools: ['sshd', 'ssh-keygen', 'useradd', 'curl'], root: true }, 'copy helpers', () => {
  it('FileUtils and the copy_to_device / copy_from_device APIs', async () => {
    await using dir = await tmpDir();
    await using sshd = await startSshd({ address: '127.0.0.1' });
    const images = path.join(dir.path, 'images');
    const uploads = path.join(dir.path, 'uploads');
    const local = path.join(dir.path, 'local');
    await mkdir(images);
    await writeFile(path.join(images, 'ios.bin'), 'image');
    const build = path.join(dir.path, 'app.bin');
    await writeFile(build, 'app');
    await writeFile(path.join(sshd.home, 'running.cfg'), 'hostname R1\n');
    const testbed = new Testbed({
      devices: {
        R1: {
          os: 'linux',
          connections: { cli: { protocol: 'ssh', ip: sshd.address, port: sshd.port } },
          credentials: { default: { username: sshd.username, password: sshd.password } },
        },
      },
    });
    await using _images = await FileServer.start({
      protocol: 'http',
      name: 'images',
      root: images,
      address: '127.0.0.1',
      testbed,
    });
    await using _uploads = await FileServer.start({
      protocol: 'ftp',
      name: 'uploads',
      root: uploads,
      address: '127.0.0.1',
      testbed,
    });
    await using r1 = await SshDevice.fromTestbed(testbed, 'R1').connect();
    const destination = `${sshd.home}/`;
    // #region fileutils
    // pyATS: FileUtils(testbed=testbed).validate_and_update_url('http://images/ios.bin')
    resolveUrl(testbed, 'http://images/ios.bin').url; // http://tb...:...@127.0.0.1:40123/ios.bin
    // pyATS: fu.copyfile('http://images/ios.bin', '/tmp/ios.bin') on the execution host
    await copy(testbed, 'http://images/ios.bin', `${local}/ios.bin`, { verify: true });
    // #endregion fileutils
    // #region copy-to-device
    // pyATS: copy_to_device(r1, remote_path='ios.bin', local_path='bootflash:', server='images')
    await copyToDevice(r1, { server: 'images', file: 'ios.bin', destination });
    // pyATS: copy_from_device(r1, local_path='bootflash:running.cfg', server='uploads')
    await copyFromDevice(r1, {
      server: 'uploads',
      source: `${destination}running.cfg`,
      file: 'R1/running.cfg',
    });
    // Without server=: a temporary server for this copy only (pyATS returns None on failure; this throws)
    await copyToDevice(r1, { protocol: 'http', file: build, destination });
    // #endregion copy-to-device
    expect(await readFile(path.join(local, 'ios.bin'), 'utf8')).toBe('image');
    expect(await readFile(path.join(sshd.home, 'ios.bin'), 'utf8')).toBe('image');
    expect(await readFile(path.join(sshd.home, 'app.bin'), 'utf8')).toBe('app');
    expect(await readFile(path.join(uploads, 'R1', 'running.cfg'), 'utf8')).toBe('hostname R1\n');
  });
});
