/**
 * Every documented exit status of the CLI, each caused for real: a busy port, a port the user
 * may not bind, an address the host does not have, a missing file, a failed verification...
 */

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isRoot } from '../helpers/env.js';
import { tmpDir } from '../helpers/tmp.js';
import { cliPath, collect, expectCleanStop, runCli, startCli, systemNode } from './cli.js';

describe('CLI exit statuses', () => {
  it('2: no command, an unknown command, option or protocol, a malformed value', async () => {
    const none = await runCli([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toContain('Usage: testbed-fileserver <command>');
    for (const args of [
      ['frobnicate'],
      ['serve', 'http', '--bogus'],
      ['serve', 'gopher'],
      ['serve', 'http', '--port', '70000'],
      ['serve', 'http', '--address', '127.0.0.1', '--subnet', '127.0.0.0/8'],
      ['serve', 'http', '--user', 'only-a-user'],
      ['serve', 'tftp', '--user', 'u', '--password', 'p'],
      ['serve', 'http', '--max-file-size', 'lots'],
      ['serve', 'http', 'a', 'b'],
      ['get'],
      ['get', 'not a url'],
    ]) {
      const result = await runCli(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toMatch(
        /^testbed-fileserver: .+ \[ERR_(CLI_USAGE|INVALID_OPTIONS|UNSUPPORTED_PROTOCOL)\]\n$/,
      );
      expect(result.stdout).toBe('');
    }
  });

  it('0: --help for each command, help TOPIC, --version', async () => {
    for (const command of ['serve', 'up', 'get', 'put']) {
      const result = await runCli([command, '--help']);
      expect(result).toMatchObject({ code: 0, stderr: '' });
      expect(result.stdout).toContain(`Usage: testbed-fileserver ${command}`);
      expect((await runCli(['help', command])).stdout).toBe(result.stdout);
    }
    const version = await runCli(['--version']);
    expect(version).toMatchObject({ code: 0, stdout: '0.1.0\n' });
  });

  it('3: the port is busy (with --json also an error event)', async () => {
    await using busy = net.createServer().listen(0, '127.0.0.1');
    await once(busy, 'listening');
    const port = (busy.address() as net.AddressInfo).port;
    const result = await runCli([
      'serve',
      'http',
      '--address',
      '127.0.0.1',
      '--port',
      String(port),
      '--json',
    ]);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('EADDRINUSE');
    expect(result.stderr).toContain('[ERR_ADDRESS_IN_USE]');
    expect(JSON.parse(result.stdout)).toMatchObject({
      event: 'error',
      code: 'ERR_ADDRESS_IN_USE',
      exitCode: 3,
    });
  });

  it('4: a port below 1024 for an unprivileged user', async () => {
    // As root, run the CLI as nobody (65534); otherwise we are unprivileged ourselves.
    const result = await runCli(
      ['serve', 'http', '--address', '127.0.0.1', '--port', '81'],
      isRoot ? { node: systemNode, uid: 65534, gid: 65534, cwd: '/tmp' } : {},
    );
    expect(result.stderr).toContain('[ERR_PERMISSION_DENIED]');
    expect(result.code).toBe(4);
  });

  it('5: no local address in the subnet, or an address the host does not have', async () => {
    const subnet = await runCli(['serve', 'http', '--subnet', '203.0.113.0/24']);
    expect(subnet.code).toBe(5);
    expect(subnet.stderr).toContain('[ERR_NO_REACHABLE_ADDRESS]');
    expect(subnet.stderr).toContain('127.0.0.1 (lo)'); // it lists the host's addresses
    const foreign = await runCli(['serve', 'http', '--address', '203.0.113.9']);
    expect(foreign.code).toBe(5);
    expect(foreign.stderr).toContain('[ERR_ADDRESS_NOT_AVAILABLE]');
  });

  it('6: the root is not a folder', async () => {
    await using dir = await tmpDir();
    const file = path.join(dir.path, 'file.txt');
    await writeFile(file, 'x');
    const result = await runCli(['serve', 'http', file, '--address', '127.0.0.1']);
    expect(result.code).toBe(6);
    expect(result.stderr).toContain('[ERR_ROOT_INVALID]');
  });

  it('7: a missing or invalid testbed file, no dynamic server, an unknown server name', async () => {
    await using dir = await tmpDir();
    const missing = await runCli(['up', path.join(dir.path, 'nope.yaml')]);
    expect(missing.code).toBe(7);
    expect(missing.stderr).toContain('[ERR_TESTBED_INVALID]');
    const staticOnly = path.join(dir.path, 'static.yaml');
    await writeFile(staticOnly, 'testbed:\n  servers:\n    corp: { protocol: ftp, address: 198.51.100.1 }\n');
    const noDynamic = await runCli(['up', staticOnly]);
    expect(noDynamic.code).toBe(7);
    expect(noDynamic.stderr).toContain('has no server with dynamic: true');
    const unknown = await runCli(['get', 'http://images/x.bin', '--testbed', staticOnly]);
    expect(unknown.code).toBe(7);
    expect(unknown.stderr).toContain('No server "images" in the testbed (servers: corp)');
    const noCredentials = await runCli(['get', 'ftp://corp/x.bin', '--testbed', staticOnly]);
    expect(noCredentials.code).toBe(7);
    expect(noCredentials.stderr).toContain('[ERR_CREDENTIALS_MISSING]');
  });

  it('8, 9, 10: file missing, transfer failed, verification failed', async () => {
    await using dir = await tmpDir();
    await writeFile(path.join(dir.path, 'f.txt'), 'payload');
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
    const port = cli.events[0]!.port as number;
    const base = `http://u:p@127.0.0.1:${port}`;
    const out = path.join(dir.path, 'out.txt');

    const notFound = await runCli(['get', `${base}/missing.txt`, out]);
    expect(notFound.code).toBe(8);
    expect(notFound.stderr).toContain('[ERR_NOT_FOUND]');
    expect(notFound.stderr).not.toContain(':p@'); // the password is never printed
    const noLocal = await runCli(['put', path.join(dir.path, 'missing.txt'), `${base}/`]);
    expect(noLocal.code).toBe(8);

    const refused = await runCli(['get', `http://u:wrong@127.0.0.1:${port}/f.txt`, out]);
    expect(refused.code).toBe(9);
    expect(refused.stderr).toContain('login refused');
    expect(refused.stderr).not.toContain('wrong');

    const badHash = await runCli(['get', `${base}/f.txt`, out, '--sha256', '0'.repeat(64)]);
    expect(badHash.code).toBe(10);
    expect(badHash.stderr).toContain('[ERR_VERIFY_FAILED]');
    await expectCleanStop(cli);
  });

  it('130: Ctrl-C during get leaves no file behind', async () => {
    await using dir = await tmpDir();
    // A server that announces 10 MiB, sends 1 KiB and then stalls.
    const stalling = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(10 << 20) });
      res.write(Buffer.alloc(1024));
    });
    await using _server = stalling.listen(0, '127.0.0.1');
    await once(stalling, 'listening');
    const port = (stalling.address() as net.AddressInfo).port;
    const child = spawn(
      process.execPath,
      [cliPath(), 'get', `http://127.0.0.1:${port}/big.bin`, path.join(dir.path, 'big.bin')],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const result = collect(child, 30_000);
    await once(stalling, 'request');
    await new Promise((resolve) => setTimeout(resolve, 200));
    process.kill(child.pid!, 'SIGINT');
    const { code, stderr } = await result;
    expect(code).toBe(130);
    expect(stderr).toBe('testbed-fileserver: interrupted\n');
    expect(await readdir(dir.path)).toEqual([]);
    stalling.closeAllConnections();
  });
});
