import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { startDynamicServers } from '../src/dynamic-servers.js';
import { FileServer } from '../src/file-server.js';
import { Testbed } from '../src/testbed/testbed.js';
import { basicAuth } from './helpers/http.js';
import { tmpDir } from './helpers/tmp.js';

const yaml = `
testbed:
  name: lab
  servers:
    images:
      dynamic: true
      protocol: HTTP
      address: 127.0.0.1
      path: ./images
      port: 0
    uploads:
      dynamic: true
      protocol: http
      address: 127.0.0.1
      custom: { http_auth: false }
    corp-ftp:
      protocol: ftp
      address: 198.18.5.5
      path: /srv/ftp
      credentials:
        default: { username: corp, password: '%ENV{TBFS_TEST_FTP_PW}' }
devices:
  R1:
    os: iosxe
    connections: { cli: { protocol: ssh, ip: 198.18.0.2, port: 22 } }
    credentials: { default: { username: admin, password: secret } }
`;

describe('Testbed files', () => {
  it('loads the pyATS shape from YAML: servers, devices, env substitution, path and credentials', async () => {
    await using dir = await tmpDir();
    const file = path.join(dir.path, 'testbed.yaml');
    await writeFile(file, yaml);
    process.env.TBFS_TEST_FTP_PW = 's3cr3t';
    const testbed = await Testbed.load(file);
    delete process.env.TBFS_TEST_FTP_PW;
    expect(testbed.name).toBe('lab');
    expect(testbed.server('images')).toMatchObject({
      protocol: 'http',
      dynamic: true,
      root: path.join(dir.path, 'images'),
    });
    expect(testbed.server('uploads')).toMatchObject({ auth: false });
    expect(testbed.server('corp-ftp')).toMatchObject({
      protocol: 'ftp',
      root: '/srv/ftp', // a remote server's path stays as written
      username: 'corp',
      password: 's3cr3t',
    });
    expect(testbed.device('R1')).toMatchObject({ os: 'iosxe', connections: { cli: { ip: '198.18.0.2' } } });
  });

  it('loads JSON too, with servers at the top level', () => {
    const testbed = Testbed.parse(
      JSON.stringify({ servers: { a: { protocol: 'tftp', address: '127.0.0.1' } } }),
    );
    expect(testbed.server('a')).toEqual({ protocol: 'tftp', address: '127.0.0.1' });
  });

  it.each([
    ['not YAML', 'testbed: [unclosed', /not valid YAML/],
    ['a list at the top', '- a\n- b', /top level must be a mapping/],
    ['a server that is not a mapping', 'servers: { a: 5 }', /servers\.a must be a mapping/],
    ['a bad port', 'servers: { a: { port: 99999 } }', /servers\.a\.port/],
    ['an unset variable', "servers: { a: { password: '%ENV{TBFS_SURELY_UNSET}' } }", /TBFS_SURELY_UNSET/],
    [
      'a bad device port',
      'devices: { R1: { connections: { cli: { port: -1 } } } }',
      /devices\.R1\.connections\.cli\.port/,
    ],
  ])('refuses %s with ERR_TESTBED_INVALID naming the key', (_what, text, message) => {
    expect(() => Testbed.parse(text, { source: 'tb.yaml' })).toThrow(
      expect.objectContaining({ code: 'ERR_TESTBED_INVALID', message: expect.stringMatching(message) }),
    );
  });

  it('a missing file is ERR_TESTBED_INVALID with the cause', async () => {
    await expect(Testbed.load('/nonexistent/testbed.yaml')).rejects.toMatchObject({
      code: 'ERR_TESTBED_INVALID',
      cause: { code: 'ENOENT' },
    });
  });

  it('an unknown server name lists the names that exist', () => {
    const testbed = new Testbed({ servers: { a: {}, b: {} } });
    expect(() => testbed.server('c')).toThrow(
      expect.objectContaining({ code: 'ERR_SERVER_NOT_FOUND', message: expect.stringContaining('a, b') }),
    );
  });

  it('console.log never shows passwords', () => {
    const testbed = new Testbed({ servers: { a: { username: 'u', password: 'hunter2' } } });
    expect(inspect(testbed, { depth: 5 })).not.toContain('hunter2');
    expect(inspect(testbed, { depth: 5 })).toContain("'***'");
  });
});

describe('Testbed registration', () => {
  it('registers on start, unregisters on stop', async () => {
    const testbed = new Testbed();
    const server = await FileServer.start({
      protocol: 'http',
      name: 'artifacts',
      testbed,
      address: '127.0.0.1',
    });
    const entry = testbed.server('artifacts');
    expect(entry).toEqual({
      protocol: 'http',
      address: '127.0.0.1',
      port: server.port,
      root: server.info.root,
      readOnly: false,
      url: server.url,
      username: server.info.username,
      password: server.info.password,
    });
    await server.stop();
    expect(testbed.servers.has('artifacts')).toBe(false);
  });

  it('restores a user-written entry of the same name on stop, keeping its fields while running', async () => {
    const userEntry = { protocol: 'http', dynamic: true, subnet: '127.0.0.0/8', note: 'mine' };
    const testbed = new Testbed({ servers: { images: userEntry } });
    const server = await FileServer.start({
      protocol: 'http',
      name: 'images',
      testbed,
      address: '127.0.0.1',
    });
    expect(testbed.server('images')).toMatchObject({ note: 'mine', port: server.port });
    await server.stop();
    expect(testbed.server('images')).toBe(userEntry);
  });

  it('two running servers with one name is ERR_NAME_TAKEN, even when both start at once', async () => {
    const testbed = new Testbed();
    const options = { protocol: 'http', name: 'dup', testbed, address: '127.0.0.1' } as const;
    const results = await Promise.allSettled([FileServer.start(options), FileServer.start(options)]);
    const fulfilled = results.filter((r) => r.status === 'fulfilled');
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(fulfilled).toHaveLength(1);
    expect(rejected[0]!.reason).toMatchObject({ code: 'ERR_NAME_TAKEN' });
    await (fulfilled[0] as PromiseFulfilledResult<FileServer>).value.stop();
    expect(testbed.servers.has('dup')).toBe(false);
    // The name is free again.
    await (await FileServer.start(options)).stop();
  });
});

describe('startDynamicServers', () => {
  it('starts every dynamic entry, serves with its credentials, and stops them all on dispose', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'testbed.yaml'), yaml);
    process.env.TBFS_TEST_FTP_PW = 'x';
    const testbed = await Testbed.load(path.join(dir.path, 'testbed.yaml'));
    delete process.env.TBFS_TEST_FTP_PW;
    {
      await using servers = await startDynamicServers(testbed);
      expect([...servers.servers.keys()]).toEqual(['images', 'uploads']);
      const images = testbed.server('images');
      expect(images).toMatchObject({
        protocol: 'http',
        address: '127.0.0.1',
        root: path.join(dir.path, 'images'),
      });
      await writeFile(path.join(dir.path, 'images', 'ios.bin'), 'IOS');
      const res = await fetch(`${images.url}ios.bin`, {
        headers: { authorization: basicAuth(images.username!, images.password!) },
      });
      expect(await res.text()).toBe('IOS');
      const uploads = testbed.server('uploads');
      expect(uploads.password).toBeUndefined();
      expect((await fetch(uploads.url!)).status).toBe(200);
      expect(testbed.server('corp-ftp').dynamic).toBeUndefined(); // static entries are left alone
    }
    expect(testbed.server('images')).toMatchObject({ dynamic: true, port: 0 });
    expect(testbed.server('images').url).toBeUndefined();
  });

  it('stops those already started when one fails, and throws the real cause', async () => {
    const busy = net.createServer().listen(0, '127.0.0.1');
    await once(busy, 'listening');
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const testbed = new Testbed({
        servers: {
          first: { dynamic: true, protocol: 'http', address: '127.0.0.1' },
          second: { dynamic: true, protocol: 'http', address: '127.0.0.1', port },
        },
      });
      await expect(startDynamicServers(testbed)).rejects.toMatchObject({ code: 'ERR_ADDRESS_IN_USE' });
      expect(testbed.server('first')).toEqual({ dynamic: true, protocol: 'http', address: '127.0.0.1' });
      expect(testbed.isRunning('first')).toBe(false);
    } finally {
      busy.close();
    }
  });

  it('a dynamic entry without protocol fails before anything starts, unless a default is given', async () => {
    const testbed = new Testbed({ servers: { a: { dynamic: true, address: '127.0.0.1' } } });
    await expect(startDynamicServers(testbed)).rejects.toMatchObject({
      code: 'ERR_TESTBED_INVALID',
      message: expect.stringContaining('"a" has no protocol'),
    });
    await using servers = await startDynamicServers(testbed, { defaultProtocol: 'http' });
    expect(servers.servers.get('a')?.protocol).toBe('http');
  });
});
