/**
 * `testbed-fileserver serve`, run as a child process from the run's build, with curl as the
 * device: what it prints, one event per transfer, Ctrl-C and SIGTERM, the live testbed file.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { Testbed } from '../../src/testbed/testbed.js';
import { describeWith } from '../helpers/env.js';
import { curl } from '../helpers/http.js';
import { tmpDir } from '../helpers/tmp.js';
import { expectCleanStop, portIsFree, runCli, stalledDownload, startCli, startCliText } from './cli.js';

const loopback = ['--address', '127.0.0.1'];

describeWith({ tools: ['curl'] }, 'serve http', () => {
  it('--json: listening event, one event per transfer, SIGINT stops cleanly and frees the port', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'ios.bin'), 'image bytes');
    const cli = await startCli(['serve', 'http', dir.path, ...loopback, '--json']);
    const listening = cli.events[0]!;
    expect(listening).toMatchObject({
      event: 'listening',
      name: 'fileserver',
      protocol: 'http',
      address: '127.0.0.1',
      root: dir.path,
      readOnly: true,
    });
    const { url, username, password, port } = listening as {
      url: string;
      username: string;
      password: string;
      port: number;
    };
    expect(username).toMatch(/^\w{6,}$/);
    expect(password.length).toBeGreaterThanOrEqual(20);

    const got = await curl(['--fail', '-u', `${username}:${password}`, `${url}ios.bin`]);
    expect(got.stdout.toString()).toBe('image bytes');
    const event = await cli.waitFor((e) => e.event === 'transfer');
    expect(event).toMatchObject({
      server: 'fileserver',
      protocol: 'http',
      direction: 'download',
      path: 'ios.bin',
      bytes: 11,
      ok: true,
      peer: { address: '127.0.0.1' },
    });
    expect(event.bytesPerSecond).toBeGreaterThan(0);

    // Read-only unless --writable: an upload is refused and reported as failed.
    const put = await curl(['--fail', '-u', `${username}:${password}`, '-T', '-', `${url}x.bin`], {
      input: Buffer.from('x'),
    });
    expect(put.code).not.toBe(0);

    const result = await cli.stop('SIGINT');
    expect(result.code).toBe(0);
    expect(cli.events.map((e) => e.event).slice(-2)).toEqual(['stopping', 'stopped']);
    expect(result.stderr).toBe('');
    expect(await portIsFree(port)).toBe(true);
  });

  it('SIGTERM stops it cleanly too', async () => {
    const cli = await startCli(['serve', 'http', ...loopback, '--json'], {});
    const port = cli.events[0]!.port as number;
    const result = await cli.stop('SIGTERM');
    expect(result).toMatchObject({ code: 0, signal: null });
    expect(cli.events.at(-2)).toEqual({ event: 'stopping', signal: 'SIGTERM' });
    expect(await portIsFree(port)).toBe(true);
  });

  it('text: address, credentials, a testbed block that loads, device commands, a line per transfer', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'ios.bin'), 'image bytes');
    const cli = startCliText(['serve', 'http', dir.path, ...loopback, '--writable', '--name', 'images']);
    await expect
      .poll(() => cli.text(), { timeout: 15_000 })
      .toContain('Transfers (Ctrl-C stops the server):');
    const text = cli.text();
    const url = /listening on (http:\/\/\S+)/.exec(text)![1]!;
    const username = /username {2}(\S+)/.exec(text)![1]!;
    const password = /password {2}(\S+)/.exec(text)![1]!;
    expect(text).toContain(`root      ${dir.path} (read-write)`);
    expect(text).toContain('address   127.0.0.1 (explicit address 127.0.0.1)');

    // The testbed block is a valid testbed file in the pyATS shape.
    const yamlText = text.split('# Testbed entry')[1]!.split('\n').slice(1).join('\n').split('\n\n')[0]!;
    const testbed = Testbed.parse(yamlText);
    expect(testbed.server('images')).toMatchObject({
      protocol: 'http',
      address: '127.0.0.1',
      root: dir.path,
      username,
      password,
    });
    expect(parseYaml(yamlText).testbed.servers.images.credentials.default).toEqual({ username, password });

    // Device commands from the per-OS builders, naming a real file of the root.
    expect(text).toContain(`iosxe  copy http://${username}:${password}@127.0.0.1:`);
    expect(text).toMatch(/iosxe {2}copy http:\/\/\S+\/ios\.bin bootflash:ios\.bin/);
    expect(text).toMatch(/nxos {3}copy bootflash:ios\.bin http:\/\/\S+\/ios\.bin vrf management/);
    expect(text).toMatch(/linux {2}.*curl/);
    expect(text).not.toContain('tbfs-exit');

    const put = await curl(['--fail', '-u', `${username}:${password}`, '-T', '-', `${url}up/core.bin`], {
      input: Buffer.alloc(4096, 1),
    });
    expect(put.code).toBe(0);
    await expect
      .poll(() => cli.text(), { timeout: 10_000 })
      .toMatch(
        /\d\d:\d\d:\d\d images 127\.0\.0\.1:\d+ upload up\/core\.bin 4\.0 KiB in \S+ m?s \(\S+ \S+\/s\)/,
      );
    expect(await readFile(path.join(dir.path, 'up', 'core.bin'))).toEqual(Buffer.alloc(4096, 1));

    const result = await cli.stop();
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/SIGINT: stopping.*\nstopped\n$/);
  });

  it('--quiet prints only where it listens and the credentials', async () => {
    const cli = startCliText([
      'serve',
      'http',
      ...loopback,
      '--quiet',
      '--user',
      'lab',
      '--password',
      'secret-pw',
    ]);
    await expect.poll(() => cli.text(), { timeout: 15_000 }).toContain('password  secret-pw');
    const result = await cli.stop();
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n').filter(Boolean)).toEqual([
      expect.stringMatching(/^http server fileserver listening on http:\/\/127\.0\.0\.1:\d+\/$/),
      '  username  lab',
      '  password  secret-pw',
      'SIGINT: stopping (again to cut running transfers short)',
      'stopped',
    ]);
  });

  it('--output writes a live testbed file (mode 600) that get can use, and removes it on stop', async () => {
    await using dir = await tmpDir();
    const live = path.join(dir.path, 'live.yaml');
    await writeFile(path.join(dir.path, 'f.txt'), 'payload');
    const cli = await startCli([
      'serve',
      'http',
      dir.path,
      ...loopback,
      '--json',
      '--name',
      'art',
      '--output',
      live,
    ]);
    expect((await stat(live)).mode & 0o777).toBe(0o600);
    const testbed = await Testbed.load(live);
    expect(testbed.server('art')).toMatchObject({
      protocol: 'http',
      port: cli.events[0]!.port,
      username: cli.events[0]!.username,
    });
    const got = await runCli(['get', 'http://art/f.txt', path.join(dir.path, 'copy.txt'), '--testbed', live]);
    expect(got.code).toBe(0);
    expect(await readFile(path.join(dir.path, 'copy.txt'), 'utf8')).toBe('payload');
    await expectCleanStop(cli);
    await expect(stat(live)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('--testbed with --name takes the settings of that entry; the command line wins', async () => {
    await using dir = await tmpDir();
    await mkdir(path.join(dir.path, 'images'));
    const file = path.join(dir.path, 'testbed.yaml');
    await writeFile(
      file,
      'testbed:\n  servers:\n    images:\n      protocol: http\n      path: ./images\n      dynamic: true\n      writable: true\n      subnet: 127.0.0.0/8\n      credentials: { default: { username: lab, password: lab-pw } }\n',
    );
    const cli = await startCli([
      'serve',
      'http',
      '--testbed',
      file,
      '--name',
      'images',
      '--json',
      '--address',
      '127.0.0.1',
    ]);
    expect(cli.events[0]).toMatchObject({
      root: path.join(dir.path, 'images'),
      readOnly: false,
      username: 'lab',
      password: 'lab-pw',
      addressReason: 'explicit address 127.0.0.1',
    });
    await expectCleanStop(cli);

    const mismatch = await runCli(['serve', 'ftp', '--testbed', file, '--name', 'images']);
    expect(mismatch.code).toBe(7);
    expect(mismatch.stderr).toContain('serves http, not ftp');
  });

  it('--advertise, --max-file-size, --no-overwrite and --no-auth reach the server', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'kept.txt'), 'old');
    const cli = await startCli([
      'serve',
      'http',
      dir.path,
      ...loopback,
      '--json',
      '--writable',
      '--no-auth',
      '--no-overwrite',
      '--max-file-size',
      '1K',
      '--advertise',
      '203.0.113.7:8080',
    ]);
    const info = cli.events[0] as { bindPort: number; url: string };
    expect(cli.events[0]).toMatchObject({ address: '203.0.113.7', port: 8080, bindAddress: '127.0.0.1' });
    expect(info.url).toBe('http://203.0.113.7:8080/');
    expect(cli.events[0]).not.toHaveProperty('username');
    const base = `http://127.0.0.1:${info.bindPort}`;
    const small = await curl(['--fail', '-T', '-', `${base}/small.txt`], { input: Buffer.alloc(1024) });
    expect(small.code).toBe(0);
    const big = await curl(['--fail', '-T', '-', `${base}/big.txt`], { input: Buffer.alloc(1025) });
    expect(big.code).not.toBe(0);
    const clobber = await curl(['--fail', '-T', '-', `${base}/kept.txt`], { input: Buffer.from('new') });
    expect(clobber.code).not.toBe(0);
    expect(await readFile(path.join(dir.path, 'kept.txt'), 'utf8')).toBe('old');
    await expectCleanStop(cli);
    for (const bad of [
      ['--advertise', '1.2.3.4:0'],
      ['--advertise', '[::1]:x'],
      ['--max-file-size', '2Q'],
    ]) {
      const result = await runCli(['serve', 'http', ...loopback, ...bad]);
      expect(result.code, bad.join(' ')).toBe(2);
      expect(result.stderr).toContain('testbed-fileserver serve --help');
    }
  });

  it('a second Ctrl-C cuts a running transfer short instead of waiting for the grace period', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'big.bin'), Buffer.alloc(64 << 20));
    const cli = await startCli(['serve', 'http', dir.path, ...loopback, '--json', '--stop-grace', '60']);
    const { url, username, password } = cli.events[0] as { url: string; username: string; password: string };
    const device = await stalledDownload(`${url}big.bin`, username, password);
    process.kill(cli.child.pid!, 'SIGINT');
    await cli.waitFor((e) => e.event === 'stopping');
    const t0 = performance.now();
    const result = await cli.stop('SIGINT');
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(result.code).toBe(0);
    const aborted = cli.events.find((e) => e.event === 'transfer');
    expect(aborted).toMatchObject({ path: 'big.bin', ok: false });
    expect(await device.drain()).toBe(false);
  });
});
