/**
 * The embedded SSH server driven at protocol level with ssh2's client: authentication methods
 * and limits, the rcp protocol with malicious records, SFTP edge cases, refusals, and stop with
 * transfers in flight.
 */
import { once } from 'node:events';
import { readdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { ClientChannel } from 'ssh2';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FileServer } from '../../src/file-server.js';
import { makeTree } from '../helpers/ftp.js';
import { execAll, execOf, type SshFixture, sftpOf, sshClient, sshFixture } from '../helpers/ssh.js';
import { tmpDir } from '../helpers/tmp.js';

const { STATUS_CODE } = ssh2.utils.sftp;

async function allFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

/** Reads what the server sends on an rcp channel, byte by byte. */
class RcpPeer {
  readonly stream: ClientChannel;
  /** The exit status the server sends. */
  readonly exit: Promise<number>;
  #buffer = Buffer.alloc(0);
  #closed = false;
  constructor(stream: ClientChannel) {
    this.stream = stream;
    this.exit = new Promise((resolve) => stream.once('exit', resolve));
    stream.on('data', (c: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, c]);
    });
    stream.on('close', () => {
      this.#closed = true;
    });
  }
  /** Next status: 0, or [1|2, message]. */
  async status(): Promise<number | [number, string]> {
    await vi.waitFor(() => {
      if (this.#buffer.length === 0 && this.#closed) throw new Error('closed');
      expect(this.#buffer.length).toBeGreaterThan(0);
      if (this.#buffer[0] !== 0) expect(this.#buffer.includes(0x0a)).toBe(true);
    });
    const first = this.#buffer[0]!;
    if (first === 0) {
      this.#buffer = this.#buffer.subarray(1);
      return 0;
    }
    const end = this.#buffer.indexOf(0x0a);
    const message = this.#buffer.subarray(1, end).toString();
    this.#buffer = this.#buffer.subarray(end + 1);
    return [first, message];
  }
}

describe('SSH authentication', () => {
  let f: SshFixture;
  beforeAll(async () => {
    f = await sshFixture({ ssh: { maxAuthTries: 2 } });
  });
  afterAll(async () => {
    await f?.[Symbol.asyncDispose]();
  });

  it('accepts the password, also through keyboard-interactive', async () => {
    const a = await sshClient(f);
    a.end();
    const b = await sshClient(f, { tryKeyboard: true });
    b.end();
  });

  it('refuses a wrong password and closes after maxAuthTries', async () => {
    await expect(sshClient(f, { password: 'wrong' })).rejects.toThrow(/authentication methods failed/);
  });

  it('publishes both host keys and their fingerprints', () => {
    const info = f.server.info;
    expect((info.hostKeys as string[]).map((k) => k.split(' ')[0])).toEqual(['ssh-ed25519', 'ssh-rsa']);
    expect(Object.keys(info.hostKeyFingerprints as object)).toEqual(['ssh-ed25519', 'ssh-rsa']);
    for (const fp of Object.values(info.hostKeyFingerprints as Record<string, string>)) {
      expect(fp).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    }
  });

  it('can use keys the user gives, and refuses keyboard-interactive when told to', async () => {
    const key = ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 });
    await using g = await sshFixture({ ssh: { hostKeys: [key.private], keyboardInteractive: false } });
    expect(g.server.info.hostKeys).toEqual([key.public.split(' ').slice(0, 2).join(' ')]);
    await expect(sshClient(g, { tryKeyboard: true })).rejects.toThrow(/authentication methods failed/);
    (await sshClient(g)).end();
  });
});

describe('legacy scp at protocol level', () => {
  let f: SshFixture;
  let client: ssh2.Client;
  beforeAll(async () => {
    f = await sshFixture({ maxFileSize: 10_000 });
    client = await sshClient(f);
  });
  afterAll(async () => {
    client?.end();
    await f?.[Symbol.asyncDispose]();
  });

  it('receives a file and lands it only after the trailing status byte', async () => {
    const peer = new RcpPeer(await execOf(client, 'scp -t incoming'));
    expect(await peer.status()).toBe(0);
    peer.stream.write('C0644 5 one.txt\n');
    expect(await peer.status()).toBe(0);
    peer.stream.write('hello');
    await delay(50);
    expect(await allFiles(f.root)).not.toContain('incoming');
    peer.stream.write('\0');
    expect(await peer.status()).toBe(0);
    peer.stream.end();
    await once(peer.stream, 'close');
    expect(await allFiles(f.root)).toContain('incoming');
  });

  it.each([
    ['C0644 3 ../evil\n', /unexpected filename/],
    ['C0644 3 a/b\n', /unexpected filename/],
    ['C0644 3 ..\n', /unexpected filename/],
    ['D0755 0 sub\n', /folder without -r/],
    ['X nonsense\n', /expected a C, D, E or T record/],
    ['E\n', /E without D/],
  ])('ends the copy on %j', async (record, message) => {
    const peer = new RcpPeer(await execOf(client, 'scp -t .'));
    expect(await peer.status()).toBe(0);
    peer.stream.write(record);
    const [code, text] = (await peer.status()) as [number, string];
    expect(code).toBe(2);
    expect(text).toMatch(message);
    expect(await peer.exit).toBe(1);
    expect(await allFiles(f.dir)).not.toContain('evil');
  });

  it('skips a file over maxFileSize and goes on with the next', async () => {
    const peer = new RcpPeer(await execOf(client, 'scp -t .'));
    expect(await peer.status()).toBe(0);
    peer.stream.write('C0644 20000 big.bin\n');
    expect(await peer.status()).toEqual([1, expect.stringMatching(/10000-byte limit/)]);
    peer.stream.write('C0644 2 small.txt\n');
    expect(await peer.status()).toBe(0);
    peer.stream.write('ok\0');
    expect(await peer.status()).toBe(0);
    peer.stream.end();
    expect(await peer.exit).toBe(1);
    const files = await allFiles(f.root);
    expect(files).toContain('small.txt');
    expect(files).not.toContain('big.bin');
  });

  it('keeps nothing of a file whose client leaves mid-body', async () => {
    const peer = new RcpPeer(await execOf(client, 'scp -t .'));
    expect(await peer.status()).toBe(0);
    peer.stream.write('C0644 9000 partial.bin\n');
    expect(await peer.status()).toBe(0);
    peer.stream.write(Buffer.alloc(4000, 1));
    await vi.waitFor(async () =>
      expect((await readdir(f.root)).some((n) => n.includes('partial'))).toBe(true),
    );
    peer.stream.close();
    await vi.waitFor(async () =>
      expect((await readdir(f.root)).filter((n) => n.includes('partial'))).toEqual([]),
    );
    await vi.waitFor(() => expect(f.events.find((e) => e.path === 'partial.bin')?.ok).toBe(false));
  });

  it('refuses every other command, and scp with shell syntax', async () => {
    for (const command of ['id', 'scp -t . ; id', 'scp -t $(id)', 'sftp-server', 'scp -S /bin/sh -t x']) {
      const r = await execAll(client, command);
      expect(r.code, command).toBe(1);
      expect(r.stdout.length).toBe(0);
      expect(r.stderr).toContain('only runs scp');
    }
  });

  it('refuses shells, port forwarding and other subsystems', async () => {
    await expect(
      new Promise((resolve, reject) => client.shell((e, s) => (e ? reject(e) : resolve(s)))),
    ).rejects.toThrow();
    await expect(
      new Promise((resolve, reject) =>
        client.forwardOut('127.0.0.1', 1, '127.0.0.1', 9, (e, s) => (e ? reject(e) : resolve(s))),
      ),
    ).rejects.toThrow();
    await expect(
      new Promise((resolve, reject) =>
        client.forwardIn('127.0.0.1', 0, (e, p) => (e ? reject(e) : resolve(p))),
      ),
    ).rejects.toThrow();
    await expect(
      new Promise((resolve, reject) => client.subsys('netconf', (e, s) => (e ? reject(e) : resolve(s)))),
    ).rejects.toThrow();
  });
});

describe('SFTP at protocol level', () => {
  let f: SshFixture;
  let client: ssh2.Client;
  beforeAll(async () => {
    f = await sshFixture();
    client = await sshClient(f);
  });
  afterAll(async () => {
    client?.end();
    await f?.[Symbol.asyncDispose]();
  });

  const call = <T>(fn: (cb: (error: Error | null | undefined, value?: T) => void) => void) =>
    new Promise<T>((resolve, reject) => fn((error, value) => (error ? reject(error) : resolve(value as T))));

  it('keeps nothing of an upload whose session ends without CLOSE', async () => {
    const own = await sshClient(f);
    const sftp = await sftpOf(own);
    const handle = await call<Buffer>((cb) => sftp.open('unclosed.bin', 'w', cb));
    await call((cb) => sftp.write(handle, Buffer.alloc(5000, 1), 0, 5000, 0, cb));
    expect((await readdir(f.root)).some((n) => n.includes('unclosed'))).toBe(true);
    own.end();
    await vi.waitFor(async () =>
      expect((await readdir(f.root)).filter((n) => n.includes('unclosed'))).toEqual([]),
    );
  });

  it('answers traversal with permission denied and refuses symlinks', async () => {
    const sftp = await sftpOf(client);
    const code = (e: unknown) => (e as { code: number }).code;
    await expect(call((cb) => sftp.realpath('..', cb))).rejects.toSatisfy(
      (e) => code(e) === STATUS_CODE.PERMISSION_DENIED,
    );
    await expect(call((cb) => sftp.stat('escape.txt', cb))).rejects.toSatisfy(
      (e) => code(e) === STATUS_CODE.PERMISSION_DENIED,
    );
    await expect(call((cb) => sftp.opendir('escape-dir', cb))).rejects.toSatisfy(
      (e) => code(e) === STATUS_CODE.PERMISSION_DENIED,
    );
    await expect(call((cb) => sftp.symlink('/etc/passwd', 'link', cb))).rejects.toSatisfy(
      (e) => code(e) === STATUS_CODE.OP_UNSUPPORTED,
    );
    await expect(call((cb) => sftp.open('../x', 'w', cb))).rejects.toSatisfy(
      (e) => code(e) === STATUS_CODE.PERMISSION_DENIED,
    );
    const names = (await call<{ filename: string }[]>((cb) => sftp.readdir('/', cb)))
      .map((e) => e.filename)
      .sort();
    expect(names).toEqual(['hello.txt', 'inside-link.txt', 'sub']);
    expect(await call((cb) => sftp.realpath('~/sub/..', cb))).toBe('/');
    expect(await call((cb) => sftp.realpath('sub/./x/..', cb))).toBe('/sub');
  });

  it('is read-only when told so', async () => {
    await using g = await sshFixture({ readOnly: true });
    const own = await sshClient(g);
    const sftp = await sftpOf(own);
    const code = (e: unknown) => (e as { code: number }).code;
    await expect(call((cb) => sftp.open('new.txt', 'w', cb))).rejects.toSatisfy(
      (e) => code(e) === STATUS_CODE.PERMISSION_DENIED,
    );
    await expect(call((cb) => sftp.unlink('hello.txt', cb))).rejects.toSatisfy(
      (e) => code(e) === STATUS_CODE.PERMISSION_DENIED,
    );
    await expect(call((cb) => sftp.mkdir('d', cb))).rejects.toSatisfy(
      (e) => code(e) === STATUS_CODE.PERMISSION_DENIED,
    );
    const sink = await execAll(own, 'scp -t x.txt');
    expect(sink.stdout.toString()).toContain('read-only');
    own.end();
  });
});

describe('SSH stop', () => {
  it('ends transfers in flight within the grace period, releases everything, installs no signal handler', async () => {
    const signals = () => ['SIGINT', 'SIGTERM', 'SIGQUIT'].map((s) => process.listenerCount(s));
    const resources = () => {
      const r = process.getActiveResourcesInfo();
      return {
        tcp: r.filter((x) => x.startsWith('TCP')).length,
        timers: r.filter((x) => x === 'Timeout').length,
      };
    };
    const out = vi.spyOn(process.stdout, 'write');
    const err = vi.spyOn(process.stderr, 'write');
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    await using tmp = await tmpDir();
    const root = await makeTree(tmp.path);
    await writeFile(path.join(root, 'large.bin'), Buffer.alloc(32 << 20, 3));
    const before = signals();
    const baseline = resources();
    const server = await FileServer.start({ protocol: 'scp', embedded: true, root, address: '127.0.0.1' });
    expect(signals()).toEqual(before);
    const outcomes: boolean[] = [];
    server.on('transfer', (e) => outcomes.push(e.ok));
    const { address: host, port, username: user = '', password = '' } = server.info;
    const client = await sshClient({ host, port, user, password });
    // An SFTP upload left open, an rcp upload stalled mid-body, an rcp download nobody reads.
    const sftp = await sftpOf(client);
    await new Promise<void>((resolve, reject) =>
      sftp.open('open.bin', 'w', (e, h) =>
        e ? reject(e) : sftp.write(h, Buffer.alloc(100), 0, 100, 0, () => resolve()),
      ),
    );
    const sink = new RcpPeer(await execOf(client, 'scp -t .'));
    expect(await sink.status()).toBe(0);
    sink.stream.write('C0644 50000 stalled.bin\n');
    expect(await sink.status()).toBe(0);
    sink.stream.write(Buffer.alloc(1000));
    const source = await execOf(client, 'scp -f large.bin');
    source.pause();
    source.write('\0\0'); // start, and accept the C record in advance; then read nothing
    await vi.waitFor(() => expect(server.activeTransfers).toBe(3));
    const t0 = performance.now();
    await server.stop({ graceMs: 300 });
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(290);
    expect(ms).toBeLessThan(2000);
    expect(outcomes).toEqual([false, false, false]);
    client.end();
    await delay(50);
    expect((await allFiles(root)).filter((n) => n.includes('open') || n.includes('stalled'))).toEqual([]);
    const after = resources();
    expect(after.tcp).toBe(baseline.tcp);
    expect(after.timers).toBeLessThanOrEqual(baseline.timers);
    const again = net.createServer();
    await new Promise<void>((resolve) => again.listen(port, '127.0.0.1', resolve));
    await new Promise((resolve) => again.close(resolve));
    await delay(100);
    process.off('unhandledRejection', onRejection);
    out.mockRestore();
    err.mockRestore();
    expect(out).not.toHaveBeenCalled();
    expect(err).not.toHaveBeenCalled();
    expect(rejections).toEqual([]);
  });
});
