/**
 * The native datagram path (src/native/udp.c): built at install, loaded on Linux; what it sends in
 * one call arrives as separate datagrams, in order, byte for byte; its receive watcher delivers
 * every datagram with its sender, frees the port on close, lets the process exit when unref'd and
 * never swallows an exception; an armed reply answers exactly its ACK, once. (Every other TFTP
 * test runs on it too; dgram-path.test.ts runs transfers without it.)
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { constants } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { nativeUdp } from '../../src/tftp/native.js';
import { type RemoteInfo, segmentRun, UdpSocket } from '../../src/tftp/transport.js';
import { inCI } from '../helpers/env.js';

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const socket of open.splice(0)) socket.close();
});

/** A plain dgram socket that collects what it receives. */
async function receiver(address: string) {
  const socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  open.push(socket);
  const received: Buffer[] = [];
  socket.on('message', (m) => received.push(m));
  socket.bind(0, address);
  await once(socket, 'listening');
  return {
    port: socket.address().port,
    received,
    /** Resolves once `n` datagrams are in (bounded: 5 s). */
    async take(n: number): Promise<Buffer[]> {
      const deadline = Date.now() + 5000;
      while (received.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      return received;
    },
  };
}

const packets = (lengths: number[]) => lengths.map((n) => randomBytes(n));

describe('segmentRun: which datagrams one segmented send carries', () => {
  it('takes equal sizes up to the kernel limit of 64 segments', () => {
    expect(segmentRun(Array(100).fill(516), 0, 100)).toBe(64);
    expect(segmentRun(Array(100).fill(516), 64, 100)).toBe(36);
  });

  it('ends a run after a shorter datagram (the end of the file) and before a longer one', () => {
    expect(segmentRun([1472, 1472, 100, 1472], 0, 4)).toBe(3);
    expect(segmentRun([100, 1472], 0, 2)).toBe(1);
  });

  it('keeps a run within one datagram of payload (65507 bytes)', () => {
    expect(segmentRun(Array(16).fill(8196), 0, 16)).toBe(7);
    expect(segmentRun(Array(16).fill(65468), 0, 16)).toBe(1);
  });
});

describe.skipIf(!nativeUdp && !inCI)('the native datagram path', () => {
  it('is built and loaded on Linux (CI has a compiler and Node headers)', () => {
    expect(process.platform).toBe('linux');
    expect(nativeUdp?.sendBatch).toBeTypeOf('function');
  });

  it.each(['127.0.0.1', '::1'])('one call sends a window as separate datagrams over %s', async (address) => {
    const to = await receiver(address);
    const sender = await UdpSocket.bind(address, 0);
    open.push(sender);
    const fd = sender.descriptorForTest();
    expect(fd).toBeGreaterThan(2);
    const window = packets([...Array(15).fill(1472), 300]);
    const lengths = window.map((p) => p.length);
    const sent = nativeUdp!.sendBatch(fd!, address, to.port, 1472, window, lengths, 0, window.length);
    expect(sent).toBe(15 * 1472 + 300);
    expect(await to.take(16)).toEqual(window);
  });

  it('refuses what is not an IP literal or a batch, and reports a bad descriptor as -EBADF', () => {
    const one = [Buffer.alloc(4)];
    expect(() => nativeUdp!.sendBatch(3, 'localhost', 69, 0, one, [4], 0, 1)).toThrow(TypeError);
    expect(() => nativeUdp!.sendBatch(3, '127.0.0.1', 69, 0, one, [4], 0, 2)).toThrow(TypeError);
    expect(() => nativeUdp!.sendBatch(3, '127.0.0.1', 69, 0, one, [5], 0, 1)).toThrow(TypeError);
    expect(() => nativeUdp!.sendBatch(3, '127.0.0.1', 69, 65536, one, [4], 0, 1)).toThrow(TypeError);
    expect(() => nativeUdp!.sendBatch(3, '127.0.0.1', 69, 0, one, [4], 1, 1)).toThrow(TypeError);
    expect(nativeUdp!.sendBatch(-1, '127.0.0.1', 69, 0, one, [4], 0, 1)).toBe(-constants.errno.EBADF);
  });
});

describe('UdpSocket.sendMany', () => {
  it.each([
    { name: 'a window of 1468-byte blocks with a short last one', lengths: [...Array(40).fill(1472), 17] },
    { name: 'more than 64 datagrams', lengths: Array(150).fill(516) },
    { name: 'blocks whose run would pass 64 KiB', lengths: Array(20).fill(8196) },
    { name: 'mixed sizes', lengths: [516, 1472, 1472, 4, 65468, 65468, 1000, 1000, 1000] },
  ])('delivers $name in order, byte for byte', async ({ lengths }) => {
    const to = await receiver('127.0.0.1');
    const socket = await UdpSocket.bind('127.0.0.1', 0, { bufferBytes: 4 * 2 ** 20 });
    open.push(socket);
    // Each buffer is larger than what is sent from it: only `length` bytes may leave.
    const buffers = packets(lengths.map((n) => n + 7));
    socket.sendMany(buffers, lengths, lengths.length, to.port, '127.0.0.1');
    const received = await to.take(lengths.length);
    expect(received.map((m) => m.length)).toEqual(lengths);
    expect(received).toEqual(buffers.map((b, i) => b.subarray(0, lengths[i])));
  });
});

/** A UdpSocket that collects what it receives, with the sender and the `answered` flag. */
async function watched(address: string) {
  const socket = await UdpSocket.bind(address, 0);
  open.push(socket);
  const received: Array<{ message: Buffer; remote: RemoteInfo; answered: boolean }> = [];
  socket.onMessage = (message, remote, answered) =>
    received.push({ message, remote, answered: answered === true });
  return {
    socket,
    received,
    async take(n: number) {
      const deadline = Date.now() + 5000;
      while (received.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      return received;
    },
  };
}

/** Runs `script` (an ES module using the test build's UdpSocket as `UdpSocket`) in a child Node. */
function runChild(script: string) {
  const transport = path.join(inject('distDir'), 'tftp', 'transport.js');
  const source = `import { UdpSocket } from ${JSON.stringify(transport)};\n${script}`;
  return promisify(execFile)(process.execPath, ['--input-type=module', '-e', source], {
    timeout: 10_000,
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code?: number; killed?: boolean; stdout: string; stderr: string }) => ({
      code: error.killed ? 'timeout' : error.code,
      stdout: error.stdout,
      stderr: error.stderr,
    }),
  );
}

const ackOf = (block: number) => Buffer.from([0, 4, block >> 8, block & 0xff]);

describe.skipIf(!nativeUdp && !inCI)('the native receive watcher', () => {
  it.each(['127.0.0.1', '::1'])(
    'delivers every datagram whole, in order, with its sender (%s)',
    async (address) => {
      const to = await watched(address);
      const from = await receiver(address); // a node:dgram socket as the sender
      const socket = open.at(-1) as dgram.Socket;
      const sizes = [0, 1, 4, 516, 1472, 65_000, 9000, 3];
      const sent = packets(sizes);
      for (const datagram of sent) socket.send(datagram, to.socket.local.port, address);
      const received = await to.take(sizes.length);
      expect(received.map((r) => r.message)).toEqual(sent);
      expect(received[0]!.remote).toEqual({
        address,
        port: from.port,
        family: address.includes(':') ? 'IPv6' : 'IPv4',
        size: 0,
      });
      expect(received.map((r) => r.remote.size)).toEqual(sizes);
      expect(received.every((r) => !r.answered)).toBe(true);
    },
  );

  it('receives into one reused buffer when the socket is transient, each datagram whole during its call', async () => {
    const to = await UdpSocket.bind('127.0.0.1', 0, { transient: true });
    open.push(to);
    const seen: Array<{ memory: ArrayBufferLike; bytes: Buffer; size: number }> = [];
    to.onMessage = (message, remote) =>
      seen.push({ memory: message.buffer, bytes: Buffer.from(message), size: remote.size });
    const sent = packets([516, 4, 1472, 65_000, 9]);
    for (const datagram of sent) to.send(datagram, datagram.length, to.local.port, '127.0.0.1');
    const deadline = Date.now() + 5000;
    while (seen.length < sent.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(seen.map((s) => s.bytes)).toEqual(sent);
    expect(seen.map((s) => s.size)).toEqual(sent.map((p) => p.length));
    expect(new Set(seen.map((s) => s.memory)).size).toBe(1);
  });

  it('frees the port as the socket closes (a server can bind it again at once)', async () => {
    const first = await UdpSocket.bind('127.0.0.1', 0);
    const port = first.local.port;
    first.close();
    const again = await UdpSocket.bind('127.0.0.1', port);
    open.push(again);
    expect(again.local.port).toBe(port);
  });

  it('lets the process exit once unref() is called, and keeps it alive before', async () => {
    const bind = "const s = await UdpSocket.bind('127.0.0.1', 0);";
    expect((await runChild(`${bind} s.unref(); console.log('bound');`)).code).toBe(0);
    const alive = await runChild(`${bind} setTimeout(() => { console.log('still here'); s.close(); }, 300);`);
    expect(alive).toMatchObject({ code: 0, stdout: 'still here\n' });
  });

  it('surfaces an exception thrown by the handler as an uncaught exception', async () => {
    const child = await runChild(`
      const s = await UdpSocket.bind('127.0.0.1', 0);
      s.onMessage = () => { throw new Error('handler failed on purpose'); };
      s.send(Buffer.from('x'), 1, s.local.port, '127.0.0.1');
      setTimeout(() => process.exit(3), 5000);`);
    expect(child.code).toBe(1);
    expect(child.stderr).toContain('handler failed on purpose');
  });

  it('runs the promise callbacks the handler queued (microtasks drain after each batch)', async () => {
    const to = await watched('127.0.0.1');
    const order: string[] = [];
    to.socket.onMessage = (message) => {
      order.push(`message ${message[0]}`);
      Promise.resolve().then(() => order.push(`then ${message[0]}`));
    };
    to.socket.send(Buffer.from([1]), 1, to.socket.local.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 50));
    expect(order).toEqual(['message 1', 'then 1']);
  });
});

describe.skipIf(!nativeUdp && !inCI)('an armed reply', () => {
  async function armed() {
    const server = await watched('127.0.0.1');
    const peer = await watched('127.0.0.1');
    const reply = Buffer.from('\x00\x03\x00\x08next block and some bytes that must not leave');
    const length = 20;
    expect(server.socket.armReply(7, reply, length, peer.socket.local.port, '127.0.0.1')).toBe(true);
    return { server, peer, reply: reply.subarray(0, length) };
  }
  const settle = () => new Promise((r) => setTimeout(r, 50));

  it('answers the ACK it waits for from its peer, before the handler runs, once', async () => {
    const { server, peer, reply } = await armed();
    const port = server.socket.local.port;
    peer.socket.send(ackOf(7), 4, port, '127.0.0.1');
    peer.socket.send(ackOf(7), 4, port, '127.0.0.1'); // one-shot: the second is not answered
    const got = await server.take(2);
    expect(got.map((r) => r.answered)).toEqual([true, false]);
    expect((await peer.take(1)).map((r) => r.message)).toEqual([reply]);
    await settle();
    expect(peer.received).toHaveLength(1);
  });

  it('ignores another block, another opcode, a longer datagram and a stranger', async () => {
    const { server, peer } = await armed();
    const stranger = await watched('127.0.0.1');
    const port = server.socket.local.port;
    peer.socket.send(ackOf(6), 4, port, '127.0.0.1');
    peer.socket.send(Buffer.from([0, 3, 0, 7]), 4, port, '127.0.0.1');
    peer.socket.send(Buffer.concat([ackOf(7), Buffer.from([0])]), 5, port, '127.0.0.1');
    stranger.socket.send(ackOf(7), 4, port, '127.0.0.1');
    expect((await server.take(4)).map((r) => r.answered)).toEqual([false, false, false, false]);
    await settle();
    expect(peer.received).toEqual([]);
    expect(stranger.received).toEqual([]);
    // Still armed for the real one.
    peer.socket.send(ackOf(7), 4, port, '127.0.0.1');
    expect((await server.take(5))[4]!.answered).toBe(true);
  });

  it('is withdrawn by disarmReply and by close', async () => {
    const { server, peer } = await armed();
    server.socket.disarmReply();
    peer.socket.send(ackOf(7), 4, server.socket.local.port, '127.0.0.1');
    expect((await server.take(1))[0]!.answered).toBe(false);
    server.socket.close();
    expect(server.socket.armReply(7, Buffer.alloc(4), 4, peer.socket.local.port, '127.0.0.1')).toBe(false);
  });

  it('refuses bad arguments with a TypeError', async () => {
    const { socket: server } = await watched('127.0.0.1');
    const packet = Buffer.alloc(4);
    expect(() => server.armReply(65536, packet, 4, 69, '127.0.0.1')).toThrow(TypeError);
    expect(() => server.armReply(1, packet, 5, 69, '127.0.0.1')).toThrow(TypeError);
    expect(() => server.armReply(1, packet, 4, 70000, '127.0.0.1')).toThrow(TypeError);
    expect(server.armReply(1, packet, 4, 69, 'localhost')).toBe(false); // not an IP literal
    const native = nativeUdp!;
    expect(() => native.watch(-1, () => {})).toThrow(TypeError);
    expect(() => native.watch(0, 'not a function' as never)).toThrow(TypeError);
    expect(() => native.watch(0, () => {}, Buffer.alloc(1024))).toThrow(TypeError); // under 64 KiB
    for (const call of [native.unwatch, native.disarm]) {
      expect(() => call({} as never)).toThrow(/takes a handle from watch/);
    }
    expect(() => native.refWatch({} as never, false)).toThrow(TypeError);
  });
});
