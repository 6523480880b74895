/**
 * Other people's TFTP servers for interop tests: tftpd-hpa (`in.tftpd -L`) and atftpd (unpacked
 * beside tftpd-hpa, see machine.md; `ATFTPD` overrides its path), started in the foreground on a
 * loopback high port and ended by PID.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { chmod } from 'node:fs/promises';
import os from 'node:os';

export const ATFTPD = process.env.ATFTPD ?? '/opt/atftpd/usr/sbin/atftpd';

export async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const { port } = socket.address();
  socket.close();
  return port;
}

export interface PeerServer extends AsyncDisposable {
  readonly port: number;
  readonly process: ChildProcess;
}

/** Resolves once the server answers a request on `port` (any answer), or throws after 5 s. */
async function answering(port: number): Promise<void> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  try {
    const probe = Buffer.from('\x00\x01.no-such-probe\x00octet\x00', 'latin1');
    for (let i = 0; i < 100; i++) {
      socket.send(probe, port, '127.0.0.1');
      const answered = await Promise.race([
        once(socket, 'message').then(() => true),
        new Promise<boolean>((resolve) => setTimeout(resolve, 50, false)),
      ]);
      if (answered) return;
    }
    throw new Error(`no TFTP server answers on port ${port}`);
  } finally {
    socket.close();
  }
}

/** Starts tftpd-hpa or atftpd serving `root` (made world-writable: both drop privileges). */
export async function startPeerServer(kind: 'tftpd-hpa' | 'atftpd', root: string): Promise<PeerServer> {
  await chmod(root, 0o777);
  const port = await freeUdpPort();
  const user = os.userInfo().username;
  const group = execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim();
  const child =
    kind === 'tftpd-hpa'
      ? spawn('in.tftpd', ['-L', '-c', '-u', user, '-s', root, '-a', `127.0.0.1:${port}`], {
          stdio: 'ignore',
        })
      : spawn(
          ATFTPD,
          [
            '--daemon',
            '--no-fork',
            '--port',
            String(port),
            '--bind-address',
            '127.0.0.1',
            '--user',
            `${user}.${group}`,
            '--logfile',
            '/dev/null',
            root,
          ],
          { stdio: 'ignore' },
        );
  const exited = once(child, 'exit');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    }
  };
  try {
    await answering(port);
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, process: child, [Symbol.asyncDispose]: stop };
}
