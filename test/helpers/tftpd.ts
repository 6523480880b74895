/**
 * tftpd-hpa's in.tftpd as a real TFTP server to test clients against: foreground, loopback,
 * a free UDP port, uploads allowed. Dispose to end it (by PID).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { chmod } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';

export interface Tftpd extends AsyncDisposable {
  readonly address: string;
  readonly port: number;
  readonly root: string;
}

/** Serves `root` (made world-writable so that uploads can create files). */
export async function startTftpd(root: string, address = '127.0.0.1'): Promise<Tftpd> {
  await chmod(root, 0o777);
  const port = await freeUdpPort(address);
  const child: ChildProcess = spawn(
    'in.tftpd',
    ['-L', '-c', '-u', 'root', '-s', root, '-a', `${address}:${port}`],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let output = '';
  child.stderr?.on('data', (d: Buffer) => (output += d));
  await delay(200);
  if (child.exitCode !== null) throw new Error(`in.tftpd exited: ${output}`);
  return {
    address,
    port,
    root,
    async [Symbol.asyncDispose]() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await Promise.race([once(child, 'exit'), delay(5000)]);
      }
    },
  };
}

async function freeUdpPort(address: string): Promise<number> {
  const socket = createSocket('udp4');
  socket.bind(0, address);
  await once(socket, 'listening');
  const { port } = socket.address();
  socket.close();
  return port;
}
