/**
 * SshDevice logins and connection handling against an ssh2 server playing the device: password,
 * keyboard-interactive only, a key; refused logins, a wrong host key, a device that goes away.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { SshDevice } from '../../src/copy/ssh-device.js';
import { Testbed } from '../../src/testbed/testbed.js';
import { startSimulatedDevice, usableKeyPair } from '../helpers/cisco-sim.js';

describe('SshDevice', () => {
  it('logs in with keyboard-interactive when that is all the device offers', async () => {
    await using sim = await startSimulatedDevice({ os: 'iosxe', login: 'keyboard-interactive' });
    await using device = await new SshDevice({
      os: 'iosxe',
      host: sim.address,
      port: sim.port,
      username: sim.username,
      password: sim.password,
    }).connect();
    expect(device.connected).toBe(true);
    expect(sim.commands).toEqual(['terminal length 0', 'terminal width 511']);
  });

  it('logs in with a private key and no password', async () => {
    const key = usableKeyPair();
    await using sim = await startSimulatedDevice({ os: 'nxos', login: { publicKey: key.public } });
    await using device = await new SshDevice({
      os: 'nxos',
      host: sim.address,
      port: sim.port,
      username: sim.username,
      privateKey: key.private,
    }).connect();
    expect(await device.execute('terminal length 0')).toBe('');
  });

  it('refuses wrong credentials, a host key that is not the expected one, and a closed port, as ERR_DEVICE_CONNECTION', async () => {
    await using sim = await startSimulatedDevice({ os: 'iosxe' });
    const base = { os: 'iosxe', host: sim.address, port: sim.port, username: sim.username };
    await expect(new SshDevice({ ...base, password: 'Wrong-9' }).connect()).rejects.toMatchObject({
      code: 'ERR_DEVICE_CONNECTION',
      message: expect.stringMatching(/authentication failed/),
    });
    const other = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    await expect(
      new SshDevice({ ...base, password: sim.password, hostKeyFingerprint: other }).connect(),
    ).rejects.toMatchObject({
      code: 'ERR_DEVICE_CONNECTION',
      message: expect.stringContaining(`host key ${sim.fingerprint} is not the expected ${other}`),
    });
    const closed = net.createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => closed.once('listening', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    closed.close();
    await expect(new SshDevice({ ...base, port, password: 'x' }).connect()).rejects.toMatchObject({
      code: 'ERR_DEVICE_CONNECTION',
      message: expect.stringMatching(/ECONNREFUSED/),
    });
  });

  it('reconnects on the next command after the device dropped the connection', async () => {
    await using sim = await startSimulatedDevice({ os: 'iosxe' });
    await using device = await new SshDevice({
      os: 'iosxe',
      host: sim.address,
      port: sim.port,
      username: sim.username,
      password: sim.password,
    }).connect();
    sim.dropConnections();
    for (let i = 0; i < 50 && device.connected; i++) await new Promise((r) => setTimeout(r, 20));
    expect(device.connected).toBe(false);
    expect(await device.execute('terminal length 0')).toBe('');
    expect(device.connected).toBe(true);
    expect(sim.commands.filter((c) => c === 'terminal length 0')).toHaveLength(3);
  });

  it('takes address, port and credentials from the testbed, and says what is missing', () => {
    const testbed = new Testbed({
      devices: {
        R1: {
          os: 'iosxe',
          connections: {
            cli: { protocol: 'ssh', ip: '198.18.0.2', port: 2022 },
            console: { protocol: 'telnet', ip: '198.18.0.3' },
          },
          credentials: { default: { username: 'admin', password: 'pw' }, enable: { password: 'en' } },
        },
        R2: { os: 'nxos', connections: { cli: { protocol: 'ssh', ip: '198.18.0.4' } } },
        R3: { os: 'nxos' },
      },
    });
    const r1 = SshDevice.fromTestbed(testbed, 'R1');
    expect([r1.name, r1.os, r1.testbed, r1.localAddress]).toEqual(['R1', 'iosxe', testbed, undefined]);
    expect(() => SshDevice.fromTestbed(testbed, 'R1', { connection: 'console' })).toThrow(
      /is telnet, not ssh/,
    );
    expect(() => SshDevice.fromTestbed(testbed, 'R2')).toThrow(/no username/);
    expect(SshDevice.fromTestbed(testbed, 'R2', { username: 'u', password: 'p' }).os).toBe('nxos');
    expect(() => SshDevice.fromTestbed(testbed, 'R3')).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_OPTIONS',
        details: { device: 'R3', missing: 'connection' },
      }),
    );
    expect(() => SshDevice.fromTestbed(testbed, 'R9')).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTIONS' }),
    );
  });
});
