/**
 * OpenSSH's sshd as a real peer: run inside a test host's network namespace (a Linux "device"),
 * or on a loopback address, with a generated host key and a throw-away user with a random
 * password. Needs root, /usr/sbin/sshd and ssh-keygen. Dispose to end sshd (by PID) and remove
 * the user and files.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import getPort from 'get-port';
import type { TestHost } from './netns.js';
import { createTestUser } from './users.js';

const run = promisify(execFile);

export interface Sshd extends AsyncDisposable {
  /** Address sshd listens on. */
  readonly address: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  /** The user's home folder (where relative scp/sftp paths land), readable from the host. */
  readonly home: string;
  /** `SHA256:...` fingerprint of the host key. */
  readonly fingerprint: string;
  readonly pid: number;
  /** What sshd printed (it runs with -e). */
  log(): string;
}

/** Starts sshd in `host`'s namespace on its device address, or on `address` in this namespace. */
export async function startSshd(
  options: { host?: TestHost; address?: string; port?: number } = {},
): Promise<Sshd> {
  const address = options.host?.deviceAddress ?? options.address ?? '127.0.0.1';
  const port = options.port ?? (options.host ? 22 : await getPort({ host: address }));
  const user = await createTestUser();
  const { username, password, home } = user;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tbfs-sshd-'));
  let child: ChildProcess | undefined;
  const cleanup = async () => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([once(child, 'exit'), delay(5000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await user[Symbol.asyncDispose]();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_key')]);
    const { stdout: fp } = await run('ssh-keygen', ['-l', '-f', path.join(dir, 'host_key.pub')]);
    const fingerprint = fp.split(' ')[1]!;
    await mkdir('/run/sshd', { recursive: true });
    const config = path.join(dir, 'sshd_config');
    await writeFile(
      config,
      [
        `Port ${port}`,
        `ListenAddress ${address}`,
        `HostKey ${path.join(dir, 'host_key')}`,
        'PidFile none',
        'UsePAM no',
        'PasswordAuthentication yes',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication no',
        'PermitRootLogin no',
        'StrictModes no',
        `AllowUsers ${username}`,
        'PrintMotd no',
        'PrintLastLog no',
        'Subsystem sftp internal-sftp',
        'LogLevel INFO',
        'MaxStartups 50',
        '',
      ].join('\n'),
    );
    const args = ['-D', '-e', '-f', config];
    child = options.host ? options.host.spawn('/usr/sbin/sshd', args) : spawn('/usr/sbin/sshd', args);
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    await waitListening(address, port, child, () => output);
    const pid = child.pid!;
    return {
      address,
      port,
      username,
      password,
      home,
      fingerprint,
      pid,
      log: () => output,
      [Symbol.asyncDispose]: cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** Polls a TCP connect (inside the namespace when there is one), bounded to 10 s. */
async function waitListening(
  address: string,
  port: number,
  child: ChildProcess,
  output: () => string,
): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}: ${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: address, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await delay(100);
  }
  throw new Error(`sshd did not listen on ${address}:${port} within 10 s: ${output()}`);
}

/** Reads a file of the sshd user's home. */
export function readHome(sshd: Sshd, name: string): Promise<Buffer> {
  return readFile(path.join(sshd.home, name));
}
