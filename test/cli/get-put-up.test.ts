/**
 * `get`, `put` and `up` as child processes: copies by URL and by testbed name, the progress bar
 * under a pseudo terminal (util-linux `script`) and its absence on a pipe, every dynamic server
 * of a testbed file started and stopped.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Testbed } from '../../src/testbed/testbed.js';
import { describeWith } from '../helpers/env.js';
import { tmpDir } from '../helpers/tmp.js';
import { cliPath, expectCleanStop, portIsFree, runCli, startCli } from './cli.js';

const run = promisify(execFile);
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('get and put by URL', () => {
  it('put then get over http and ftp, with --verify, --sha256, --json and a folder destination', async () => {
    await using dir = await tmpDir();
    const data = Buffer.alloc(3 << 20, 0x5a);
    const local = path.join(dir.path, 'image.bin');
    await writeFile(local, data);
    for (const protocol of ['http', 'ftp']) {
      const root = path.join(dir.path, `${protocol}-root`);
      const cli = await startCli([
        'serve',
        protocol,
        root,
        '--address',
        '127.0.0.1',
        '--writable',
        '--json',
        '--user',
        'lab',
        '--password',
        'p@ss/word',
      ]);
      const port = cli.events[0]!.port as number;
      const base = `${protocol}://lab:${encodeURIComponent('p@ss/word')}@127.0.0.1:${port}`;

      const put = await runCli(['put', local, `${base}/in/`, '--verify']);
      expect(put.stderr).toBe('');
      expect(put.code).toBe(0);
      expect(put.stdout).toMatch(
        /^uploaded 3\.0 MiB in \S+ m?s \(\S+ \S+\/s\) \S+image\.bin -> \w+:\/\/lab:\*\*\*@127\.0\.0\.1:\d+\/in\/image\.bin, verified\n/,
      );
      expect(put.stdout).not.toContain('p@ss');
      expect(sha256(await readFile(path.join(root, 'in', 'image.bin')))).toBe(sha256(data));

      const back = path.join(dir.path, `${protocol}-back`);
      await run('mkdir', [back]);
      const get = await runCli(['get', `${base}/in/image.bin`, back, '--json', '--sha256', sha256(data)]);
      expect(get.code).toBe(0);
      const result = JSON.parse(get.stdout);
      expect(result).toMatchObject({
        event: 'copied',
        bytes: data.length,
        sha256: sha256(data),
        verified: true,
      });
      expect(get.stdout).not.toContain('p@ss');
      expect(sha256(await readFile(path.join(back, 'image.bin')))).toBe(sha256(data));

      // --no-overwrite keeps an existing local file.
      const again = await runCli(['get', `${base}/in/image.bin`, back, '--no-overwrite']);
      expect(again.code).toBe(8);
      await expectCleanStop(cli);
    }
  });

  it('--user and --password-file override the URL; --quiet prints nothing', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'f.txt'), 'payload');
    const pwFile = path.join(dir.path, 'pw');
    await writeFile(pwFile, 'from-file\n');
    const cli = await startCli([
      'serve',
      'http',
      dir.path,
      '--address',
      '127.0.0.1',
      '--json',
      '--user',
      'lab',
      '--password-file',
      pwFile,
    ]);
    const port = cli.events[0]!.port as number;
    expect(cli.events[0]).toMatchObject({ username: 'lab', password: 'from-file' });
    const out = path.join(dir.path, 'out.txt');
    const got = await runCli([
      'get',
      `http://nobody:wrong@127.0.0.1:${port}/f.txt`,
      out,
      '--user',
      'lab',
      '--password-file',
      pwFile,
      '--quiet',
    ]);
    expect(got).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(await readFile(out, 'utf8')).toBe('payload');
    await expectCleanStop(cli);
  });
});

describe('get into the current folder, and host keys', () => {
  it('get without a local name writes into the current folder; --fingerprint pins the SFTP host key', async () => {
    await using dir = await tmpDir();
    const root = path.join(dir.path, 'root');
    const here = path.join(dir.path, 'here');
    await run('mkdir', ['-p', root, here]);
    await writeFile(path.join(root, 'show-tech.txt'), 'tech');
    const cli = await startCli([
      'serve',
      'sftp',
      root,
      '--address',
      '127.0.0.1',
      '--json',
      '--user',
      'lab',
      '--password',
      'pw',
    ]);
    const { port, hostKeyFingerprints } = cli.events[0] as {
      port: number;
      hostKeyFingerprints: Record<string, string>;
    };
    const url = `sftp://lab:pw@127.0.0.1:${port}/show-tech.txt`;
    const got = await runCli(['get', url], { cwd: here });
    expect(got.stderr).toBe('');
    expect(got.code).toBe(0);
    expect(await readFile(path.join(here, 'show-tech.txt'), 'utf8')).toBe('tech');

    const pinned = await runCli([
      'get',
      url,
      path.join(dir.path, 'pinned.txt'),
      '--fingerprint',
      hostKeyFingerprints['ssh-ed25519']!,
    ]);
    expect(pinned.code).toBe(0);
    const wrong = await runCli([
      'get',
      url,
      path.join(dir.path, 'wrong.txt'),
      '--fingerprint',
      'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    ]);
    expect(wrong.code).toBe(9);
    expect(wrong.stderr).toMatch(/host key/i);
    await expectCleanStop(cli);
  });
});

describeWith({ tools: ['script'] }, 'progress bar', () => {
  it('draws rate, percentage and ETA on a terminal, and nothing on a pipe', async () => {
    await using dir = await tmpDir();
    const data = Buffer.alloc(8 << 20, 1);
    await writeFile(path.join(dir.path, 'big.bin'), data);
    const cli = await startCli([
      'serve',
      'http',
      dir.path,
      '--address',
      '127.0.0.1',
      '--json',
      '--user',
      'u',
      '--password',
      'p',
    ]);
    const url = `http://u:p@127.0.0.1:${cli.events[0]!.port}/big.bin`;
    const command = [process.execPath, cliPath(), 'get', url, path.join(dir.path, 'tty.bin')].join(' ');
    // script runs the command with a pseudo terminal as its stdout and copies what it drew.
    const { stdout } = await run('script', ['-qfec', command, '/dev/null'], {
      timeout: 30_000,
      env: { ...process.env, COLUMNS: '100' },
    });
    const frames = stdout.split('\r').filter((frame) => frame.includes('tty.bin') && frame.includes('%'));
    expect(frames.length).toBeGreaterThanOrEqual(2);
    expect(frames.at(-1)).toMatch(
      /tty\.bin \[#{10,}\] 100% {2}8\.0 MiB\/8\.0 MiB {2}\S+ \S+\/s {2}ETA \d+:\d\d/,
    );
    expect(stdout).toContain('\x1b[K');
    expect(stdout).toMatch(/\ndownloaded 8\.0 MiB in/);

    const piped = await runCli(['get', url, path.join(dir.path, 'pipe.bin')]);
    expect(piped.code).toBe(0);
    expect(piped.stdout).not.toContain('\r');
    expect(piped.stdout).not.toContain('%');
    expect(piped.stdout.split('\n')).toHaveLength(3); // summary, sha256, final newline

    const quietTty = await run(
      'script',
      ['-qfec', `${command.replace('tty.bin', 'tty2.bin')} --no-progress`, '/dev/null'],
      { timeout: 30_000 },
    );
    expect(quietTty.stdout).not.toContain('%');
    await expectCleanStop(cli);
  });
});

describe('up', () => {
  it('starts every dynamic server, writes the live testbed, serves get/put by name, and stops them all on Ctrl-C', async () => {
    await using dir = await tmpDir();
    await run('mkdir', ['-p', path.join(dir.path, 'images'), path.join(dir.path, 'uploads')]);
    await writeFile(path.join(dir.path, 'images', 'ios.bin'), 'image');
    const file = path.join(dir.path, 'testbed.yaml');
    await writeFile(
      file,
      [
        'testbed:',
        '  name: lab',
        '  servers:',
        '    images: { dynamic: true, protocol: http, address: 127.0.0.1, path: ./images, readOnly: true }',
        '    uploads: { dynamic: true, protocol: ftp, address: 127.0.0.1, path: ./uploads }',
        '    corp: { protocol: ftp, address: 198.51.100.20 }',
        'devices:',
        '  R1: { os: iosxe }',
        '',
      ].join('\n'),
    );
    const live = path.join(dir.path, 'live.yaml');
    const cli = await startCli(['up', file, '--json', '--output', live], { servers: 2 });
    const listening = cli.events.filter((e) => e.event === 'listening');
    expect(listening.map((e) => [e.name, e.protocol])).toEqual([
      ['images', 'http'],
      ['uploads', 'ftp'],
    ]);
    expect((await stat(live)).mode & 0o777).toBe(0o600);
    const testbed = await Testbed.load(live);
    expect(testbed.name).toBe('lab');
    expect([...testbed.servers.keys()]).toEqual(['images', 'uploads', 'corp']);
    expect(testbed.server('corp')).toEqual({ protocol: 'ftp', address: '198.51.100.20' });
    expect(testbed.server('uploads')).not.toHaveProperty('dynamic');
    expect(testbed.devices.get('R1')).toEqual({ os: 'iosxe' });

    const got = await runCli(['get', 'http://images/ios.bin', dir.path, '--testbed', live]);
    expect(got.code).toBe(0);
    expect(await readFile(path.join(dir.path, 'ios.bin'), 'utf8')).toBe('image');
    const put = await runCli([
      'put',
      path.join(dir.path, 'ios.bin'),
      'ftp://uploads/from-up/',
      '--testbed',
      live,
    ]);
    expect(put.code).toBe(0);
    expect(await readdir(path.join(dir.path, 'uploads', 'from-up'))).toEqual(['ios.bin']);
    const refused = await runCli([
      'put',
      path.join(dir.path, 'ios.bin'),
      'http://images/x.bin',
      '--testbed',
      live,
    ]);
    expect(refused.code).toBe(9); // read-only: 403
    await cli.waitFor((e) => e.event === 'transfer' && e.server === 'uploads' && e.direction === 'upload');

    const result = await cli.stop('SIGINT');
    expect(result.code).toBe(0);
    expect(cli.events.at(-1)).toEqual({ event: 'stopped' });
    for (const e of listening) expect(await portIsFree(e.port as number)).toBe(true);
    await expect(stat(live)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a server that cannot start stops the others and exits with its status', async () => {
    await using dir = await tmpDir();
    const file = path.join(dir.path, 'testbed.yaml');
    await writeFile(
      file,
      'testbed:\n  servers:\n    a: { dynamic: true, protocol: http, address: 127.0.0.1 }\n    b: { dynamic: true, protocol: http, subnet: 203.0.113.0/24 }\n',
    );
    const result = await runCli(['up', file]);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain('[ERR_NO_REACHABLE_ADDRESS]');
    expect(result.stdout).toBe('');
  });
});
