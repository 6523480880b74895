/** FileServer({ protocol: 'tftp' }) end to end: testbed entry, transfer events, policies, stop. */
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FileServer } from '../../src/file-server.js';
import { Testbed } from '../../src/testbed/testbed.js';
import { OPCODE } from '../../src/tftp/codec.js';
import { TftpClient } from '../../src/tftp/index.js';
import type { TransferEvent } from '../../src/transfer.js';
import { describeWith } from '../helpers/env.js';
import { tmpDir } from '../helpers/tmp.js';
import { RawPeer } from './raw-peer.js';

const run = promisify(execFile);
const fast = { timeoutMs: 300, minTimeoutMs: 150, maxTimeoutMs: 600, retries: 3, dallyMs: 200 };

describe('FileServer with protocol tftp', () => {
  it('registers in the testbed, serves and receives files, and reports each transfer with TFTP details', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'ios.bin'), Buffer.alloc(100_000, 7));
    const testbed = new Testbed();
    const events: TransferEvent[] = [];
    {
      await using server = new FileServer({
        protocol: 'tftp',
        name: 'images',
        root: dir.path,
        address: '127.0.0.1',
        testbed,
        tftp: fast,
      });
      server.on('transfer', (e) => events.push(e));
      const info = await server.start();
      expect(info).toMatchObject({
        protocol: 'tftp',
        address: '127.0.0.1',
        url: `tftp://127.0.0.1:${info.port}/`,
      });
      expect(info).not.toHaveProperty('password');
      expect(testbed.servers.get('images')).toMatchObject({
        protocol: 'tftp',
        address: '127.0.0.1',
        port: info.port,
      });

      const client = new TftpClient({ host: info.address, port: info.port });
      const sink = new PassThrough();
      const chunks: Buffer[] = [];
      sink.on('data', (c) => chunks.push(c));
      await client.get('ios.bin', sink);
      expect(Buffer.concat(chunks).equals(Buffer.alloc(100_000, 7))).toBe(true);
      const uploaded = server.waitForTransfer((e) => e.direction === 'upload');
      await client.put(Buffer.from('hostname r1\n'), 'configs/r1.cfg');
      await uploaded;
      expect(await readFile(path.join(dir.path, 'configs/r1.cfg'), 'utf8')).toBe('hostname r1\n');
      await expect(client.get('missing', new PassThrough())).rejects.toMatchObject({ tftpCode: 1 });
      await expect.poll(() => events.length).toBe(3);
    }
    expect(testbed.servers.has('images')).toBe(false);
    expect(events.map((e) => [e.direction, e.path, e.ok, e.bytes])).toEqual([
      ['download', 'ios.bin', true, 100_000],
      ['upload', 'configs/r1.cfg', true, 12],
      ['download', 'missing', false, 0],
    ]);
    expect(events[0]).toMatchObject({
      protocol: 'tftp',
      server: 'images',
      peer: { address: '127.0.0.1' },
      details: { outcome: 'ok', blksize: 1468, windowsize: 16, negotiatedOptions: { tsize: '100000' } },
    });
    expect(events[2]).toMatchObject({ error: { code: 'ERR_TFTP', tftpCode: 1 }, details: { tftpCode: 1 } });
  });

  it('does not report a UEFI size probe as a transfer', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'boot.efi'), 'efi');
    await using server = await FileServer.start({
      protocol: 'tftp',
      root: dir.path,
      address: '127.0.0.1',
      tftp: fast,
    });
    const events: TransferEvent[] = [];
    server.on('transfer', (e) => events.push(e));
    await using peer = await RawPeer.open();
    peer.send(
      { opcode: OPCODE.RRQ, filename: 'boot.efi', mode: 'octet', options: [['tsize', '0']] },
      server.port,
    );
    const oack = await peer.next();
    peer.send({ opcode: OPCODE.ERROR, code: 8, message: 'probe' }, oack.from.port);
    await new TftpClient({ host: '127.0.0.1', port: server.port }).get(
      'boot.efi',
      new PassThrough().resume(),
    );
    await expect.poll(() => events.length).toBe(1);
    expect(events[0]).toMatchObject({ ok: true, path: 'boot.efi' });
  });

  it('applies readOnly, overwrite: false and maxFileSize, also to a custom handler', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'exists'), 'old');
    const client = async (port: number) => new TftpClient({ host: '127.0.0.1', port, ...fast });
    {
      await using ro = await FileServer.start({
        protocol: 'tftp',
        root: dir.path,
        address: '127.0.0.1',
        readOnly: true,
      });
      await expect((await client(ro.port)).put(Buffer.from('x'), 'new')).rejects.toMatchObject({
        tftpCode: 2,
      });
    }
    {
      const written: string[] = [];
      await using ro = await FileServer.start({
        protocol: 'tftp',
        address: '127.0.0.1',
        writable: false,
        tftp: {
          handler: {
            openRead: () => Buffer.from('dyn'),
            openWrite: () => {
              written.push('!');
              return new PassThrough();
            },
          },
        },
      });
      await expect((await client(ro.port)).put(Buffer.from('x'), 'new')).rejects.toMatchObject({
        tftpCode: 2,
      });
      expect(written).toEqual([]);
    }
    {
      await using keep = await FileServer.start({
        protocol: 'tftp',
        root: dir.path,
        address: '127.0.0.1',
        overwrite: false,
        maxFileSize: 10,
      });
      const c = await client(keep.port);
      await expect(c.put(Buffer.from('new'), 'exists')).rejects.toMatchObject({ tftpCode: 6 });
      await expect(c.put(Buffer.alloc(11), 'big')).rejects.toMatchObject({ tftpCode: 3 });
      await expect(c.put(Buffer.alloc(11), 'big2', { tsize: false })).rejects.toMatchObject({ tftpCode: 3 });
      await c.put(Buffer.alloc(10), 'fits');
    }
    expect((await readdir(dir.path)).sort()).toEqual(['exists', 'fits']);
    expect(await readFile(path.join(dir.path, 'exists'), 'utf8')).toBe('old');
  });

  it('serves dynamic content from tftp.handler', async () => {
    await using server = await FileServer.start({
      protocol: 'tftp',
      address: '127.0.0.1',
      tftp: { handler: { openRead: (req) => Buffer.from(`config for ${req.peer.address}\n`) } },
    });
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c) => chunks.push(c));
    await new TftpClient({ host: '127.0.0.1', port: server.port }).get('router.cfg', sink);
    expect(Buffer.concat(chunks).toString()).toBe('config for 127.0.0.1\n');
  });

  it('refuses unknown tftp options at start with ERR_INVALID_OPTIONS', async () => {
    const server = new FileServer({
      protocol: 'tftp',
      address: '127.0.0.1',
      tftp: { blocksize: 10 } as never,
    });
    await expect(server.start()).rejects.toMatchObject({ code: 'ERR_INVALID_OPTIONS', message: /blocksize/ });
  });

  it('stop() releases the port and every transfer socket', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'f'), Buffer.alloc(50_000));
    const server = await FileServer.start({
      protocol: 'tftp',
      root: dir.path,
      address: '127.0.0.1',
      tftp: fast,
    });
    const port = server.port;
    await using peer = await RawPeer.open();
    peer.send({ opcode: OPCODE.RRQ, filename: 'f', mode: 'octet', options: [] }, port);
    const d1 = await peer.next();
    expect(server.activeTransfers).toBe(1);
    await server.stop({ graceMs: 50 });
    for (const p of [port, d1.from.port]) {
      const socket = dgram.createSocket('udp4');
      socket.bind(p, '127.0.0.1');
      await once(socket, 'listening');
      socket.close();
    }
  });
});

describeWith({ tools: ['curl'] }, 'FileServer tftp with curl', () => {
  it('serves tftp:// URLs from its info', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'hello.txt'), 'hello from tftp\n');
    await using server = await FileServer.start({ protocol: 'tftp', root: dir.path, address: '127.0.0.1' });
    const { stdout } = await run('curl', ['-sS', '--max-time', '10', `${server.url}hello.txt`]);
    expect(stdout).toBe('hello from tftp\n');
  });
});
