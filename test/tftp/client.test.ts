/**
 * The client against our server and against scripted servers (raw packets) that refuse, ignore
 * or bend the options, answer from two ports, lie about tsize, or go silent.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { OPCODE, type RequestPacket } from '../../src/tftp/codec.js';
import { TftpClient, type TftpProgress, TftpServer } from '../../src/tftp/index.js';
import { expectSameBytes } from '../helpers/bytes.js';
import { tmpDir } from '../helpers/tmp.js';
import { RawPeer } from './raw-peer.js';

const fast = { timeoutMs: 300, minTimeoutMs: 150, maxTimeoutMs: 600, retries: 3 } as const;

async function serve() {
  const dir = await tmpDir();
  const server = new TftpServer({ root: dir.path, ...fast, dallyMs: 200 });
  const { port } = await server.start();
  return {
    server,
    port,
    root: dir.path,
    async [Symbol.asyncDispose]() {
      await server.stop({ graceMs: 0 });
      await dir[Symbol.asyncDispose]();
    },
  };
}

async function collect(stream: PassThrough): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('TFTP client against our server', () => {
  it('gets and puts paths, streams and Buffers byte-exact, with stats and progress', async () => {
    await using s = await serve();
    await using local = await tmpDir();
    const content = randomBytes(1_000_003);
    await writeFile(path.join(s.root, 'image.bin'), content);
    const client = new TftpClient({ host: '127.0.0.1', port: s.port, ...fast });
    const progress: TftpProgress[] = [];
    const stats = await client.get('image.bin', path.join(local.path, 'image.bin'), {
      onProgress: (p) => progress.push(p),
    });
    expectSameBytes(await readFile(path.join(local.path, 'image.bin')), content);
    expect(stats).toMatchObject({
      direction: 'read',
      outcome: 'ok',
      bytes: content.length,
      blksize: 1468,
      windowsize: 16,
      negotiatedOptions: { blksize: '1468', windowsize: '16', tsize: String(content.length) },
    });
    expect(progress.at(-1)).toEqual({
      direction: 'read',
      filename: 'image.bin',
      bytes: content.length,
      total: content.length,
    });
    expect(progress.length).toBe(stats.blocks);

    const sink = new PassThrough();
    const [, streamed] = await Promise.all([
      client.get('image.bin', sink, { blksize: 65464, windowsize: 4 }),
      collect(sink),
    ]);
    expectSameBytes(streamed, content);

    await client.put(path.join(local.path, 'image.bin'), 'up/from-path.bin');
    await client.put(content, 'up/from-buffer.bin', { blksize: 512, windowsize: 1 });
    await client.put(Readable.from([content.subarray(0, 10), content.subarray(10)]), 'up/from-stream.bin');
    for (const name of ['from-path.bin', 'from-buffer.bin', 'from-stream.bin']) {
      expectSameBytes(await readFile(path.join(s.root, 'up', name)), content);
    }
  });

  it('handles the empty file, exact multiples of blksize and more than 65536 blocks (rollover), both ways', async () => {
    await using s = await serve();
    const client = new TftpClient({ host: '127.0.0.1', port: s.port, ...fast, blksize: 16, windowsize: 32 });
    const cases = {
      empty: Buffer.alloc(0),
      exact: randomBytes(16 * 100),
      rollover: randomBytes(16 * 65_600 + 3),
    };
    for (const [name, content] of Object.entries(cases)) {
      await client.put(content, name);
      expectSameBytes(await readFile(path.join(s.root, name)), content);
      const sink = new PassThrough();
      const [stats, got] = await Promise.all([client.get(name, sink), collect(sink)]);
      expectSameBytes(got, content);
      expect(stats.blocks).toBe(Math.floor(content.length / 16) + 1);
    }
  });

  it('transfers text in netascii mode', async () => {
    await using s = await serve();
    await writeFile(path.join(s.root, 'motd'), 'line one\nline two\r\n');
    const client = new TftpClient({ host: '127.0.0.1', port: s.port, ...fast, mode: 'netascii' });
    const sink = new PassThrough();
    const [, text] = await Promise.all([client.get('motd', sink), collect(sink)]);
    expect(text.toString()).toBe('line one\nline two\r\n');
    await client.put(Buffer.from('a\nb\n'), 'back.txt');
    expect(await readFile(path.join(s.root, 'back.txt'), 'utf8')).toBe('a\nb\n');
  });

  it('works over IPv6', async () => {
    await using dir = await tmpDir();
    await using server = new TftpServer({ root: dir.path, address: '::1' });
    const { port } = await server.start();
    await writeFile(path.join(dir.path, 'v6'), 'ok');
    const sink = new PassThrough();
    const [, got] = await Promise.all([
      new TftpClient({ host: '[::1]', port }).get('v6', sink),
      collect(sink),
    ]);
    expect(got.toString()).toBe('ok');
  });

  it('rejects with the server ERROR as a TftpError and leaves no local file', async () => {
    await using s = await serve();
    await using local = await tmpDir();
    const client = new TftpClient({ host: '127.0.0.1', port: s.port, ...fast });
    await expect(client.get('missing.bin', path.join(local.path, 'out.bin'))).rejects.toMatchObject({
      name: 'TftpError',
      code: 'ERR_TFTP',
      tftpCode: 1,
    });
    expect(await readdir(local.path)).toEqual([]);
  });

  it('aborts on a signal: the server hears ERROR 0, the call rejects with the reason, nothing is left', async () => {
    await using dir = await tmpDir();
    await using local = await tmpDir();
    let release!: () => void;
    const endless = new Readable({ read() {} });
    await using server = new TftpServer({
      root: dir.path,
      handler: {
        openRead() {
          endless.push(Buffer.alloc(10_000));
          return endless;
        },
      },
    });
    const transfers: string[] = [];
    server.on('transfer', (t) => {
      transfers.push(`${t.outcome} ${t.error?.message}`);
      release?.();
    });
    const { port } = await server.start();
    const controller = new AbortController();
    const client = new TftpClient({ host: '127.0.0.1', port });
    const pending = client.get('x', path.join(local.path, 'partial'), {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.bytes > 5000) controller.abort(new Error('user gave up'));
      },
    });
    await expect(pending).rejects.toThrow('user gave up');
    await new Promise<void>((resolve) => {
      release = resolve;
      if (transfers.length > 0) resolve();
    });
    expect(transfers[0]).toMatch(/peer-error .*aborted by the client/);
    expect(await readdir(local.path)).toEqual([]);
  });
});

describe('TFTP client against scripted servers', () => {
  it('retries without options after ERROR 8 (RFC 2347)', async () => {
    await using script = await RawPeer.open();
    const client = new TftpClient({ host: '127.0.0.1', port: script.port, ...fast });
    const sink = new PassThrough();
    const result = Promise.all([client.get('f', sink), collect(sink)]);
    const first = await script.next();
    expect((first.packet as RequestPacket).options.length).toBeGreaterThan(0);
    script.send({ opcode: OPCODE.ERROR, code: 8, message: 'no options here' }, first.from.port);
    const second = await script.next();
    expect(second.packet).toEqual({ opcode: OPCODE.RRQ, filename: 'f', mode: 'octet', options: [] });
    expect(second.from.port).toBe(first.from.port);
    script.send({ opcode: OPCODE.DATA, block: 1, data: Buffer.from('plain') }, second.from.port);
    const [stats, got] = await result;
    expect(got.toString()).toBe('plain');
    expect(stats).toMatchObject({ blksize: 512, windowsize: 1, negotiatedOptions: {}, requestedOptions: {} });
  });

  it('falls back to RFC 1350 when the server ignores the options (DATA 1 or ACK 0 instead of an OACK)', async () => {
    await using script = await RawPeer.open();
    const client = new TftpClient({ host: '127.0.0.1', port: script.port, ...fast });
    const sink = new PassThrough();
    const got = Promise.all([client.get('f', sink), collect(sink)]);
    const rrq = await script.next();
    script.send({ opcode: OPCODE.DATA, block: 1, data: Buffer.alloc(512, 1) }, rrq.from.port);
    expect((await script.next()).packet).toEqual({ opcode: OPCODE.ACK, block: 1 });
    script.send({ opcode: OPCODE.DATA, block: 2, data: Buffer.from('end') }, rrq.from.port);
    expect((await script.next()).packet).toEqual({ opcode: OPCODE.ACK, block: 2 });
    expect((await got)[1].length).toBe(515);

    const put = client.put(Buffer.alloc(600, 2), 'up');
    const wrq = await script.next();
    script.send({ opcode: OPCODE.ACK, block: 0 }, wrq.from.port);
    const d1 = await script.next();
    expect(d1.packet).toMatchObject({ opcode: OPCODE.DATA, block: 1 });
    expect((d1.packet as { data: Buffer }).data.length).toBe(512);
    script.send({ opcode: OPCODE.ACK, block: 1 }, wrq.from.port);
    expect((await script.next()).packet).toMatchObject({ opcode: OPCODE.DATA, block: 2 });
    script.send({ opcode: OPCODE.ACK, block: 2 }, wrq.from.port);
    expect(await put).toMatchObject({ outcome: 'ok', blksize: 512 });
  });

  it.each([
    ['a blksize larger than asked', [['blksize', '9000']]],
    ['an option never asked for', [['rollover', '0']]],
    ['a timeout other than asked', [['timeout', '9']]],
  ])(
    'refuses an OACK with %s: ERROR 8 to the server, ERR_TFTP_PROTOCOL to the caller',
    async (_what, options) => {
      await using script = await RawPeer.open();
      const client = new TftpClient({ host: '127.0.0.1', port: script.port, ...fast, timeout: 3 });
      const outcome = expect(client.get('f', new PassThrough())).rejects.toMatchObject({
        code: 'ERR_TFTP_PROTOCOL',
      });
      const rrq = await script.next();
      script.send({ opcode: OPCODE.OACK, options: options as Array<[string, string]> }, rrq.from.port);
      expect((await script.next()).packet).toMatchObject({ opcode: OPCODE.ERROR, code: 8 });
      await outcome;
    },
  );

  it('locks onto the first reply port and sends ERROR 5 to a second one (edge case 3)', async () => {
    await using script = await RawPeer.open();
    await using second = await RawPeer.open();
    const client = new TftpClient({ host: '127.0.0.1', port: script.port, ...fast, noOptions: true });
    const sink = new PassThrough();
    const got = Promise.all([client.get('f', sink), collect(sink)]);
    const rrq = await script.next();
    script.send({ opcode: OPCODE.DATA, block: 1, data: Buffer.alloc(512, 1) }, rrq.from.port);
    second.send({ opcode: OPCODE.DATA, block: 1, data: Buffer.alloc(512, 9) }, rrq.from.port);
    expect((await second.next()).packet).toMatchObject({ opcode: OPCODE.ERROR, code: 5 });
    expect((await script.next()).packet).toEqual({ opcode: OPCODE.ACK, block: 1 });
    script.send({ opcode: OPCODE.DATA, block: 2, data: Buffer.alloc(0) }, rrq.from.port);
    const [stats, data] = await got;
    expect(data).toEqual(Buffer.alloc(512, 1));
    expect(stats.strangers).toBe(1);
  });

  it('checks the received size against the announced tsize', async () => {
    await using script = await RawPeer.open();
    await using local = await tmpDir();
    const client = new TftpClient({
      host: '127.0.0.1',
      port: script.port,
      ...fast,
      windowsize: 1,
      blksize: 512,
    });
    const outcome = expect(client.get('f', path.join(local.path, 'f'))).rejects.toMatchObject({
      code: 'ERR_TFTP_PROTOCOL',
      message: expect.stringMatching(/1000/),
    });
    const rrq = await script.next();
    script.send({ opcode: OPCODE.OACK, options: [['tsize', '1000']] }, rrq.from.port);
    expect((await script.next()).packet).toEqual({ opcode: OPCODE.ACK, block: 0 });
    script.send({ opcode: OPCODE.DATA, block: 1, data: Buffer.from('short') }, rrq.from.port);
    await outcome;
    expect((await script.next()).packet).toMatchObject({ opcode: OPCODE.ERROR });
    expect(await readdir(local.path)).toEqual([]);
  });

  it('answers a repeated OACK with ACK 0 again (its ACK 0 was lost, edge case 11)', async () => {
    await using script = await RawPeer.open();
    const client = new TftpClient({ host: '127.0.0.1', port: script.port, ...fast, windowsize: 1 });
    const sink = new PassThrough();
    const got = Promise.all([client.get('f', sink), collect(sink)]);
    const rrq = await script.next();
    const oack = { opcode: OPCODE.OACK, options: [['blksize', '1468']] } as const;
    script.send(oack, rrq.from.port);
    expect((await script.next()).packet).toEqual({ opcode: OPCODE.ACK, block: 0 });
    script.send(oack, rrq.from.port);
    expect((await script.next()).packet).toEqual({ opcode: OPCODE.ACK, block: 0 });
    script.send({ opcode: OPCODE.DATA, block: 1, data: Buffer.from('x') }, rrq.from.port);
    expect((await got)[1].toString()).toBe('x');
  });

  it.each([
    ['answered at once: its round trip sets the timer (about 50 ms)', false],
    ['answered only when repeated: not timed (Karn), the backed-off timer stays', true],
  ])('a request %s', async (_what, answerRepeatOnly) => {
    // A receiver that only ever reports gaps (atftpd with 64 KiB blocks) gives no other sample:
    // without this one every loss waited out the initial timeout.
    await using script = await RawPeer.open();
    const client = new TftpClient({
      host: '127.0.0.1',
      port: script.port,
      noOptions: true,
      timeoutMs: 600,
      minTimeoutMs: 50,
      retries: 3,
    });
    const put = client.put(Buffer.from('x'), 'up');
    let wrq = await script.next();
    if (answerRepeatOnly) wrq = await script.next(2000);
    script.send({ opcode: OPCODE.ACK, block: 0 }, wrq.from.port);
    expect((await script.next()).packet).toMatchObject({ opcode: OPCODE.DATA, block: 1 });
    const sentAt = performance.now();
    expect((await script.next(3000)).packet).toMatchObject({ opcode: OPCODE.DATA, block: 1 });
    const waited = performance.now() - sentAt;
    if (answerRepeatOnly)
      expect(waited).toBeGreaterThan(500); // 1200 ms: 600 ms, backed off once
    else expect(waited).toBeLessThan(300); // 600 ms if the round trip were not used
    script.send({ opcode: OPCODE.ACK, block: 1 }, wrq.from.port);
    expect(await put).toMatchObject({ outcome: 'ok' });
  });

  it('gives up with ERR_TFTP_TIMEOUT when nobody answers', async () => {
    await using script = await RawPeer.open();
    const client = new TftpClient({
      host: '127.0.0.1',
      port: script.port,
      timeoutMs: 50,
      minTimeoutMs: 50,
      maxTimeoutMs: 100,
      retries: 2,
    });
    await expect(client.get('f', new PassThrough())).rejects.toMatchObject({ code: 'ERR_TFTP_TIMEOUT' });
    expect((await script.collect(10)).length).toBe(3); // the request and two retransmissions
  });

  it('validates its options without I/O', () => {
    expect(() => new TftpClient({ host: '' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTIONS' }),
    );
    expect(() => new TftpClient({ host: 'h', blksize: 7 })).toThrow(/blksize/);
    expect(() => new TftpClient({ host: 'h', timeout: 256 })).toThrow(/timeout/);
    expect(() => new TftpClient({ host: 'h', port: 0 })).toThrow(/port/);
  });
});
