/**
 * The server on real sockets, driven with hand-made packets: the protocol edge cases of
 * tftp-peers.md section 5 (one test each, numbered as there), path safety, uploads, limits and
 * statistics.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { OPCODE, type TftpOptionList } from '../../src/tftp/codec.js';
import { TftpError } from '../../src/tftp/errors.js';
import { TftpClient, TftpServer, type TftpTransferStats } from '../../src/tftp/index.js';
import type { TftpServerOptions } from '../../src/tftp/server.js';
import { expectSameBytes } from '../helpers/bytes.js';
import { tmpDir } from '../helpers/tmp.js';
import { RawPeer } from './raw-peer.js';

// Short timers keep the suite quick; a floor well above loopback round trips keeps it free of spurious retransmissions.
const fast = { timeoutMs: 300, minTimeoutMs: 150, maxTimeoutMs: 600, retries: 3, dallyMs: 300 } as const;

async function serve(options: Partial<TftpServerOptions> = {}) {
  const dir = await tmpDir();
  const server = new TftpServer({ root: dir.path, ...fast, ...options });
  const transfers: TftpTransferStats[] = [];
  server.on('transfer', (t) => transfers.push(t));
  const { port } = await server.start();
  return {
    server,
    port,
    root: dir.path,
    transfers,
    async [Symbol.asyncDispose]() {
      await server.stop({ graceMs: 0 });
      await dir[Symbol.asyncDispose]();
    },
  };
}

const rrq = (filename: string, options: TftpOptionList = [], mode = 'octet') =>
  ({ opcode: OPCODE.RRQ, filename, mode, options }) as const;
const wrq = (filename: string, options: TftpOptionList = [], mode = 'octet') =>
  ({ opcode: OPCODE.WRQ, filename, mode, options }) as const;
const ack = (block: number) => ({ opcode: OPCODE.ACK, block }) as const;
const data = (block: number, bytes: Buffer | string) =>
  ({ opcode: OPCODE.DATA, block, data: Buffer.from(bytes) }) as const;

/** Waits (bounded) until `check` holds. */
async function until(check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Acknowledges the OACK and every DATA until an ERROR comes (bounded), and returns that ERROR. */
async function acknowledgeUntilError(peer: RawPeer): Promise<unknown> {
  for (let i = 0; i < 5000; i++) {
    const { packet, from } = await peer.next();
    if (packet.opcode === OPCODE.ERROR) return packet;
    if (packet.opcode === OPCODE.OACK) peer.send(ack(0), from.port);
    if (packet.opcode === OPCODE.DATA) peer.send(ack(packet.block), from.port);
  }
  throw new Error('no ERROR within 5000 packets');
}

/** Reads a whole file over RRQ in lockstep with a raw peer. */
async function readAll(peer: RawPeer, port: number, filename: string, options: TftpOptionList = []) {
  peer.send(rrq(filename, options), port);
  const chunks: Buffer[] = [];
  let first = await peer.next();
  const tid = first.from.port;
  let blksize = 512;
  if (first.packet.opcode === OPCODE.OACK) {
    blksize = Number(first.packet.options.find(([n]) => n === 'blksize')?.[1] ?? 512);
    peer.send(ack(0), tid);
    first = await peer.next();
  }
  for (let r = first, expected = 1; ; r = await peer.next()) {
    if (r.packet.opcode !== OPCODE.DATA) throw new Error(`expected DATA, got ${JSON.stringify(r.packet)}`);
    if (r.packet.block !== (expected & 0xffff)) continue; // a retransmission we already have
    expected++;
    chunks.push(Buffer.from(r.packet.data));
    peer.send(ack(r.packet.block), tid);
    if (r.packet.data.length < blksize) return Buffer.concat(chunks);
  }
}

describe('TFTP server: edge cases of tftp-peers.md section 5', () => {
  it('1. never resends DATA because an ACK repeats (lockstep), resends on the timer only', async () => {
    await using s = await serve();
    await writeFile(path.join(s.root, 'f'), Buffer.alloc(2000, 1));
    await using peer = await RawPeer.open();
    peer.send(rrq('f'), s.port);
    const d1 = await peer.next();
    expect(d1.packet).toMatchObject({ opcode: OPCODE.DATA, block: 1 });
    peer.send(ack(1), d1.from.port);
    expect((await peer.next()).packet).toMatchObject({ opcode: OPCODE.DATA, block: 2 });
    for (let i = 0; i < 5; i++) peer.send(ack(1), d1.from.port);
    // Within the timeout nothing but the timer's single retransmission of block 2 may come.
    const later = await peer.collect(150);
    expect(later.every((r) => r.packet.opcode === OPCODE.DATA && r.packet.block === 2)).toBe(true);
    expect(later.length).toBeLessThanOrEqual(1);
  });

  it('1. windowed: an ACK of the block before the window resends it at once, once', async () => {
    await using s = await serve({ timeoutMs: 5000, minTimeoutMs: 5000, maxTimeoutMs: 5000 });
    await writeFile(path.join(s.root, 'f'), Buffer.alloc(512 * 20, 1));
    await using peer = await RawPeer.open();
    peer.send(rrq('f', [['windowsize', '4']]), s.port);
    const oack = await peer.next();
    peer.send(ack(0), oack.from.port);
    const first = await peer.collect(100);
    expect(first.map((r) => (r.packet as { block: number }).block)).toEqual([1, 2, 3, 4]);
    peer.send(ack(4), oack.from.port);
    expect((await peer.collect(100)).map((r) => (r.packet as { block: number }).block)).toEqual([5, 6, 7, 8]);
    peer.send(ack(4), oack.from.port); // "block 5 never came"
    peer.send(ack(4), oack.from.port);
    peer.send(ack(4), oack.from.port);
    expect((await peer.collect(150)).map((r) => (r.packet as { block: number }).block)).toEqual([5, 6, 7, 8]);
  });

  it('2. windowed upload: a gap is answered once with the last block in order, then the resent blocks are taken', async () => {
    await using s = await serve({ minTimeoutMs: 2000, maxTimeoutMs: 2000 });
    await using peer = await RawPeer.open();
    peer.send(
      wrq('up', [
        ['windowsize', '4'],
        ['blksize', '8'],
      ]),
      s.port,
    );
    const oack = await peer.next();
    expect(oack.packet).toMatchObject({ opcode: OPCODE.OACK });
    const tid = oack.from.port;
    peer.send(data(1, 'aaaaaaaa'), tid);
    peer.send(data(3, 'cccccccc'), tid);
    peer.send(data(4, 'dddddddd'), tid);
    const answers = await peer.collect(60);
    expect(answers.map((r) => r.packet)).toEqual([{ opcode: OPCODE.ACK, block: 1 }]);
    for (const [b, c] of [
      [2, 'b'],
      [3, 'c'],
      [4, 'd'],
      [5, 'e'],
    ] as const) {
      peer.send(data(b, c.repeat(8)), tid);
    }
    expect((await peer.next()).packet).toEqual({ opcode: OPCODE.ACK, block: 5 });
    peer.send(data(6, 'end'), tid);
    expect((await peer.next()).packet).toEqual({ opcode: OPCODE.ACK, block: 6 });
    expect(await readFile(path.join(s.root, 'up'), 'utf8')).toBe(
      'aaaaaaaabbbbbbbbccccccccddddddddeeeeeeeeend',
    );
  });

  it('3. a stranger gets ERROR 5 sent to it, and the transfer goes on', async () => {
    await using s = await serve();
    const content = randomBytes(1500);
    await writeFile(path.join(s.root, 'f'), content);
    await using peer = await RawPeer.open();
    await using stranger = await RawPeer.open();
    peer.send(rrq('f'), s.port);
    const d1 = await peer.next();
    stranger.send(ack(1), d1.from.port);
    const reply = await stranger.next();
    expect(reply.packet).toMatchObject({ opcode: OPCODE.ERROR, code: 5 });
    expect(reply.from.port).toBe(d1.from.port);
    // A stranger's ERROR is never answered (no ping-pong).
    stranger.send({ opcode: OPCODE.ERROR, code: 5, message: 'who?' }, d1.from.port);
    expect(await stranger.collect(100)).toEqual([]);
    expect(await peer.collect(20)).toEqual([]); // the real peer heard nothing of it
    const chunks = [Buffer.from((d1.packet as { data: Buffer }).data)];
    peer.send(ack(1), d1.from.port);
    for (let block = 2; ; block++) {
      const r = await peer.next();
      const payload = (r.packet as { data: Buffer }).data;
      chunks.push(Buffer.from(payload));
      peer.send(ack(block), d1.from.port);
      if (payload.length < 512) break;
    }
    expectSameBytes(Buffer.concat(chunks), content);
    await until(() => s.transfers.length === 1);
    expect(s.transfers[0]).toMatchObject({ outcome: 'ok', strangers: 2 });
  });

  it('3. each transfer answers from a new port (TID), never the listening one', async () => {
    await using s = await serve();
    await writeFile(path.join(s.root, 'f'), 'x');
    await using a = await RawPeer.open();
    await using b = await RawPeer.open();
    a.send(rrq('f'), s.port);
    b.send(rrq('f'), s.port);
    const [ra, rb] = await Promise.all([a.next(), b.next()]);
    expect(ra.from.port).not.toBe(s.port);
    expect(rb.from.port).not.toBe(s.port);
    expect(ra.from.port).not.toBe(rb.from.port);
  });

  it('5. the OACK holds only the options asked for, in any case, and ignores unknown ones', async () => {
    await using s = await serve();
    await writeFile(path.join(s.root, 'f'), Buffer.alloc(3000));
    await using peer = await RawPeer.open();
    peer.send(
      rrq('f', [
        ['BlkSize', '1024'],
        ['x-colour', 'red'],
        ['TSIZE', '0'],
      ]),
      s.port,
    );
    const r = await peer.next();
    expect(r.packet).toEqual({
      opcode: OPCODE.OACK,
      options: [
        ['BlkSize', '1024'],
        ['TSIZE', '3000'],
      ],
    });
    // Requested in upper case, mode too.
    peer.send(rrq('f', [], 'OCTET'), s.port);
    expect((await peer.next()).packet).toMatchObject({ opcode: OPCODE.DATA, block: 1 });
  });

  it('6. the UEFI size probe: OACK, ERROR 8, then a new RRQ from the same port starts a fresh session', async () => {
    await using s = await serve();
    const content = randomBytes(700);
    await writeFile(path.join(s.root, 'boot.efi'), content);
    await using peer = await RawPeer.open();
    peer.send(rrq('boot.efi', [['tsize', '0']]), s.port);
    const oack = await peer.next();
    expect(oack.packet).toEqual({ opcode: OPCODE.OACK, options: [['tsize', '700']] });
    peer.send({ opcode: OPCODE.ERROR, code: 8, message: 'tsize probe done' }, oack.from.port);
    // At once, from the same port: EDK II does exactly this.
    expectSameBytes(await readAll(peer, s.port, 'boot.efi', [['blksize', '1468']]), content);
    await until(() => s.transfers.length === 2);
    expect(s.transfers.map((t) => t.outcome).sort()).toEqual(['ok', 'probe']);
    expect(s.server.counters).toMatchObject({ probes: 1, transfersOk: 1, transfersFailed: 0 });
    // The probe's session is gone: its port answers with ERROR 5 now, or not at all.
    peer.send(ack(0), oack.from.port);
    const after = await peer.collect(100);
    expect(after.every((r) => r.packet.opcode === OPCODE.ERROR)).toBe(true);
  });

  it('7. tsize: a read gets the real size; a write echoes it, and one over the quota gets ERROR 3 up front', async () => {
    await using s = await serve({ maxFileSize: 1000 });
    await writeFile(path.join(s.root, 'f'), Buffer.alloc(5 * 2 ** 20));
    await using peer = await RawPeer.open();
    peer.send(rrq('f', [['tsize', '0']]), s.port);
    expect((await peer.next()).packet).toEqual({
      opcode: OPCODE.OACK,
      options: [['tsize', String(5 * 2 ** 20)]],
    });
    peer.send(wrq('up', [['tsize', '1000']]), s.port);
    expect((await peer.next()).packet).toEqual({ opcode: OPCODE.OACK, options: [['tsize', '1000']] });
    peer.send(wrq('big', [['tsize', '1001']]), s.port);
    expect((await peer.next()).packet).toMatchObject({ opcode: OPCODE.ERROR, code: 3 });
    expect(await readdir(s.root)).not.toContain('big');
  });

  it('8. blksize: clamped to the maximum, below 8 ignored', async () => {
    await using s = await serve({ maxBlksize: 1468 });
    await writeFile(path.join(s.root, 'f'), Buffer.alloc(5000));
    await using peer = await RawPeer.open();
    peer.send(rrq('f', [['blksize', '65464']]), s.port);
    expect((await peer.next()).packet).toEqual({ opcode: OPCODE.OACK, options: [['blksize', '1468']] });
    peer.send(rrq('f', [['blksize', '7']]), peer.port === 0 ? 0 : s.port);
    const plain = await peer.next();
    expect(plain.packet).toMatchObject({ opcode: OPCODE.DATA, block: 1 });
    expect((plain.packet as { data: Buffer }).data.length).toBe(512);
  });

  it('9. end of file: an empty file is one empty DATA 1; an exact multiple of blksize ends with an empty block', async () => {
    await using s = await serve();
    await writeFile(path.join(s.root, 'empty'), '');
    await writeFile(path.join(s.root, 'exact'), Buffer.alloc(1024, 9));
    await using peer = await RawPeer.open();
    peer.send(rrq('empty'), s.port);
    const d = await peer.next();
    expect(d.packet).toEqual({ opcode: OPCODE.DATA, block: 1, data: Buffer.alloc(0) });
    peer.send(ack(1), d.from.port);
    expect(await readAll(peer, s.port, 'exact')).toEqual(Buffer.alloc(1024, 9));
    await until(() => s.transfers.length === 2);
    const exact = s.transfers.find((t) => t.filename === 'exact')!;
    expect(exact).toMatchObject({ outcome: 'ok', blocks: 3, bytes: 1024 });
  });

  it('9. the receiver of an upload dallies: a repeated final DATA gets its ACK again', async () => {
    await using s = await serve({ dallyMs: 1000 });
    await using peer = await RawPeer.open();
    peer.send(wrq('up'), s.port);
    const ack0 = await peer.next();
    expect(ack0.packet).toEqual({ opcode: OPCODE.ACK, block: 0 });
    peer.send(data(1, 'short'), ack0.from.port);
    expect((await peer.next()).packet).toEqual({ opcode: OPCODE.ACK, block: 1 });
    peer.send(data(1, 'short'), ack0.from.port); // our final ACK "got lost"
    expect((await peer.next()).packet).toEqual({ opcode: OPCODE.ACK, block: 1 });
    expect(await readFile(path.join(s.root, 'up'), 'utf8')).toBe('short');
  });

  it('10. block numbers roll over past 65535 on a read (RFC 1350 is silent; to 0 by default)', async () => {
    await using s = await serve();
    const content = randomBytes(65540 * 8 + 5);
    await writeFile(path.join(s.root, 'big'), content);
    await using peer = await RawPeer.open();
    peer.send(
      rrq('big', [
        ['blksize', '8'],
        ['windowsize', '64'],
      ]),
      s.port,
    );
    const oack = await peer.next();
    const tid = oack.from.port;
    peer.send(ack(0), tid);
    const chunks: Buffer[] = [];
    const wires: number[] = [];
    let abs = 0;
    for (let window = 0; window < 5000; window++) {
      let short = false;
      for (let i = 0; i < 64 && !short; ) {
        const r = await peer.next();
        const p = r.packet as { block: number; data: Buffer };
        if (p.block !== ((abs + 1) & 0xffff)) continue; // a retransmission (tail probe or timer)
        abs++;
        i++;
        if (abs >= 65534 && abs <= 65538) wires.push(p.block);
        chunks.push(Buffer.from(p.data));
        short = p.data.length < 8;
      }
      peer.send(ack(abs & 0xffff), tid);
      if (short) break;
    }
    expect(wires).toEqual([65534, 65535, 0, 1, 2]);
    expectSameBytes(Buffer.concat(chunks), content);
  });

  it("11. a lost ACK 0 is the client's to repeat: no OACK again on the RTO (atftp aborts on one); stale ACKs wait", async () => {
    await using s = await serve(); // RTO 300 ms: the old server repeated the OACK after it
    await writeFile(path.join(s.root, 'f'), 'hello');
    await using peer = await RawPeer.open();
    peer.send(rrq('f', [['blksize', '100']]), s.port);
    const oack = await peer.next();
    expect(oack.packet).toEqual({ opcode: OPCODE.OACK, options: [['blksize', '100']] });
    peer.send(ack(1), oack.from.port); // stale
    expect(await peer.collect(1000)).toEqual([]); // our "lost" ACK 0: the client's timer repeats it
    peer.send(ack(0), oack.from.port);
    expect((await peer.next()).packet).toEqual({ opcode: OPCODE.DATA, block: 1, data: Buffer.from('hello') });
  });

  it('11. a lost OACK: the repeated request gets it again at once, from the same port', async () => {
    await using s = await serve();
    await writeFile(path.join(s.root, 'f'), 'hello');
    await using peer = await RawPeer.open();
    const request = rrq('f', [['blksize', '100']]);
    peer.send(request, s.port);
    const lost = await peer.next();
    peer.send(request, s.port); // as if the OACK never arrived
    const again = await peer.next(200);
    expect(again.packet).toEqual(lost.packet);
    expect(again.from.port).toBe(lost.from.port);
    peer.send(ack(0), again.from.port);
    expect((await peer.next()).packet).toEqual({ opcode: OPCODE.DATA, block: 1, data: Buffer.from('hello') });
    peer.send(ack(1), again.from.port);
    await until(() => s.transfers.length === 1);
    expect(s.transfers[0]).toMatchObject({ outcome: 'ok', retransmits: 1 });
    expect(s.server.counters.duplicateRequests).toBe(1);
  });

  it("11. without any answer the OACK comes again unasked, once the client's own timer (timeout 1) had its turn", async () => {
    await using s = await serve();
    await writeFile(path.join(s.root, 'f'), 'hello');
    await using peer = await RawPeer.open();
    peer.send(rrq('f', [['timeout', '1']]), s.port);
    const oack = await peer.next();
    expect(await peer.collect(1200)).toEqual([]);
    expect((await peer.next(1500)).packet).toEqual(oack.packet);
  });

  it('11. open errors go out as ERROR, never after an OACK', async () => {
    await using s = await serve();
    await using peer = await RawPeer.open();
    peer.send(
      rrq('missing', [
        ['blksize', '1024'],
        ['tsize', '0'],
      ]),
      s.port,
    );
    expect((await peer.next()).packet).toMatchObject({ opcode: OPCODE.ERROR, code: 1 });
    expect(await peer.collect(100)).toEqual([]);
  });

  it('12. netascii: LF goes out as CR LF, CR as CR NUL, across block boundaries, and comes back', async () => {
    await using s = await serve();
    // 511 bytes then LF: the CR ends block 1 and its LF starts block 2.
    const text = `${'a'.repeat(511)}\nline\rtwo\n`;
    await writeFile(path.join(s.root, 't.txt'), text);
    await using peer = await RawPeer.open();
    peer.send(rrq('t.txt', [], 'NetAscii'), s.port);
    const wire: Buffer[] = [];
    for (let block = 1; ; block++) {
      const r = await peer.next();
      const payload = (r.packet as { data: Buffer }).data;
      wire.push(Buffer.from(payload));
      peer.send(ack(block), r.from.port);
      if (payload.length < 512) break;
    }
    expect(wire[0]!.at(-1)).toBe(0x0d);
    expect(wire[1]![0]).toBe(0x0a);
    expect(Buffer.concat(wire).toString('latin1')).toBe(`${'a'.repeat(511)}\r\nline\r\0two\r\n`);
    // Upload the wire form back: it lands as host text.
    peer.send(wrq('back.txt', [], 'netascii'), s.port);
    const a0 = await peer.next();
    const body = Buffer.concat(wire);
    for (let block = 1, at = 0; ; block++, at += 512) {
      peer.send(data(block, body.subarray(at, at + 512)), a0.from.port);
      expect((await peer.next()).packet).toEqual({ opcode: OPCODE.ACK, block });
      if (body.length - at < 512) break;
    }
    expect(await readFile(path.join(s.root, 'back.txt'), 'latin1')).toBe(text);
  });

  it('13. honours a timeout option within 1..255 (echoed exactly) and gives up after the retry budget', async () => {
    await using s = await serve({ retries: 2 });
    await writeFile(path.join(s.root, 'f'), 'x');
    await using peer = await RawPeer.open();
    peer.send(rrq('f', [['timeout', '1']]), s.port);
    const oack = await peer.next();
    expect(oack.packet).toEqual({ opcode: OPCODE.OACK, options: [['timeout', '1']] });
    // Never answer: the OACK comes back after 1 s (not earlier: the peer asked for 1 s), then the transfer ends.
    const t0 = Date.now();
    await peer.next(2500);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    await until(() => s.transfers.length === 1, 10_000);
    expect(s.transfers[0]).toMatchObject({ outcome: 'timeout', error: { code: 'ERR_TFTP_TIMEOUT' } });
    await until(() => s.server.counters.sessionsActive === 0);
  });

  it('13. a session whose handler never answers is closed by the idle timeout', async () => {
    await using s = await serve({ idleTimeoutMs: 200, handler: { openRead: () => new Promise(() => {}) } });
    await using peer = await RawPeer.open();
    peer.send(rrq('stuck'), s.port);
    await until(() => s.transfers.length === 1);
    expect(s.transfers[0]).toMatchObject({ outcome: 'timeout' });
    expect((await peer.next()).packet).toMatchObject({ opcode: OPCODE.ERROR });
    await until(() => s.server.counters.sessionsActive === 0);
  });

  it('13. a stalled stream is ended by the idle timeout even while the peer keeps repeating its ACK', async () => {
    const stalled = new Readable({ read() {} });
    stalled.push(Buffer.alloc(512, 1)); // one block, then nothing ever again
    await using s = await serve({ idleTimeoutMs: 300, handler: { openRead: () => stalled } });
    await using peer = await RawPeer.open();
    peer.send(rrq('slow'), s.port);
    const d1 = await peer.next();
    for (let i = 0; i < 40 && s.transfers.length === 0; i++) {
      peer.send(ack(1), d1.from.port);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(s.transfers[0]).toMatchObject({
      outcome: 'timeout',
      error: { message: expect.stringMatching(/idle/) },
    });
    expect(stalled.destroyed).toBe(true);
  });

  it('14. requests: oversized, malformed, without mode, or in mail mode get ERROR 4; ERRORs get nothing', async () => {
    await using s = await serve();
    await writeFile(path.join(s.root, 'f'), 'x');
    await using peer = await RawPeer.open();
    const cases: Uint8Array[] = [
      Buffer.concat([Buffer.from([0, 1]), Buffer.from(`${'a'.repeat(600)}\0octet\0`)]),
      Buffer.from([0, 1, 0x66]),
      Buffer.from('\x00\x01f\x00', 'latin1'),
      Buffer.from('\x00\x01f\x00mail\x00', 'latin1'),
      Buffer.from('\x00\x01f\x00morse\x00', 'latin1'),
      Buffer.from('\x00\x01\x00octet\x00', 'latin1'),
      Buffer.from([0, 99]),
    ];
    for (const bytes of cases) {
      peer.send(bytes, s.port);
      expect((await peer.next()).packet).toMatchObject({ opcode: OPCODE.ERROR, code: 4 });
    }
    peer.send({ opcode: OPCODE.ERROR, code: 0, message: 'hi' }, s.port);
    peer.send(ack(3), s.port);
    const left = await peer.collect(100);
    expect(left.map((r) => r.packet)).toEqual([expect.objectContaining({ opcode: OPCODE.ERROR, code: 5 })]);
    expect(s.server.counters).toMatchObject({ sessionsActive: 0, sessionsStarted: 0 });
  });

  it('14. a retransmitted request while its transfer runs is ignored (one transfer, one port)', async () => {
    await using s = await serve();
    await writeFile(path.join(s.root, 'f'), Buffer.alloc(2000));
    await using peer = await RawPeer.open();
    peer.send(rrq('f'), s.port);
    peer.send(rrq('f'), s.port);
    peer.send(rrq('f'), s.port);
    const replies = await peer.collect(100);
    expect(new Set(replies.map((r) => r.from.port)).size).toBe(1);
    expect(s.server.counters).toMatchObject({ sessionsStarted: 1, duplicateRequests: 2 });
  });

  it('14. accepts requests up to a configured size', async () => {
    await using s = await serve({ maxRequestSize: 2048 });
    const name = `${'d/'.repeat(300)}f`;
    await mkdir(path.join(s.root, ...'d/'.repeat(300).split('/').filter(Boolean)), { recursive: true });
    await writeFile(path.join(s.root, name), 'deep');
    await using peer = await RawPeer.open();
    expect((await readAll(peer, s.port, name)).toString()).toBe('deep');
  });
});

describe('TFTP server: files, uploads and limits', () => {
  it.each([
    ['../outside', [1, 2]],
    ['../../etc/passwd', [1, 2]],
    ['..\\..\\etc\\passwd', [1, 2]],
    ['sub/../../outside', [1, 2]],
    ['link-out', [1, 2]],
  ])('refuses %s with ERROR %j and never sends a byte of it, nor writes through it', async (name, codes) => {
    await using outer = await tmpDir();
    await using s = await serve();
    await writeFile(path.join(outer.path, 'secret'), 'secret');
    await symlink(path.join(outer.path, 'secret'), path.join(s.root, 'link-out'));
    await using peer = await RawPeer.open();
    peer.send(rrq(name), s.port);
    const r = await peer.next();
    expect(r.packet.opcode).toBe(OPCODE.ERROR);
    expect(codes).toContain((r.packet as { code: number }).code);
    expect(await peer.collect(50)).toEqual([]);
    peer.send(wrq(name), s.port);
    const w = await peer.next();
    if (w.packet.opcode !== OPCODE.ERROR) {
      // Only a name that stays inside the root may be written: the symlink itself is replaced.
      expect(name).toBe('link-out');
      peer.send(data(1, 'uploaded'), w.from.port);
      expect((await peer.next()).packet).toEqual({ opcode: OPCODE.ACK, block: 1 });
      expect(await readFile(path.join(s.root, 'link-out'), 'utf8')).toBe('uploaded');
    }
    expect(await readFile(path.join(outer.path, 'secret'), 'utf8')).toBe('secret');
    expect(await readdir(outer.path)).toEqual(['secret']);
  });

  it('takes a leading slash as the root, never as the file system root', async () => {
    await using s = await serve();
    await writeFile(path.join(s.root, 'f'), 'in root');
    await using peer = await RawPeer.open();
    expect((await readAll(peer, s.port, '/f')).toString()).toBe('in root');
    peer.send(rrq('/etc/hostname'), s.port);
    expect((await peer.next()).packet).toMatchObject({ opcode: OPCODE.ERROR, code: 1 });
  });

  it('uploads land whole or not at all: an aborted upload leaves nothing under the final name', async () => {
    await using s = await serve();
    await writeFile(path.join(s.root, 'cfg'), 'old');
    await using peer = await RawPeer.open();
    peer.send(wrq('cfg'), s.port);
    const a0 = await peer.next();
    peer.send(data(1, Buffer.alloc(512, 1)), a0.from.port);
    await peer.next();
    peer.send({ opcode: OPCODE.ERROR, code: 0, message: 'cancelled' }, a0.from.port);
    await until(() => s.transfers.length === 1);
    await until(() => s.server.counters.sessionsActive === 0);
    expect(s.transfers[0]).toMatchObject({ outcome: 'peer-error' });
    expect(await readdir(s.root)).toEqual(['cfg']);
    expect(await readFile(path.join(s.root, 'cfg'), 'utf8')).toBe('old');
  });

  it('creates folders for uploads, honours overwrite: false (ERROR 6) and writable: false (ERROR 2)', async () => {
    await using s = await serve({ overwrite: false });
    await using peer = await RawPeer.open();
    peer.send(wrq('a/b/new.cfg'), s.port);
    const a0 = await peer.next();
    peer.send(data(1, 'v1'), a0.from.port);
    await peer.next();
    expect(await readFile(path.join(s.root, 'a/b/new.cfg'), 'utf8')).toBe('v1');
    peer.send(wrq('a/b/new.cfg'), s.port);
    expect((await peer.next()).packet).toMatchObject({ opcode: OPCODE.ERROR, code: 6 });
    await using ro = await serve({ writable: false });
    peer.send(wrq('x'), ro.port);
    expect((await peer.next()).packet).toMatchObject({ opcode: OPCODE.ERROR, code: 2 });
  });

  it('maxFileSize without tsize: ERROR 3 once the data passes the limit, and no file', async () => {
    await using s = await serve({ maxFileSize: 1000 });
    await using peer = await RawPeer.open();
    peer.send(wrq('big'), s.port);
    const a0 = await peer.next();
    peer.send(data(1, Buffer.alloc(512)), a0.from.port);
    expect((await peer.next()).packet).toEqual({ opcode: OPCODE.ACK, block: 1 });
    peer.send(data(2, Buffer.alloc(512)), a0.from.port);
    expect((await peer.next()).packet).toMatchObject({ opcode: OPCODE.ERROR, code: 3 });
    await until(() => s.server.counters.sessionsActive === 0);
    expect(await readdir(s.root)).toEqual([]);
  });

  it('limits sessions in total and per peer address', async () => {
    await using s = await serve({ maxSessions: 2, maxSessionsPerPeer: 1 });
    await writeFile(path.join(s.root, 'f'), Buffer.alloc(5000));
    await using a = await RawPeer.open();
    await using b = await RawPeer.open();
    a.send(rrq('f'), s.port);
    expect((await a.next()).packet).toMatchObject({ opcode: OPCODE.DATA });
    b.send(rrq('f'), s.port); // same address 127.0.0.1, another port
    expect((await b.next()).packet).toMatchObject({ opcode: OPCODE.ERROR, code: 0 });
    expect(s.server.counters.refused).toBe(1);
  });

  it('malformed datagrams never crash the server nor leave a session or a timer behind', async () => {
    await using s = await serve();
    await using peer = await RawPeer.open();
    for (let i = 0; i < 200; i++) peer.send(randomBytes(1 + (i % 40)), s.port);
    await peer.collect(100);
    expect(s.server.counters).toMatchObject({ sessionsActive: 0, sessionsStarted: expect.any(Number) });
    await writeFile(path.join(s.root, 'f'), 'still here');
    expect((await readAll(peer, s.port, 'f')).toString()).toBe('still here');
  });

  it('stop() leaves no socket behind, whatever the transfers were doing', async () => {
    // Timers are unref'd and do not show here; sockets do.
    const count = () => ({ sockets: process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length });
    const before = count();
    {
      await using s = await serve({ dallyMs: 60_000, idleTimeoutMs: 60_000 });
      await writeFile(path.join(s.root, 'f'), Buffer.alloc(5000));
      await using peer = await RawPeer.open();
      peer.send(randomBytes(30), s.port); // garbage
      peer.send(rrq('f'), s.port); // a read left hanging mid-transfer
      await peer.next();
      await using uploader = await RawPeer.open();
      uploader.send(wrq('up'), s.port); // an upload that finished and is dallying
      const a0 = await uploader.next();
      uploader.send(data(1, 'x'), a0.from.port);
      await uploader.next();
      expect(count().sockets).toBeGreaterThan(before.sockets);
    }
    await until(() => count().sockets === before.sockets);
  });

  it('serves IPv6', async () => {
    await using s = await serve({ address: '::1' });
    await writeFile(path.join(s.root, 'f'), 'six');
    await using peer = await RawPeer.open('::1');
    peer.send(rrq('f'), s.port, '::1');
    const r = await peer.next();
    expect(r.from.address).toBe('::1');
    expect(r.packet).toMatchObject({ opcode: OPCODE.DATA, data: Buffer.from('six') });
  });

  it('stop() lets a transfer finish within the grace period, ends the rest with ERROR 0', async () => {
    await using s = await serve();
    await writeFile(path.join(s.root, 'f'), Buffer.alloc(5000));
    await using peer = await RawPeer.open();
    peer.send(rrq('f'), s.port);
    const d1 = await peer.next();
    const stopping = s.server.stop({ graceMs: 100 });
    expect(() => s.server.address).toThrow();
    await stopping;
    expect((await peer.next()).packet).toMatchObject({ opcode: OPCODE.ERROR, code: 0 });
    expect(s.transfers[0]).toMatchObject({ outcome: 'aborted' });
    expect(d1.from.port).not.toBe(s.port);
    await s.server.stop(); // idempotent
  });
});

describe('TFTP server: handlers, statistics and hooks', () => {
  it('serves dynamic content from a Buffer, a stream and random access, per client', async () => {
    const big = randomBytes(300_000);
    const requests: string[] = [];
    await using s = await serve({
      handler: {
        openRead(request) {
          requests.push(
            `${request.filename} ${request.peer.address} ${request.mode} ${request.options.blksize ?? '-'}`,
          );
          if (request.filename === 'hello') return Buffer.from(`hello ${request.peer.address}\n`);
          if (request.filename === 'stream') return Readable.from([Buffer.from('one '), Buffer.from('two')]);
          if (request.filename === 'random') {
            return {
              size: big.length,
              read: (position: number, length: number) => big.subarray(position, position + length),
            };
          }
          throw new TftpError('ERR_TFTP', 'no such thing here', { tftpCode: 1 });
        },
      },
    });
    await using peer = await RawPeer.open();
    expect((await readAll(peer, s.port, 'hello')).toString()).toBe('hello 127.0.0.1\n');
    expect((await readAll(peer, s.port, 'stream')).toString()).toBe('one two');
    expectSameBytes(await readAll(peer, s.port, 'random', [['blksize', '1400']]), big);
    await using other = await RawPeer.open();
    other.send(rrq('other'), s.port);
    expect((await other.next()).packet).toEqual({
      opcode: OPCODE.ERROR,
      code: 1,
      message: 'no such thing here',
    });
    expect(requests).toEqual([
      'hello 127.0.0.1 octet -',
      'stream 127.0.0.1 octet -',
      'random 127.0.0.1 octet 1400',
      'other 127.0.0.1 octet -',
    ]);
  });

  it.each([
    {
      name: 'a read that fails while a window goes out',
      read: (position: number, length: number) => {
        if (position > 0) throw new Error('disk gone');
        return Buffer.alloc(length);
      },
    },
    {
      // Read ahead while the first chunk goes out: it must not escape as an unhandled rejection.
      name: 'a read that returns more bytes than asked',
      read: (position: number, length: number) => Buffer.alloc(position === 0 ? length : length + 1),
    },
  ])('answers $name with ERROR 0, which reaches the peer', async ({ read }) => {
    await using s = await serve({ handler: { openRead: () => ({ size: 4 << 20, read }) } });
    await using peer = await RawPeer.open();
    peer.send(
      rrq('flaky', [
        ['blksize', '1468'],
        ['windowsize', '16'],
      ]),
      s.port,
    );
    expect(await acknowledgeUntilError(peer)).toEqual({
      opcode: OPCODE.ERROR,
      code: 0,
      message: 'Read error',
    });
    await until(() => s.transfers.length === 1);
    expect(s.transfers[0]).toMatchObject({ outcome: 'local-error' });
  });

  it('hands uploads to a handler Writable, and maps its errors to TFTP codes', async () => {
    const received: Buffer[] = [];
    await using s = await serve({
      handler: {
        openWrite(request) {
          if (request.filename === 'forbidden') throw Object.assign(new Error('nope'), { code: 'EACCES' });
          return new Writable({
            write(chunk, _e, cb) {
              received.push(chunk);
              cb();
            },
          });
        },
      },
    });
    await using peer = await RawPeer.open();
    peer.send(wrq('x'), s.port);
    const a0 = await peer.next();
    peer.send(data(1, 'dynamic upload'), a0.from.port);
    expect((await peer.next()).packet).toEqual({ opcode: OPCODE.ACK, block: 1 });
    expect(Buffer.concat(received).toString()).toBe('dynamic upload');
    peer.send(wrq('forbidden'), s.port);
    expect((await peer.next()).packet).toMatchObject({ opcode: OPCODE.ERROR, code: 2 });
    peer.send(rrq('x'), s.port); // no openRead: reading is refused
    expect((await peer.next()).packet).toMatchObject({ opcode: OPCODE.ERROR, code: 2 });
  });

  it.each([1, 8])(
    'hands a handler Writable blocks it may keep: each is its own copy (windowsize %i)',
    async (windowsize) => {
      // The transfer socket receives into one reused buffer; a Writable that keeps its chunks
      // without copying them must still end up with every block's own bytes.
      const kept: Buffer[] = [];
      await using s = await serve({
        handler: {
          openWrite: () =>
            new Writable({
              write(chunk, _e, cb) {
                kept.push(chunk);
                cb();
              },
            }),
        },
      });
      const content = randomBytes(300_000);
      const client = new TftpClient({ host: '127.0.0.1', port: s.port, blksize: 1024, windowsize });
      await client.put(content, 'kept.bin');
      expectSameBytes(Buffer.concat(kept), content);
    },
  );

  it('reports each transfer with its stats, keeps counters, and calls the packet hook for every datagram', async () => {
    let packets = 0;
    const starts: string[] = [];
    await using s = await serve({ onPacket: () => packets++ });
    s.server.on('transferstart', (info) => starts.push(`${info.filename} ${info.blksize}`));
    await writeFile(path.join(s.root, 'f'), Buffer.alloc(3000));
    await using peer = await RawPeer.open();
    await readAll(peer, s.port, 'f', [
      ['blksize', '1024'],
      ['tsize', '0'],
    ]);
    await until(() => s.transfers.length === 1);
    expect(s.transfers[0]).toMatchObject({
      id: 1,
      direction: 'read',
      filename: 'f',
      mode: 'octet',
      peer: { address: '127.0.0.1', port: peer.port },
      requestedOptions: { blksize: '1024', tsize: '0' },
      negotiatedOptions: { blksize: '1024', tsize: '3000' },
      blksize: 1024,
      windowsize: 1,
      bytes: 3000,
      blocks: 3,
      outcome: 'ok',
    });
    expect(s.transfers[0]!.durationMs).toBeGreaterThan(0);
    expect(starts).toEqual(['f 1024']);
    // OACK, ACK 0, 3 x (DATA, ACK)
    expect(packets).toBe(8);
    expect(s.server.counters).toMatchObject({ transfersOk: 1, bytesSent: 3000, sessionsActive: 0 });
  });

  it('emits periodic counters when asked', async () => {
    await using s = await serve({ countersIntervalMs: 20 });
    const counters = await new Promise((resolve) => s.server.once('counters', resolve));
    expect(counters).toMatchObject({ requests: 0, sessionsActive: 0 });
  });

  it('validates its options without I/O', () => {
    expect(() => new TftpServer({})).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTIONS' }));
    expect(() => new TftpServer({ root: '.', maxBlksize: 7 })).toThrow(/maxBlksize/);
    expect(() => new TftpServer({ root: '.', address: 'localhost' })).toThrow(/IP address/);
    expect(() => new TftpServer({ root: '.', refuseOptions: ['colour'] })).toThrow(/unknown option/);
    expect(() => new TftpServer({ root: '.', portRange: [10, 5] })).toThrow(/portRange/);
  });

  it('surfaces start failures with their real cause', async () => {
    await using s = await serve();
    const clash = new TftpServer({ root: s.root, port: s.port });
    await expect(clash.start()).rejects.toMatchObject({ code: 'ERR_ADDRESS_IN_USE' });
    await expect(new TftpServer({ root: '/nonexistent/x' }).start()).rejects.toMatchObject({
      code: 'ERR_ROOT_INVALID',
    });
  });

  it('binds transfer sockets inside a port range', async () => {
    await using s = await serve({ portRange: [47000, 47010] });
    await writeFile(path.join(s.root, 'f'), 'x');
    await using peer = await RawPeer.open();
    peer.send(rrq('f'), s.port);
    const port = (await peer.next()).from.port;
    expect(port).toBeGreaterThanOrEqual(47000);
    expect(port).toBeLessThanOrEqual(47010);
  });

  it('feeds a slow Writable with backpressure and still lands every byte', async () => {
    const sink = new PassThrough({ highWaterMark: 1024 });
    const chunks: Buffer[] = [];
    const drained = (async () => {
      for await (const chunk of sink) {
        chunks.push(chunk);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    })();
    await using s = await serve({ handler: { openWrite: () => sink } });
    await using peer = await RawPeer.open();
    peer.send(wrq('x', [['blksize', '1024']]), s.port);
    const oack = await peer.next();
    const content = randomBytes(1024 * 20 + 7);
    for (let block = 1, at = 0; ; block++, at += 1024) {
      peer.send(data(block, content.subarray(at, at + 1024)), oack.from.port);
      expect((await peer.next()).packet).toEqual({ opcode: OPCODE.ACK, block });
      if (content.length - at < 1024) break;
    }
    await drained;
    expectSameBytes(Buffer.concat(chunks), content);
  });
});
