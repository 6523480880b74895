/**
 * `serve` for every protocol, each with a real client written by others (tftp-hpa, curl,
 * OpenSSH scp through sshpass), uploads where the protocol has them, and Ctrl-C at the end.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { OPCODE } from '../../src/tftp/codec.js';
import { describeWith } from '../helpers/env.js';
import { tmpDir } from '../helpers/tmp.js';
import { RawPeer } from '../tftp/raw-peer.js';
import { expectCleanStop, portIsFree, type RunningCli, runCli, startCli, startCliText } from './cli.js';

const run = promisify(execFile);
const loopback = ['--address', '127.0.0.1', '--json', '--writable'];

interface Listening {
  port: number;
  username: string;
  password: string;
}

async function transferOf(cli: RunningCli, direction: string, file: string) {
  return cli.waitFor((e) => e.event === 'transfer' && e.direction === direction && e.path === file);
}

async function stopAndCheck(cli: RunningCli, port: number, transport: 'tcp' | 'udp' = 'tcp') {
  const result = await cli.stop('SIGINT');
  expect(result.code).toBe(0);
  expect(result.stderr).toBe('');
  if (transport === 'tcp') expect(await portIsFree(port)).toBe(true);
}

describeWith({ tools: ['tftp'] }, 'serve tftp', () => {
  it('tftp-hpa gets and puts; the iosxe example asks for port 69', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'ios.bin'), Buffer.alloc(5000, 7));
    const cli = await startCli(['serve', 'tftp', dir.path, ...loopback]);
    const { port } = cli.events[0] as unknown as Listening;
    expect(cli.events[0]).not.toHaveProperty('password');
    const local = path.join(dir.path, 'back.bin');
    await run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', 'ios.bin', local], {
      timeout: 20_000,
    });
    expect(await readFile(local)).toEqual(Buffer.alloc(5000, 7));
    expect(await transferOf(cli, 'download', 'ios.bin')).toMatchObject({
      protocol: 'tftp',
      bytes: 5000,
      ok: true,
    });
    await run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'put', local, 'pushed.bin'], {
      timeout: 20_000,
      cwd: dir.path,
    });
    expect(await transferOf(cli, 'upload', 'pushed.bin')).toMatchObject({ bytes: 5000, ok: true });
    await stopAndCheck(cli, port, 'udp');
  });

  it('text mode: the device examples say that the iosxe tftp client needs port 69', async () => {
    await using dir = await tmpDir();
    const cli = startCliText(['serve', 'tftp', dir.path, '--address', '127.0.0.1', '--os', 'iosxe,nxos']);
    await expect
      .poll(() => cli.text(), { timeout: 15_000 })
      .toContain('Transfers (Ctrl-C stops the server):');
    expect(cli.text()).toContain(`root      ${dir.path} (read-only; --writable accepts uploads)`);
    expect(cli.text()).toMatch(
      /iosxe {2}# The iosxe tftp client only uses port 69, but the server listens on \d+/,
    );
    expect(cli.text()).toMatch(
      /nxos {3}copy tftp:\/\/127\.0\.0\.1:\d+\/image\.bin bootflash:image\.bin vrf management/,
    );
    await expectCleanStop(cli);
  });
});

describe('serve tftp --single-port', () => {
  it('replies come from the listening port; other protocols refuse the flag', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'a.bin'), 'abc');
    const cli = await startCli([
      'serve',
      'tftp',
      dir.path,
      '--address',
      '127.0.0.1',
      '--json',
      '--single-port',
    ]);
    const { port } = cli.events[0] as unknown as Listening;
    await using peer = await RawPeer.open();
    peer.send({ opcode: OPCODE.RRQ, filename: 'a.bin', mode: 'octet', options: [] }, port);
    expect(await peer.next()).toMatchObject({ from: { port }, packet: { opcode: OPCODE.DATA, block: 1 } });
    peer.send({ opcode: OPCODE.ACK, block: 1 }, port);
    expect(await transferOf(cli, 'download', 'a.bin')).toMatchObject({ ok: true, bytes: 3 });
    await stopAndCheck(cli, port, 'udp');
    const refused = await runCli(['serve', 'http', dir.path, '--single-port']);
    expect([refused.code, refused.stderr]).toEqual([2, expect.stringContaining('--single-port is for tftp')]);
  });
});

describeWith({ tools: ['curl'] }, 'serve ftp', () => {
  it('curl downloads and uploads; the entry carries the passive window', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'cfg.txt'), 'hostname R1\n');
    const cli = await startCli(['serve', 'ftp', dir.path, ...loopback, '--passive-ports', '50100-50199']);
    const { port, username, password } = cli.events[0] as unknown as Listening;
    expect(cli.events[0]).toMatchObject({
      protocol: 'ftp',
      passivePorts: [expect.any(Number), expect.any(Number)],
    });
    const base = `ftp://127.0.0.1:${port}`;
    const got = await run('curl', ['-sS', '--fail', '-u', `${username}:${password}`, `${base}/cfg.txt`]);
    expect(got.stdout).toBe('hostname R1\n');
    expect(await transferOf(cli, 'download', 'cfg.txt')).toMatchObject({
      protocol: 'ftp',
      bytes: 12,
      ok: true,
    });
    await run('curl', [
      '-sS',
      '--fail',
      '-u',
      `${username}:${password}`,
      '-T',
      path.join(dir.path, 'cfg.txt'),
      `${base}/up/cfg2.txt`,
      '--ftp-create-dirs',
    ]);
    expect(await transferOf(cli, 'upload', 'up/cfg2.txt')).toMatchObject({ bytes: 12, ok: true });
    await stopAndCheck(cli, port);
  });
});

describeWith({ tools: ['curl'] }, 'serve https', () => {
  it('curl with the printed key pin downloads and uploads; the banner shows the certificate, the linux example pins the key', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'cfg.txt'), 'hostname R1\n');
    const cli = startCliText([
      'serve',
      'https',
      dir.path,
      '--address',
      '127.0.0.1',
      '--writable',
      '--os',
      'linux,iosxe',
    ]);
    await expect
      .poll(() => cli.text(), { timeout: 15_000 })
      .toContain('Transfers (Ctrl-C stops the server):');
    const text = cli.text();
    const fingerprint = /cert {6}SHA-256 ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})/.exec(text)?.[1];
    const pin = /key pin {3}(sha256\/\/\S+) \(curl --pinnedpubkey\)/.exec(text)?.[1];
    const port = /https:\/\/127\.0\.0\.1:(\d+)\//.exec(text)?.[1];
    const user = /username {2}(\S+)/.exec(text)?.[1];
    const password = /password {2}(\S+)/.exec(text)?.[1];
    expect([fingerprint, pin, port, user, password].every(Boolean)).toBe(true);
    expect(text).toContain(`--insecure --pinnedpubkey ${pin}`); // the linux example
    expect(text).toMatch(/iosxe {2}copy https:\/\/\S+:\S+@127\.0\.0\.1:\d+\/cfg\.txt bootflash:cfg\.txt/);
    const base = `https://127.0.0.1:${port}`;
    const pinned = ['-sS', '--fail', '--insecure', '--pinnedpubkey', pin!, '-u', `${user}:${password}`];
    const got = await run('curl', [...pinned, `${base}/cfg.txt`]);
    expect(got.stdout).toBe('hostname R1\n');
    await run('curl', [...pinned, '-T', path.join(dir.path, 'cfg.txt'), `${base}/up/cfg2.txt`]);
    expect(await readFile(path.join(dir.path, 'up', 'cfg2.txt'), 'utf8')).toBe('hostname R1\n');
    // get: the printed pin is what --fingerprint takes; without it the self-signed certificate is refused.
    const got2 = path.join(dir.path, 'got.txt');
    const url = `https://${user}:${password}@127.0.0.1:${port}/cfg.txt`;
    const refused = await runCli(['get', url, got2]);
    expect([refused.code, refused.stderr]).toEqual([
      expect.any(Number),
      expect.stringContaining('self-signed certificate'),
    ]);
    expect(refused.code).not.toBe(0);
    const viaPin = await runCli(['get', url, got2, '--fingerprint', pin!]);
    expect([viaPin.code, viaPin.stderr]).toEqual([0, '']);
    expect(await readFile(got2, 'utf8')).toBe('hostname R1\n');
    await expectCleanStop(cli);
  });
});

describeWith({ tools: ['curl', 'sshpass', 'scp'] }, 'serve sftp and scp', () => {
  it('sftp: curl downloads; the entry carries the host key fingerprints', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'show-tech.txt'), 'tech');
    const cli = await startCli(['serve', 'sftp', dir.path, ...loopback]);
    const { port, username, password } = cli.events[0] as unknown as Listening;
    expect(cli.events[0]).toMatchObject({ protocol: 'sftp', hostKeyFingerprints: expect.any(Object) });
    const got = await run('curl', [
      '-sS',
      '--fail',
      '--insecure',
      '-u',
      `${username}:${password}`,
      `sftp://127.0.0.1:${port}/show-tech.txt`,
    ]);
    expect(got.stdout).toBe('tech');
    expect(await transferOf(cli, 'download', 'show-tech.txt')).toMatchObject({
      protocol: 'sftp',
      bytes: 4,
      ok: true,
    });
    await stopAndCheck(cli, port);
  });

  it('scp --embedded: OpenSSH scp in legacy mode (-O) uploads', async () => {
    await using dir = await tmpDir();
    const local = path.join(dir.path, 'core.bin');
    await writeFile(local, Buffer.alloc(3000, 3));
    const root = path.join(dir.path, 'root');
    const cli = await startCli(['serve', 'scp', root, ...loopback, '--embedded']);
    const { port, username, password } = cli.events[0] as unknown as Listening;
    await run(
      'sshpass',
      [
        '-p',
        password,
        'scp',
        '-O',
        '-P',
        String(port),
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        'UserKnownHostsFile=/dev/null',
        local,
        `${username}@127.0.0.1:core.bin`,
      ],
      { timeout: 20_000 },
    );
    expect(await transferOf(cli, 'upload', 'core.bin')).toMatchObject({
      protocol: 'scp',
      bytes: 3000,
      ok: true,
    });
    expect(await readFile(path.join(root, 'core.bin'))).toEqual(Buffer.alloc(3000, 3));
    await stopAndCheck(cli, port);
  });

  it('scp without --embedded publishes this host account (port 22) and binds nothing', async () => {
    const cli = await startCli([
      'serve',
      'scp',
      '--address',
      '127.0.0.1',
      '--json',
      '--user',
      'lab',
      '--password',
      'lab-pw',
    ]);
    expect(cli.events[0]).toMatchObject({
      protocol: 'scp',
      port: 22,
      username: 'lab',
      embedded: false,
      readOnly: false,
    });
    await stopAndCheck(cli, 22, 'udp');
    const noAccount = await runCli(['serve', 'scp', '--address', '127.0.0.1']);
    expect(noAccount.code).toBe(2);
    expect(noAccount.stderr).toContain('give username and password');
  });
});
