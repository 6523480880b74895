import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isFileServerError } from '../../src/errors.js';
import { FileServer } from '../../src/file-server.js';
import { type FtpFixture, ftpFixture, makeTree, RawFtp } from '../helpers/ftp.js';
import { tmpDir } from '../helpers/tmp.js';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGQUIT'] as const;
const counts = () => SIGNALS.map((s) => process.listenerCount(s));

/** Every file under `dir`, relative, including hidden temporary ones. */
async function allFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

describe('FTP embedding', () => {
  it('leaves no process signal handler behind and writes nothing to stdout or stderr', async () => {
    const before = counts();
    const out = vi.spyOn(process.stdout, 'write');
    const err = vi.spyOn(process.stderr, 'write');
    try {
      await using f = await ftpFixture();
      expect(counts()).toEqual(before);
      const client = await f.client();
      await client.uploadFrom((await import('node:stream')).Readable.from(['abc']), 'x.txt');
      await expect(
        client.downloadTo(new (await import('node:stream')).PassThrough(), 'missing'),
      ).rejects.toThrow();
      await expect(f.client({ password: 'nope' })).rejects.toThrow(/530/);
      const raw = await RawFtp.connect(f.host, f.port);
      await raw.send('GARBAGE \u0000\u00ff');
      await raw.send('PORT');
      await raw.send('EPRT |9|x|y|');
      raw.close();
      client.close();
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
    expect(counts()).toEqual(before);
    expect(out).not.toHaveBeenCalled();
    expect(err).not.toHaveBeenCalled();
  });

  it('rejects unknown or malformed options before binding anything', async () => {
    for (const ftp of [
      { nope: 1 },
      { passivePortRange: [10, 20] },
      { tls: { key: 'x' } },
      { idleTimeoutMs: -1 },
    ]) {
      const server = new FileServer({ protocol: 'ftp', address: '127.0.0.1', ftp: ftp as never });
      await expect(server.start()).rejects.toSatisfy((e) => isFileServerError(e, 'ERR_INVALID_OPTIONS'));
    }
  });

  it('runs many servers in one process, each with its own passive window', async () => {
    await using tmp = await tmpDir();
    const root = await makeTree(tmp.path);
    const servers = await Promise.all(
      Array.from({ length: 24 }, () =>
        FileServer.start({ protocol: 'ftp', root, address: '127.0.0.1', ftp: { passivePortCount: 8 } }),
      ),
    );
    try {
      const windows = servers.map((s) => s.info.passivePorts as [number, number]);
      const ports = windows.flatMap(([min, max]) => Array.from({ length: max - min + 1 }, (_, i) => min + i));
      expect(new Set(ports).size).toBe(24 * 8);
      // All of them serve a passive transfer at the same moment.
      const results = await Promise.all(
        servers.map(async (s) => {
          const raw = await RawFtp.connect('127.0.0.1', s.port);
          await raw.login(s.info.username!, s.info.password!);
          const data = await raw.passive('127.0.0.1');
          const [min, max] = s.info.passivePorts as [number, number];
          expect(data.remotePort).toBeGreaterThanOrEqual(min);
          expect(data.remotePort).toBeLessThanOrEqual(max);
          const chunks: Buffer[] = [];
          data.on('data', (c: Buffer) => chunks.push(c));
          const closed = once(data, 'close');
          expect((await raw.send('RETR hello.txt')).code).toBe(150);
          await closed;
          expect((await raw.reply()).code).toBe(226);
          raw.close();
          return Buffer.concat(chunks).toString();
        }),
      );
      expect(new Set(results)).toEqual(new Set(['hello world\n']));
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  });
});

describe('FTP refusals and limits', () => {
  let f: FtpFixture;
  beforeAll(async () => {
    f = await ftpFixture({ maxFileSize: 1000, ftp: { dataTimeoutMs: 500 } });
  });
  afterAll(async () => {
    await f?.[Symbol.asyncDispose]();
  });

  it('refuses active connections to anyone but the client, and to low ports', async () => {
    const raw = await RawFtp.connect(f.host, f.port);
    await raw.login(f.user, f.password);
    expect((await raw.send('PORT 10,1,2,3,200,10')).code).toBe(504);
    expect((await raw.send('PORT 127,0,0,1,0,80')).code).toBe(504);
    expect((await raw.send('EPRT |1|10.1.2.3|5000|')).code).toBe(504);
    expect((await raw.send('EPRT |2|::1|5000|')).code).toBe(504);
    expect((await raw.send('PORT 127,0,0,1,300,1')).code).toBe(501);
    expect((await raw.send('EPRT |1|127.0.0.1|99999|')).code).toBe(501);
    expect((await raw.send('EPSV 3')).code).toBe(522);
    expect((await raw.send('EPRT |1|127.0.0.1|5000|')).code).toBe(200);
    raw.close();
  });

  it('answers 425 when no data connection arrives in time', async () => {
    const raw = await RawFtp.connect(f.host, f.port);
    await raw.login(f.user, f.password);
    expect((await raw.send('RETR hello.txt')).code).toBe(425); // no PASV/PORT yet
    expect((await raw.send('EPSV')).code).toBe(229);
    const t0 = Date.now();
    expect((await raw.send('RETR hello.txt')).code).toBe(425);
    expect(Date.now() - t0).toBeLessThan(3000);
    raw.close();
  });

  it('reads commands split across segments, bare LF endings and pipelined lines in order', async () => {
    const raw = await RawFtp.connect(f.host, f.port);
    raw.socket.write('US');
    await delay(30);
    raw.socket.write(`ER ${f.user}\r`);
    await delay(30);
    raw.socket.write('\n');
    expect((await raw.reply()).code).toBe(331);
    expect((await raw.send(`PASS ${f.password}`)).code).toBe(230);
    raw.socket.write('TYPE I\nCWD sub\r\nPWD\r\nCWD ..\nPWD\n');
    expect((await raw.reply()).code).toBe(200);
    expect((await raw.reply()).code).toBe(250);
    expect((await raw.reply()).text).toBe('257 "/sub"');
    expect((await raw.reply()).code).toBe(250);
    expect((await raw.reply()).text).toBe('257 "/"');
    raw.socket.write(`NOOP ${'x'.repeat(10_000)}`);
    expect((await raw.reply()).code).toBe(500);
    expect((await raw.send('NOOP')).code).toBe(200);
    raw.close();
  });

  it('needs a login for everything that touches files', async () => {
    const raw = await RawFtp.connect(f.host, f.port);
    for (const command of ['EPSV', 'PASV', 'LIST', 'RETR hello.txt', 'CWD sub', 'PORT 127,0,0,1,200,10']) {
      expect((await raw.send(command)).code).toBe(530);
    }
    raw.close();
  });

  it('closes the connection after three failed logins', async () => {
    const raw = await RawFtp.connect(f.host, f.port);
    await raw.send(`USER ${f.user}`);
    expect((await raw.send('PASS a')).code).toBe(530);
    expect((await raw.send('PASS b')).code).toBe(530);
    expect((await raw.send('PASS c')).code).toBe(530);
    await expect(raw.reply()).resolves.toMatchObject({ code: 421 });
    await once(raw.socket, 'close');
  });

  it('refuses an upload over maxFileSize and keeps nothing of it', async () => {
    const raw = await RawFtp.connect(f.host, f.port);
    await raw.login(f.user, f.password);
    const data = await raw.passive(f.host);
    expect((await raw.send('STOR big.bin')).code).toBe(150);
    data.write(Buffer.alloc(5000, 1));
    const reply = await raw.reply();
    expect(reply.code).toBe(552);
    expect(reply.text).toMatch(/1000-byte limit/);
    raw.close();
    await delay(50);
    expect((await allFiles(f.root)).filter((n) => n.includes('big'))).toEqual([]);
  });
});

describe('FTP aborted uploads leave nothing', () => {
  let f: FtpFixture;
  beforeAll(async () => {
    f = await ftpFixture();
  });
  afterAll(async () => {
    await f?.[Symbol.asyncDispose]();
  });

  async function startUpload(name: string) {
    const raw = await RawFtp.connect(f.host, f.port);
    await raw.login(f.user, f.password);
    const data = await raw.passive(f.host);
    expect((await raw.send(`STOR ${name}`)).code).toBe(150);
    data.write(Buffer.alloc(100_000, 2));
    await vi.waitFor(async () => expect((await allFiles(f.root)).some((n) => n.includes(name))).toBe(true));
    return { raw, data };
  }

  it('when the data connection is reset', async () => {
    const { raw, data } = await startUpload('reset.bin');
    data.resetAndDestroy();
    expect((await raw.reply()).code).toBeGreaterThanOrEqual(400);
    raw.close();
    await vi.waitFor(async () =>
      expect((await allFiles(f.root)).filter((n) => n.includes('reset'))).toEqual([]),
    );
  });

  it('when the control connection goes away mid-upload', async () => {
    const { raw, data } = await startUpload('dropped.bin');
    raw.close();
    data.write(Buffer.alloc(1000, 3));
    await delay(100);
    data.end();
    await vi.waitFor(async () =>
      expect((await allFiles(f.root)).filter((n) => n.includes('dropped'))).toEqual([]),
    );
  });

  it('when the client dies (both connections close at once), but not when only the data ends', async () => {
    const died = await startUpload('died.bin');
    died.data.end();
    died.raw.socket.end();
    const whole = await startUpload('whole.bin');
    whole.data.end();
    expect((await whole.raw.reply()).code).toBe(226);
    whole.raw.close();
    await delay(200);
    const files = await allFiles(f.root);
    expect(files.filter((n) => n.includes('died'))).toEqual([]);
    expect(files.filter((n) => n.includes('whole'))).toEqual(['whole.bin']);
    expect((await readFile(path.join(f.root, 'whole.bin'))).length).toBe(100_000);
    const failed = f.events.filter((e) => !e.ok).map((e) => e.path);
    expect(failed).toEqual(expect.arrayContaining(['reset.bin', 'dropped.bin', 'died.bin']));
  });
});

describe('FTP stop', () => {
  it('ends transfers in flight within the grace period and releases every socket and timer', async () => {
    const resources = () => {
      const r = process.getActiveResourcesInfo();
      return {
        tcp: r.filter((x) => x.startsWith('TCP')).length,
        timers: r.filter((x) => x === 'Timeout').length,
      };
    };
    await using tmp = await tmpDir();
    const root = await makeTree(tmp.path);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path.join(root, 'large.bin'), Buffer.alloc(64 << 20, 9));
    const baseline = resources();
    const server = await FileServer.start({ protocol: 'ftp', root, address: '127.0.0.1' });
    const { port, username, password } = server.info;
    const events: boolean[] = [];
    server.on('transfer', (e) => events.push(e.ok));
    // A download whose client stops reading, and an upload that stalls.
    const down = await RawFtp.connect('127.0.0.1', port);
    await down.login(username!, password!);
    const downData = await down.passive('127.0.0.1');
    downData.pause();
    expect((await down.send('RETR large.bin')).code).toBe(150);
    const up = await RawFtp.connect('127.0.0.1', port);
    await up.login(username!, password!);
    const upData = await up.passive('127.0.0.1');
    expect((await up.send('STOR stalled.bin')).code).toBe(150);
    upData.write(Buffer.alloc(10_000));
    await vi.waitFor(() => expect(server.activeTransfers).toBe(2));
    const t0 = performance.now();
    await server.stop({ graceMs: 300 });
    const stopMs = performance.now() - t0;
    expect(stopMs).toBeGreaterThanOrEqual(290);
    expect(stopMs).toBeLessThan(2000);
    expect(events).toEqual([false, false]);
    for (const s of [down.socket, downData, up.socket, upData]) s.destroy();
    await delay(50);
    expect((await allFiles(root)).filter((n) => n.includes('stalled'))).toEqual([]);
    const after = resources();
    expect(after.tcp).toBe(baseline.tcp);
    expect(after.timers).toBeLessThanOrEqual(baseline.timers);
    // The port is free again.
    const again = net.createServer();
    await new Promise<void>((resolve) => again.listen(port, '127.0.0.1', resolve));
    await new Promise((resolve) => again.close(resolve));
  });

  it('stops cleanly at any moment of a transfer (no stray rejection, nothing on stderr)', async () => {
    const err = vi.spyOn(process.stderr, 'write');
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    try {
      await using tmp = await tmpDir();
      const root = await makeTree(tmp.path);
      const { writeFile } = await import('node:fs/promises');
      await writeFile(path.join(root, 'large.bin'), Buffer.alloc(8 << 20, 5));
      for (const command of ['RETR large.bin', 'STOR up.bin', 'RETR large.bin', 'STOR up.bin']) {
        const server = await FileServer.start({ protocol: 'ftp', root, address: '127.0.0.1' });
        const raw = await RawFtp.connect('127.0.0.1', server.port);
        await raw.login(server.info.username!, server.info.password!);
        const data = await raw.passive('127.0.0.1');
        data.pause();
        if (command.startsWith('STOR')) data.write(Buffer.alloc(100_000));
        expect((await raw.send(command)).code).toBe(150);
        await server.stop({ graceMs: 0 }); // right after the 150 reply
        raw.close();
        data.destroy();
      }
      await delay(100);
      expect((await allFiles(root)).filter((n) => n.includes('up'))).toEqual([]);
    } finally {
      process.off('unhandledRejection', onRejection);
      err.mockRestore();
    }
    expect(rejections).toEqual([]);
    expect(err).not.toHaveBeenCalled();
  });

  it('closes idle control connections', async () => {
    await using f = await ftpFixture({ ftp: { idleTimeoutMs: 300 } });
    const raw = await RawFtp.connect(f.host, f.port);
    await raw.login(f.user, f.password);
    await expect(raw.reply()).resolves.toMatchObject({ code: 421 });
    await once(raw.socket, 'close');
  });

  it('refuses uploads on a read-only server', async () => {
    await using f = await ftpFixture({ readOnly: true });
    const raw = await RawFtp.connect(f.host, f.port);
    await raw.login(f.user, f.password);
    expect((await raw.send('STOR x.txt')).code).toBe(550);
    expect((await raw.send('APPE hello.txt')).code).toBe(550);
    expect((await raw.send('DELE hello.txt')).code).toBe(550);
    expect((await raw.send('MKD newdir')).code).toBe(550);
    expect((await raw.send('RNFR hello.txt')).code).toBe(350);
    expect((await raw.send('RNTO renamed.txt')).code).toBe(550);
    expect((await raw.send('SITE CHMOD 777 hello.txt')).code).toBe(500);
    raw.close();
    expect(await allFiles(f.root)).toEqual(['hello.txt', 'sub/data.bin']);
  });
});

describe('FTP ABOR', () => {
  /** A logged-in control connection, binary type, and a connected passive data socket. */
  async function session(f: FtpFixture) {
    const raw = await RawFtp.connect(f.host, f.port);
    await raw.login(f.user, f.password);
    await raw.send('TYPE I');
    return { raw, data: await raw.passive(f.host) };
  }

  it('ends a running upload at once: 426 for STOR, 226 for ABOR, nothing kept, the session goes on', async () => {
    await using f = await ftpFixture();
    const { raw, data } = await session(f);
    expect((await raw.send('STOR partial.bin')).code).toBe(150);
    data.write(Buffer.alloc(1 << 20)); // the data connection stays open: only ABOR ends this upload
    await until(() => f.events.length === 0 && f.server.activeTransfers === 1);
    expect((await raw.send('ABOR')).code).toBe(426);
    expect((await raw.reply()).code).toBe(226);
    await until(() => data.destroyed); // the server closed the data connection
    expect(f.events).toMatchObject([
      {
        direction: 'upload',
        path: 'partial.bin',
        ok: false,
        error: { message: expect.stringContaining('ABOR') },
      },
    ]);
    expect(await allFiles(f.root)).not.toContainEqual(expect.stringContaining('partial'));
    expect((await raw.send('NOOP')).code).toBe(200);
    raw.close();
  });

  it('ends a running download the client stopped reading; ABOR sent as urgent data (Telnet IP, Synch, no final LF) works too', async () => {
    await using f = await ftpFixture();
    await (await import('node:fs/promises')).writeFile(path.join(f.root, 'big.bin'), Buffer.alloc(32 << 20));
    const { raw, data } = await session(f);
    data.pause(); // a reader that stopped: the server cannot finish on its own
    expect((await raw.send('RETR big.bin')).code).toBe(150);
    // Python's ftplib sends IAC IP IAC DM ABOR CR LF with MSG_OOB: the urgent LF never arrives in band.
    // A NOOP sent during the transfer waits its turn; the ABOR after it does not.
    raw.socket.write(Buffer.from('NOOP\r\n'));
    raw.socket.write(Buffer.from([0xff, 0xf4, 0xff, 0xf2, ...Buffer.from('ABOR\r')]));
    expect((await raw.reply()).code).toBe(426); // the RETR, cut short
    expect((await raw.reply()).code).toBe(200); // the NOOP
    expect((await raw.reply()).code).toBe(226); // the ABOR
    expect(f.events).toMatchObject([{ direction: 'download', path: 'big.bin', ok: false }]);
    expect((await raw.send('PWD')).code).toBe(257);
    raw.close();
  });

  it('reads commands on during a transfer, but stops reading once 64 wait (no unbounded queue)', async () => {
    await using f = await ftpFixture();
    const { raw, data } = await session(f);
    expect((await raw.send('STOR flood.bin')).code).toBe(150);
    const flood = Buffer.from('NOOP\r\n'.repeat(700_000)); // 4.2 MB of commands
    raw.socket.write(flood);
    await delay(500);
    // The server stopped reading: most of it still sits in this side's buffers.
    expect(raw.socket.writableLength).toBeGreaterThan(flood.length / 2);
    data.resetAndDestroy(); // cut short, not ended: the upload fails
    raw.close();
    await until(() => f.events.length === 1 && f.server.activeTransfers === 0);
    expect(f.events[0]).toMatchObject({ path: 'flood.bin', ok: false });
    expect(await allFiles(f.root)).not.toContainEqual(expect.stringContaining('flood'));
  });

  it('answers 225 when nothing runs', async () => {
    await using f = await ftpFixture();
    const raw = await RawFtp.connect(f.host, f.port);
    await raw.login(f.user, f.password);
    expect((await raw.send('ABOR')).code).toBe(225);
    raw.close();
  });
});

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await delay(10);
  expect(condition()).toBe(true);
}
