/**
 * Interop with TFTP software written by others, both directions, options on and off: the
 * tftp-hpa, atftp, curl and busybox clients against our server, and our client against tftpd-hpa
 * and atftpd. In CI a missing tool fails the suite (describeWith).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OPCODE } from '../../src/tftp/codec.js';
import {
  TftpClient,
  type TftpClientOptions,
  TftpServer,
  type TftpTransferStats,
} from '../../src/tftp/index.js';
import { expectSameBytes } from '../helpers/bytes.js';
import { describeWith } from '../helpers/env.js';
import { LossyRelay, type RelayOptions } from '../helpers/lossy-relay.js';
import { tmpDir } from '../helpers/tmp.js';
import { ATFTPD, startPeerServer } from './peers.js';

const run = promisify(execFile);
const CONTENT = randomBytes(300_007);
const TEXT = 'first line\nsecond line\r\nbare CR\r end\n';

/** Our server on a fresh folder holding `data.bin` and `text.txt`, for the client suites. */
function ourServer() {
  const state = {} as { server: TftpServer; port: number; root: string; transfers: TftpTransferStats[] };
  let dir: Awaited<ReturnType<typeof tmpDir>>;
  beforeAll(async () => {
    dir = await tmpDir();
    await writeFile(path.join(dir.path, 'data.bin'), CONTENT);
    await writeFile(path.join(dir.path, 'text.txt'), TEXT);
    state.root = dir.path;
    state.transfers = [];
    state.server = new TftpServer({ root: dir.path });
    state.server.on('transfer', (t) => state.transfers.push(t));
    state.port = (await state.server.start()).port;
  });
  afterAll(async () => {
    await state.server?.stop({ graceMs: 0 });
    await dir?.[Symbol.asyncDispose]();
  });
  /** The stats of the last transfer of `filename` (the server reports just after the last ACK). */
  const last = async (filename: string) => {
    await expect.poll(() => state.transfers.some((t) => t.filename === filename)).toBe(true);
    return state.transfers.filter((t) => t.filename === filename).at(-1)!;
  };
  return Object.assign(state, { last });
}

async function tool(command: string, args: string[], cwd?: string) {
  return run(command, args, { timeout: 30_000, ...(cwd ? { cwd } : {}) });
}

describeWith({ tools: ['curl'] }, 'interop: curl → our server', () => {
  const s = ourServer();
  it.each([
    ['default options (tsize, blksize 512, timeout)', []],
    ['blksize 65464', ['--tftp-blksize', '65464']],
    ['no options', ['--tftp-no-options']],
  ])('gets with %s', async (_what, args) => {
    await using out = await tmpDir();
    await tool('curl', [
      '-sS',
      ...args,
      '-o',
      path.join(out.path, 'got'),
      `tftp://127.0.0.1:${s.port}/data.bin`,
    ]);
    expectSameBytes(await readFile(path.join(out.path, 'got')), CONTENT);
  });

  it('puts', async () => {
    await using out = await tmpDir();
    await writeFile(path.join(out.path, 'up'), CONTENT);
    await tool('curl', ['-sS', '-T', path.join(out.path, 'up'), `tftp://127.0.0.1:${s.port}/curl-up.bin`]);
    expectSameBytes(await readFile(path.join(s.root, 'curl-up.bin')), CONTENT);
  });
});

describeWith({ tools: ['tftp'] }, 'interop: tftp-hpa client → our server', () => {
  const s = ourServer();
  it('gets and puts in binary mode (RFC 1350, no options)', async () => {
    await using out = await tmpDir();
    const got = path.join(out.path, 'got');
    await tool('tftp', ['-m', 'binary', '127.0.0.1', String(s.port), '-c', 'get', 'data.bin', got]);
    expectSameBytes(await readFile(got), CONTENT);
    expect(await s.last('data.bin')).toMatchObject({ outcome: 'ok', blksize: 512, negotiatedOptions: {} });
    await tool('tftp', ['-m', 'binary', '127.0.0.1', String(s.port), '-c', 'put', got, 'hpa-up.bin']);
    expectSameBytes(await readFile(path.join(s.root, 'hpa-up.bin')), CONTENT);
  });

  it('gets and puts text in ascii (netascii) mode', async () => {
    await using out = await tmpDir();
    const got = path.join(out.path, 'text');
    await tool('tftp', ['-m', 'ascii', '127.0.0.1', String(s.port), '-c', 'get', 'text.txt', got]);
    expect(await readFile(got, 'utf8')).toBe(TEXT);
    await tool('tftp', ['-m', 'ascii', '127.0.0.1', String(s.port), '-c', 'put', got, 'hpa-text.txt']);
    expect(await readFile(path.join(s.root, 'hpa-text.txt'), 'utf8')).toBe(TEXT);
  });
});

describeWith({ tools: ['atftp'] }, 'interop: atftp client → our server', () => {
  const s = ourServer();
  it.each([
    ['no options', []],
    ['blksize 1468', ['--option', 'blksize 1468']],
    ['blksize 1468, windowsize 16', ['--option', 'blksize 1468', '--option', 'windowsize 16']],
    [
      'blksize 65464, windowsize 64, tsize',
      ['--option', 'blksize 65464', '--option', 'windowsize 64', '--option', 'tsize 0'],
    ],
  ])('gets and puts with %s', async (what, args) => {
    await using out = await tmpDir();
    const got = path.join(out.path, 'got');
    await tool('atftp', ['-g', '-r', 'data.bin', '-l', got, ...args, '127.0.0.1', String(s.port)]);
    expectSameBytes(await readFile(got), CONTENT);
    const name = `atftp-${what.replace(/\W+/g, '-')}.bin`;
    await tool('atftp', ['-p', '-l', got, '-r', name, ...args, '127.0.0.1', String(s.port)]);
    expectSameBytes(await readFile(path.join(s.root, name)), CONTENT);
    const stats = await s.last(name);
    const asked = Object.fromEntries(args.filter((a) => a !== '--option').map((a) => a.split(' ')));
    expect(stats.blksize).toBe(Number(asked.blksize ?? 512));
    expect(stats.windowsize).toBe(Number(asked.windowsize ?? 1));
  });
});

/** atftp (blksize 1468, windowsize 16) gets data.bin from `port` through a relay; byte-exact. */
async function atftpGetThrough(port: number, lose: Pick<RelayOptions, 'toServer' | 'toClient'>) {
  await using relay = await LossyRelay.start({ target: { address: '127.0.0.1', port }, ...lose });
  await using out = await tmpDir();
  const got = path.join(out.path, 'got');
  const args = ['--option', 'blksize 1468', '--option', 'windowsize 16'];
  await tool('atftp', ['-g', '-r', 'data.bin', '-l', got, ...args, '127.0.0.1', String(relay.port)]);
  expectSameBytes(await readFile(got), CONTENT);
}

describeWith({ tools: ['atftp'] }, 'interop: atftp client → our server, first answer lost', () => {
  const s = ourServer();
  const isAck0 = (d: Buffer) => d.length === 4 && d.readUInt32BE(0) === 0x00040000;
  const isOack = (d: Buffer) => d.length >= 2 && d[0] === 0 && d[1] === OPCODE.OACK;
  // atftp aborts a download on a second OACK ("tftp: unexpected OACK"), and repeats a lost ACK 0
  // or its request only after its own 5 s timer: the server must not repeat the OACK before that.
  it.each([
    ['ACK 0 (the server must not repeat its OACK before atftp repeats its ACK 0)', { toServer: isAck0 }],
    ['OACK (atftp repeats its request, which gets the OACK again)', { toClient: isOack }],
  ])('gets byte-exact with windowsize 16 when the first %s is lost', async (_what, lose) => {
    let dropped = 0;
    const once = (match: (d: Buffer) => boolean) => (d: Buffer) => dropped === 0 && match(d) && ++dropped > 0;
    await atftpGetThrough(s.port, {
      ...('toServer' in lose ? { toServer: { dropIf: once(lose.toServer) } } : {}),
      ...('toClient' in lose ? { toClient: { dropIf: once(lose.toClient) } } : {}),
    });
    expect(dropped).toBe(1);
  });
});

describeWith({ tools: ['atftp'] }, 'interop: atftp client → our server, an ACK lost mid-transfer', () => {
  const s = ourServer();
  // atftp answers the first block it already has with one extra ACK, then ignores the rest without
  // acknowledging them, and repeats its ACK only when its 5 s timer runs out, which every block we
  // resend restarts. When the extra ACK is lost too, the server resends a few times and then
  // waits past that timer (it used to resend with a backoff under 5 s, stalling atftp for 15 s or
  // more, or until the server gave up).
  it('gets byte-exact with windowsize 16 when an ACK and the extra ACK after it are lost', async () => {
    let dropped = 0;
    const isAck16 = (d: Buffer) => d.length === 4 && d.readUInt32BE(0) === 0x00040010;
    await atftpGetThrough(s.port, {
      toServer: { dropIf: (d) => dropped < 2 && isAck16(d) && ++dropped > 0 },
    });
    expect(dropped).toBe(2);
    const stats = await s.last('data.bin');
    expect(stats.outcome).toBe('ok');
    // A tail probe and three timer resends of the 16-block window, then silence until atftp's timer.
    expect(stats.retransmits).toBeGreaterThanOrEqual(16);
    expect(stats.retransmits).toBeLessThanOrEqual(64);
  });
});

describeWith({ tools: ['busybox'] }, 'interop: busybox tftp → our server', () => {
  const s = ourServer();
  it.each([
    ['default block size', []],
    ['blksize 1468 (with tsize)', ['-b', '1468']],
  ])('gets and puts with %s', async (what, args) => {
    await using out = await tmpDir();
    const got = path.join(out.path, 'got');
    await tool('busybox', ['tftp', '-g', '-r', 'data.bin', '-l', got, ...args, '127.0.0.1', String(s.port)]);
    expectSameBytes(await readFile(got), CONTENT);
    const name = `busybox-${what.replace(/\W+/g, '-')}.bin`;
    await tool('busybox', ['tftp', '-p', '-l', got, '-r', name, ...args, '127.0.0.1', String(s.port)]);
    expectSameBytes(await readFile(path.join(s.root, name)), CONTENT);
  });
});

function ourClientAgainst(kind: 'tftpd-hpa' | 'atftpd', cases: Array<[string, Partial<TftpClientOptions>]>) {
  it.each(cases)('gets and puts with %s', async (what, options) => {
    await using root = await tmpDir();
    await using out = await tmpDir();
    await writeFile(path.join(root.path, 'data.bin'), CONTENT, { mode: 0o644 });
    await using peer = await startPeerServer(kind, root.path);
    const client = new TftpClient({ host: '127.0.0.1', port: peer.port, retries: 5, ...options });
    const got = path.join(out.path, 'got');
    await client.get('data.bin', got);
    expectSameBytes(await readFile(got), CONTENT);
    const name = `ours-${what.replace(/\W+/g, '-')}.bin`;
    await client.put(got, name);
    // A peer may acknowledge the last block before it closes the file (atftpd writes its last
    // few KiB after the final ACK): wait for the whole file, then compare.
    const put = path.join(root.path, name);
    await expect.poll(async () => (await stat(put)).size, { timeout: 5000 }).toBe(CONTENT.length);
    expectSameBytes(await readFile(put), CONTENT);
  });
}

describeWith({ tools: ['in.tftpd'] }, 'interop: our client → tftpd-hpa (in.tftpd -L)', () => {
  ourClientAgainst('tftpd-hpa', [
    ['default options (blksize 1468, windowsize 16 ignored by hpa, tsize)', {}],
    ['no options', { noOptions: true }],
    ['blksize 65464', { blksize: 65464, windowsize: 1 }],
    ['blksize 512 lockstep with tsize', { blksize: 512, windowsize: 1 }],
  ]);

  it('falls back to defaults where hpa ignores windowsize, and gets its ERROR 1', async () => {
    await using root = await tmpDir();
    await writeFile(path.join(root.path, 'f'), 'x', { mode: 0o644 });
    await using peer = await startPeerServer('tftpd-hpa', root.path);
    const client = new TftpClient({ host: '127.0.0.1', port: peer.port });
    const stats = await client.get('f', new PassThrough().resume());
    expect(stats).toMatchObject({ windowsize: 1, negotiatedOptions: { blksize: '1468', tsize: '1' } });
    await expect(client.get('missing', new PassThrough())).rejects.toMatchObject({
      code: 'ERR_TFTP',
      tftpCode: 1,
    });
  });
});

describeWith({ tools: [ATFTPD] }, 'interop: our client → atftpd', () => {
  ourClientAgainst('atftpd', [
    ['default options (blksize 1468, windowsize 16, tsize)', {}],
    ['no options', { noOptions: true }],
    ['blksize 65464, windowsize 8', { blksize: 65464, windowsize: 8 }],
    ['blksize 1468, windowsize 64', { blksize: 1468, windowsize: 64 }],
  ]);
});
