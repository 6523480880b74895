import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { FileServerError } from '../src/errors.js';
import { FileServer } from '../src/file-server.js';
import { Testbed } from '../src/testbed/testbed.js';
import type { TransferEvent } from '../src/transfer.js';
import { isRoot } from './helpers/env.js';
import { basicAuth, openFdCount } from './helpers/http.js';
import { tmpDir } from './helpers/tmp.js';

const loopback = { address: '127.0.0.1' } as const;

async function occupy(host: string, port = 0): Promise<net.Server & AsyncDisposable> {
  const server = net.createServer();
  server.listen({ host, port, exclusive: true });
  await once(server, 'listening');
  return Object.assign(server, {
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

describe('FileServer construction', () => {
  it('does no I/O: a missing root is not created until start', async () => {
    await using dir = await tmpDir();
    const root = path.join(dir.path, 'later');
    const server = new FileServer({ protocol: 'http', root, ...loopback });
    expect(server.state).toBe('new');
    expect(await readdir(dir.path)).toEqual([]);
    await server.start();
    expect(await readdir(dir.path)).toEqual(['later']);
    await server.stop();
  });

  it.each([
    [{ protocol: 'gopher' }, 'ERR_UNSUPPORTED_PROTOCOL'],
    [{ protocol: 'http', port: 70000 }, 'ERR_INVALID_OPTIONS'],
    [{ protocol: 'http', port: -1 }, 'ERR_INVALID_OPTIONS'],
    [{ protocol: 'http', username: 'only-user' }, 'ERR_INVALID_OPTIONS'],
    [{ protocol: 'tftp', username: 'u', password: 'p' }, 'ERR_INVALID_OPTIONS'],
    [{ protocol: 'ftp', auth: false }, 'ERR_INVALID_OPTIONS'],
    [{ protocol: 'http', testbed: new Testbed() }, 'ERR_INVALID_OPTIONS'],
    [{ protocol: 'http', readOnly: true, writable: true }, 'ERR_INVALID_OPTIONS'],
    [{ protocol: 'http', maxFileSize: -5 }, 'ERR_INVALID_OPTIONS'],
    [{ protocol: 'http', embedded: true }, 'ERR_INVALID_OPTIONS'],
    [{ protocol: 'http', advertise: { port: 0 } }, 'ERR_INVALID_OPTIONS'],
  ])('rejects %o with %s', (options, code) => {
    // biome-ignore lint/suspicious/noExplicitAny: deliberately malformed input
    expect(() => new FileServer(options as any)).toThrow(expect.objectContaining({ code }));
  });

  it('accepts the protocol in any case', () => {
    // biome-ignore lint/suspicious/noExplicitAny: users of plain JavaScript pass such strings
    expect(new FileServer({ protocol: 'HTTP' as any }).protocol).toBe('http');
  });
});

describe('FileServer lifecycle', () => {
  it('goes new -> starting -> running -> stopping -> stopped and emits listening and close', async () => {
    const server = new FileServer({ protocol: 'http', ...loopback });
    const states: string[] = [server.state];
    server.on('listening', () => states.push(`listening:${server.state}`));
    server.on('close', () => states.push(`close:${server.state}`));
    const starting = server.start();
    states.push(server.state);
    const info = await starting;
    expect(info.port).toBeGreaterThan(0);
    expect(info.url).toBe(`http://127.0.0.1:${info.port}/`);
    const stopping = server.stop();
    states.push(server.state);
    await stopping;
    expect(states).toEqual(['new', 'starting', 'listening:running', 'stopping', 'close:stopped']);
  });

  it('reads info only while running', async () => {
    const server = new FileServer({ protocol: 'http', ...loopback });
    expect(() => server.info).toThrow(expect.objectContaining({ code: 'ERR_NOT_RUNNING' }));
    await server.start();
    expect(server.url).toBe(server.info.url);
    await server.stop();
    expect(() => server.port).toThrow(expect.objectContaining({ code: 'ERR_NOT_RUNNING' }));
  });

  it('starts once: a second start, or a start after stop, is ERR_INVALID_STATE', async () => {
    const server = new FileServer({ protocol: 'http', ...loopback });
    await server.start();
    await expect(server.start()).rejects.toMatchObject({ code: 'ERR_INVALID_STATE' });
    await server.stop();
    await expect(server.start()).rejects.toMatchObject({ code: 'ERR_INVALID_STATE' });
  });

  it('stop is idempotent and concurrent callers share one stop', async () => {
    const server = await FileServer.start({ protocol: 'http', ...loopback });
    const a = server.stop();
    const b = server.stop();
    expect(a).toBe(b);
    await Promise.all([a, b, server.stop()]);
    await server.stop();
    expect(server.state).toBe('stopped');
  });

  it('disposing a server that never started is a no-op', async () => {
    const server = new FileServer({ protocol: 'http', ...loopback });
    await server[Symbol.asyncDispose]();
    expect(server.state).toBe('new');
  });

  it('await using closes the server and releases its port', async () => {
    let port = 0;
    {
      await using server = await FileServer.start({ protocol: 'http', ...loopback });
      port = server.port;
    }
    await using again = await occupy('127.0.0.1', port);
    expect((again.address() as net.AddressInfo).port).toBe(port);
  });

  it('stop() during start aborts the start and leaves nothing listening', async () => {
    const server = new FileServer({ protocol: 'http', ...loopback });
    const started = server.start();
    await server.stop();
    await expect(started).rejects.toBeInstanceOf(Error);
    expect(server.state).toBe('failed');
  });

  it('honours an aborted start signal', async () => {
    const server = new FileServer({ protocol: 'http', ...loopback });
    await expect(server.start({ signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('FileServer start failures', () => {
  it('a start slower than startTimeoutMs is ERR_START_TIMEOUT and leaves nothing registered', async () => {
    // A fresh RSA host key takes about 100 ms: far beyond 5 ms.
    const testbed = new Testbed();
    await using root = await tmpDir();
    const server = new FileServer({
      protocol: 'sftp',
      name: 'slow',
      testbed,
      root: root.path,
      address: '127.0.0.1',
      startTimeoutMs: 5,
    });
    await expect(server.start()).rejects.toMatchObject({
      code: 'ERR_START_TIMEOUT',
      details: { startTimeoutMs: 5 },
    });
    expect(server.state).toBe('failed');
    expect(testbed.servers.has('slow')).toBe(false);
  });

  it('a busy port is ERR_ADDRESS_IN_USE with the EADDRINUSE cause, and nothing is left behind', async () => {
    await using busy = await occupy('127.0.0.1');
    const port = (busy.address() as net.AddressInfo).port;
    await using dir = await tmpDir();
    await withTmpdir(dir.path, async () => {
      const testbed = new Testbed();
      const server = new FileServer({ protocol: 'http', port, ...loopback, name: 'busy', testbed });
      const error = await server.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(FileServerError);
      expect(error).toMatchObject({ code: 'ERR_ADDRESS_IN_USE', cause: { code: 'EADDRINUSE' } });
      expect((error as Error).message).toContain(String(port));
      expect(server.state).toBe('failed');
      expect(await readdir(dir.path)).toEqual([]); // temporary root removed
      expect(testbed.servers.has('busy')).toBe(false);
      expect(testbed.isRunning('busy')).toBe(false);
    });
  });

  it("port: 'standard' takes the standard port when free and falls back when it is busy", async () => {
    // 127.0.0.77 is ours alone, so port 80 on it is free unless this test holds it.
    const first = await FileServer.start({ protocol: 'http', port: 'standard', address: '127.0.0.77' });
    try {
      if (isRoot) expect(first.port).toBe(80);
      const second = await FileServer.start({ protocol: 'http', port: 'standard', address: '127.0.0.77' });
      expect(second.port).not.toBe(80);
      expect(second.port).toBeGreaterThan(1023);
      await second.stop();
    } finally {
      await first.stop();
    }
  });

  it('an address that is not on this host is ERR_ADDRESS_NOT_AVAILABLE', async () => {
    const server = new FileServer({ protocol: 'http', address: '198.19.255.254' });
    await expect(server.start()).rejects.toMatchObject({ code: 'ERR_ADDRESS_NOT_AVAILABLE' });
  });

  it.each([
    ['the file system root', '/'],
    ['a file', import.meta.filename],
  ])('refuses %s as root with ERR_ROOT_INVALID', async (_what, root) => {
    await expect(FileServer.start({ protocol: 'http', root, ...loopback })).rejects.toMatchObject({
      code: 'ERR_ROOT_INVALID',
    });
  });

  it('a subnet with no host address is ERR_NO_REACHABLE_ADDRESS listing the host addresses, and leaves no temporary root', async () => {
    await using dir = await tmpDir();
    const error = await withTmpdir(dir.path, () =>
      FileServer.start({ protocol: 'http', subnet: '198.19.254.0/24' }).catch((e: unknown) => e),
    );
    expect(error).toMatchObject({ code: 'ERR_NO_REACHABLE_ADDRESS' });
    expect((error as Error).message).toContain('127.0.0.1');
    expect(await readdir(dir.path)).toEqual([]);
  });

  it('as an unprivileged user: low port is ERR_PERMISSION_DENIED, unreadable root is ERR_ROOT_INVALID', async () => {
    if (!isRoot) {
      // Without root we are the unprivileged user ourselves.
      await expect(FileServer.start({ protocol: 'http', port: 81, ...loopback })).rejects.toMatchObject({
        code: 'ERR_PERMISSION_DENIED',
      });
      return;
    }
    await using dir = await tmpDir();
    const locked = path.join(dir.path, 'locked');
    await mkdir(locked, { mode: 0o700 });
    const script = `
      const { FileServer } = await import(${JSON.stringify(path.join(inject('distDir'), 'index.js'))});
      const codes = [];
      for (const options of [{ port: 81 }, { root: ${JSON.stringify(locked)} }]) {
        await FileServer.start({ protocol: 'http', address: '127.0.0.1', ...options }).then(
          (s) => { codes.push('started'); return s.stop(); },
          (e) => codes.push(e.code + ':' + (e.cause?.code ?? '')));
      }
      console.log(JSON.stringify(codes));`;
    // The user 65534 cannot enter root's home, where CI keeps its Node 24: use the system's Node then.
    const node = existsSync('/usr/bin/node') ? '/usr/bin/node' : process.execPath;
    const { stdout } = await promisify(execFile)(node, ['--input-type=module', '-e', script], {
      uid: 65534,
      gid: 65534,
      cwd: '/',
      timeout: 20_000,
    });
    expect(JSON.parse(stdout)).toEqual(['ERR_PERMISSION_DENIED:EACCES', 'ERR_ROOT_INVALID:EACCES']);
  });
});

describe('FileServer root and temporary folders', () => {
  it('creates a temporary root when none is given and removes it on stop', async () => {
    const server = await FileServer.start({ protocol: 'http', ...loopback });
    const root = server.info.root;
    await writeFile(path.join(root, 'x.txt'), 'x');
    await server.stop();
    await expect(readdir(root)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('never removes a root the user gave', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'keep.txt'), 'keep');
    const server = await FileServer.start({ protocol: 'http', root: dir.path, ...loopback });
    await server.stop();
    expect(await readdir(dir.path)).toEqual(['keep.txt']);
  });

  it('serves through a symlinked root by its real path', async () => {
    await using dir = await tmpDir();
    await mkdir(path.join(dir.path, 'real'));
    await symlink(path.join(dir.path, 'real'), path.join(dir.path, 'link'));
    await using server = await FileServer.start({
      protocol: 'http',
      root: path.join(dir.path, 'link'),
      ...loopback,
    });
    expect(server.info.root).toBe(path.join(dir.path, 'real'));
  });
});

describe('FileServer stop with transfers in flight', () => {
  async function slowDownload(server: FileServer): Promise<net.Socket> {
    const { url, username, password } = server.info;
    const { hostname, port } = new URL(url);
    const socket = net.connect(Number(port), hostname);
    await once(socket, 'connect');
    socket.write(
      `GET /big.bin HTTP/1.1\r\nhost: x\r\nauthorization: ${basicAuth(username!, password!)}\r\n\r\n`,
    );
    await once(socket, 'data'); // headers and a first chunk arrived; now stop reading
    socket.pause();
    return socket;
  }

  it('aborts a stalled transfer after the grace period and reports it failed', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'big.bin'), Buffer.alloc(64 << 20));
    const server = await FileServer.start({
      protocol: 'http',
      root: dir.path,
      ...loopback,
      stopGraceMs: 300,
    });
    const events: TransferEvent[] = [];
    server.on('transfer', (e) => events.push(e));
    const socket = await slowDownload(server);
    expect(server.activeTransfers).toBe(1);
    const t0 = performance.now();
    await server.stop();
    const elapsed = performance.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(10_000);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ ok: false, direction: 'download', path: 'big.bin' });
    socket.destroy();
  });

  it('a transfer that finishes within the grace period completes', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'big.bin'), Buffer.alloc(8 << 20, 7));
    const server = await FileServer.start({ protocol: 'http', root: dir.path, ...loopback });
    const socket = await slowDownload(server);
    const events: TransferEvent[] = [];
    server.on('transfer', (e) => events.push(e));
    const stopped = server.stop({ graceMs: 20_000 });
    socket.resume(); // the client reads again: the download can finish inside the grace period
    socket.on('data', () => {});
    await stopped;
    socket.destroy();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ ok: true, bytes: 8 << 20 });
  });
});

describe('FileServer leaks', () => {
  it('200 start/stop cycles leave no handles or file descriptors behind', async () => {
    const handles = () =>
      process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'Timeout').length;
    // Warm up once so lazily loaded modules and their handles exist before counting.
    await (await FileServer.start({ protocol: 'http', ...loopback })).stop();
    const fdsBefore = await openFdCount();
    const handlesBefore = handles();
    for (let i = 0; i < 200; i++) {
      const server = await FileServer.start({ protocol: 'http', ...loopback });
      await server.stop();
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(await openFdCount()).toBeLessThanOrEqual(fdsBefore);
    expect(handles()).toBeLessThanOrEqual(handlesBefore);
  });
});

/** Runs `fn` with os.tmpdir() at `dir`, where a server without a root creates its temporary one. */
async function withTmpdir<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  try {
    return await fn();
  } finally {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
  }
}
