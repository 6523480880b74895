/**
 * vsftpd (Debian) as a real FTP server to test clients against: runs in the foreground on a
 * loopback address and a free port, logs in a throw-away local user. Needs root. Dispose to
 * end it (by PID) and remove the user.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import getPort from 'get-port';
import { createTestUser, type TestUser } from './users.js';

export interface Vsftpd extends AsyncDisposable {
  readonly address: string;
  readonly port: number;
  /** The FTP user; its home is where relative paths land. */
  readonly user: TestUser;
}

export async function startVsftpd(address = '127.0.0.1'): Promise<Vsftpd> {
  const user = await createTestUser();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tbfs-vsftpd-'));
  let child: ChildProcess | undefined;
  const cleanup = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([once(child, 'exit'), delay(5000)]);
    }
    await user[Symbol.asyncDispose]();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await mkdir('/var/run/vsftpd/empty', { recursive: true });
    const port = await getPort({ host: address });
    const config = path.join(dir, 'vsftpd.conf');
    await writeFile(
      config,
      [
        'listen=YES',
        'listen_ipv6=NO',
        `listen_address=${address}`,
        `listen_port=${port}`,
        'background=NO',
        'anonymous_enable=NO',
        'local_enable=YES',
        'write_enable=YES',
        'local_umask=022',
        'pasv_enable=YES',
        'seccomp_sandbox=NO',
        'secure_chroot_dir=/var/run/vsftpd/empty',
        'pam_service_name=vsftpd',
        'xferlog_enable=NO',
        'userlist_enable=NO',
        '',
      ].join('\n'),
    );
    child = spawn('/usr/sbin/vsftpd', [config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d));
    child.stderr?.on('data', (d: Buffer) => (output += d));
    for (let attempt = 0; ; attempt++) {
      if (child.exitCode !== null) throw new Error(`vsftpd exited: ${output}`);
      if (await connects(address, port)) break;
      if (attempt >= 100) throw new Error(`vsftpd did not listen within 10 s: ${output}`);
      await delay(100);
    }
    return { address, port, user, [Symbol.asyncDispose]: cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
