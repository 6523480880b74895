import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileServer } from '../src/file-server.js';
import { ADDRESS_ENV, parseCidr, resolveAddress } from '../src/net/reachable-address.js';
import { formatUrl, urlHost } from '../src/net/url.js';
import { Testbed } from '../src/testbed/testbed.js';
import { describeWith } from './helpers/env.js';
import { createTestHost, type TestHost } from './helpers/netns.js';

describe('resolveAddress without extra interfaces', () => {
  it('takes an explicit address as is, with the reason', async () => {
    expect(await resolveAddress({ address: '127.0.0.1' })).toMatchObject({
      address: '127.0.0.1',
      family: 4,
      source: 'address',
      reason: 'explicit address 127.0.0.1',
      interface: 'lo',
    });
  });

  it('refuses something that is not an IP', async () => {
    await expect(resolveAddress({ address: 'my-laptop' })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTIONS',
    });
    await expect(resolveAddress({ reachableFrom: '10.0.0.300' })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTIONS',
    });
  });

  it('refuses two ways at once', async () => {
    await expect(resolveAddress({ address: '127.0.0.1', subnet: '127.0.0.0/8' })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTIONS',
      message: expect.stringContaining('address, subnet'),
    });
  });

  it('finds the loopback address by subnet (IPv4 and IPv6) and by interface name', async () => {
    expect(await resolveAddress({ subnet: '127.0.0.0/8' })).toMatchObject({
      address: '127.0.0.1',
      source: 'subnet',
    });
    expect(await resolveAddress({ subnet: '127.0.0.1' })).toMatchObject({ address: '127.0.0.1' });
    expect(await resolveAddress({ subnet: '::1/128' })).toMatchObject({ address: '::1', family: 6 });
    expect(await resolveAddress({ interface: 'lo' })).toMatchObject({
      address: '127.0.0.1',
      source: 'interface',
    });
  });

  it.each(['10.0.0.0/33', '10.0.0/8', 'fe80::/129', 'x/8', '10.0.0.0/8/1', '10.0.0.0/-1'])(
    'refuses the malformed subnet %s',
    (cidr) => {
      expect(() => parseCidr(cidr)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTIONS' }));
    },
  );

  it('names the interfaces when the one asked for does not exist', async () => {
    await expect(resolveAddress({ interface: 'nope0' })).rejects.toMatchObject({
      code: 'ERR_NO_REACHABLE_ADDRESS',
      message: expect.stringContaining('lo'),
    });
  });

  it('reachableFrom a loopback peer gives the loopback source; via takes a connection’s local end', async () => {
    expect(await resolveAddress({ reachableFrom: '127.0.0.9' })).toMatchObject({
      address: '127.0.0.1',
      source: 'reachableFrom',
    });
    expect(await resolveAddress({ via: { localAddress: '::ffff:127.0.0.1' } })).toMatchObject({
      address: '127.0.0.1',
      source: 'via',
    });
    await expect(resolveAddress({ via: { localAddress: undefined } })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTIONS',
    });
  });

  it('with nothing given: the environment variable, else the default route, else loopback, with a reason', async () => {
    const previous = process.env[ADDRESS_ENV];
    process.env[ADDRESS_ENV] = '127.0.0.1';
    try {
      expect(await resolveAddress({})).toMatchObject({ address: '127.0.0.1', source: 'environment' });
    } finally {
      if (previous === undefined) delete process.env[ADDRESS_ENV];
      else process.env[ADDRESS_ENV] = previous;
    }
    const fallback = await resolveAddress({});
    expect(fallback.source).toBe('default');
    expect(fallback.reason).toMatch(/^default: /);
    const local = Object.values(os.networkInterfaces())
      .flat()
      .map((i) => i?.address);
    expect(local).toContain(fallback.address);
  });

  it('formats URL hosts for IPv4, IPv6 and scoped IPv6', () => {
    expect(urlHost('198.18.0.1')).toBe('198.18.0.1');
    expect(urlHost('2001:db8::1')).toBe('[2001:db8::1]');
    expect(urlHost('fe80::1%eth0')).toBe('[fe80::1%25eth0]');
    expect(formatUrl('tftp', '::1', 69, 'dir/a b.bin')).toBe('tftp://[::1]:69/dir/a%20b.bin');
  });
});

async function listenIn(host: TestHost, port: number) {
  // A TCP listener inside the namespace stands in for the device's SSH service.
  const child = host.spawn(process.execPath, [
    '-e',
    `require('net').createServer(s => s.on('error', () => {})).listen(${port}, '${host.deviceAddress}', () => console.log('up'))`,
  ]);
  await once(child.stdout!, 'data');
  return child;
}

describeWith({ tools: ['ip', 'curl'], root: true }, 'reachable address with a namespace device', () => {
  it('subnet, interface, reachableFrom and via each choose the veth address', async () => {
    await using host = await createTestHost();
    expect(await resolveAddress({ subnet: host.subnet })).toMatchObject({
      address: host.hostAddress,
      interface: host.hostInterface,
    });
    expect(await resolveAddress({ interface: host.hostInterface })).toMatchObject({
      address: host.hostAddress,
    });
    expect(await resolveAddress({ reachableFrom: host.deviceAddress })).toMatchObject({
      address: host.hostAddress,
    });
    const listener = await listenIn(host, 2222);
    try {
      const socket = net.connect(2222, host.deviceAddress);
      await once(socket, 'connect');
      expect(await resolveAddress({ via: socket })).toMatchObject({
        address: host.hostAddress,
        source: 'via',
      });
      socket.destroy();
    } finally {
      listener.kill();
    }
  });

  it('several host addresses in one subnet is ERR_AMBIGUOUS_ADDRESS listing the candidates', async () => {
    await using a = await createTestHost();
    await using b = await createTestHost();
    const error = await resolveAddress({ subnet: '198.18.0.0/15' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_AMBIGUOUS_ADDRESS' });
    expect((error as Error).message).toContain(a.hostAddress);
    expect((error as Error).message).toContain(b.hostAddress);
  });

  it('curl inside the namespace downloads and uploads through the address chosen by subnet', async () => {
    await using host = await createTestHost();
    const testbed = new Testbed();
    await using server = await FileServer.start({
      protocol: 'http',
      name: 'lab',
      subnet: host.subnet,
      testbed,
    });
    expect(server.info).toMatchObject({ address: host.hostAddress, bindAddress: host.hostAddress });
    expect(testbed.servers.get('lab')).toMatchObject({ address: host.hostAddress, port: server.port });
    const image = randomBytes(2 << 20);
    await writeFile(path.join(server.info.root, 'image.bin'), image);
    const user = `${server.info.username}:${server.info.password}`;
    const down = await host.exec('sh', ['-c', `curl -sS -f -u "${user}" ${server.url}image.bin | sha256sum`]);
    expect(down.code).toBe(0);
    expect(down.stdout.split(' ')[0]).toBe(createHash('sha256').update(image).digest('hex'));
    const uploadEvent = server.waitForTransfer((e) => e.direction === 'upload');
    const cfg = `/tmp/${host.namespace}.cfg`;
    const up = await host.exec('sh', [
      '-c',
      `head -c 100000 /dev/urandom > ${cfg} && curl -sS -f -o /dev/null -u "${user}" -T ${cfg} ${server.url}R1.cfg && sha256sum ${cfg}; rm -f ${cfg}`,
    ]);
    expect(up.code).toBe(0);
    const uploaded = await readFile(path.join(server.info.root, 'R1.cfg'));
    expect(createHash('sha256').update(uploaded).digest('hex')).toBe(up.stdout.trim().split(/\s+/)[0]);
    expect(await uploadEvent).toMatchObject({
      ok: true,
      bytes: 100000,
      peer: { address: host.deviceAddress },
    });
  });

  it('reachableFrom a device address and via its connection serve the device', async () => {
    await using host = await createTestHost();
    await using server = await FileServer.start({
      protocol: 'http',
      reachableFrom: host.deviceAddress,
      auth: false,
    });
    expect(server.address).toBe(host.hostAddress);
    expect(server.info.addressReason).toContain(host.deviceAddress);
    await writeFile(path.join(server.info.root, 'ok.txt'), 'ok');
    const res = await host.exec('curl', ['-sS', '-f', `${server.url}ok.txt`]);
    expect(res.stdout).toBe('ok');
  });

  it('advertise keeps the bind address apart from what devices are told', async () => {
    await using host = await createTestHost();
    await using server = await FileServer.start({
      protocol: 'http',
      address: host.hostAddress,
      advertise: { address: '198.19.1.1', port: 8080 },
      auth: false,
    });
    expect(server.info).toMatchObject({
      address: '198.19.1.1',
      port: 8080,
      bindAddress: host.hostAddress,
      url: 'http://198.19.1.1:8080/',
    });
    const res = await host.exec('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `http://${host.hostAddress}:${server.info.bindPort}/`,
    ]);
    expect(res.stdout).toBe('200');
  });
});
