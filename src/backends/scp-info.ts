/**
 * Information-only SCP, as pyATS does it: nothing is started or bound. The testbed entry tells
 * devices to copy with scp to this host's own SSH server: the reachable address, port 22 (or the
 * one given), the root folder and the account's username and password (which FileServer requires
 * for this mode). Options that only a server of our own could enforce are refused, and `verify`
 * can check that an SSH server answers before the entry is published.
 * @internal
 * @module
 */
import net from 'node:net';
import { FileServerError } from '../errors.js';
import type { Backend, BackendContext, RunningBackend } from './backend.js';

/** Options under `scp` of {@link FileServerOptions} (information-only SCP). */
export interface ScpInfoOptions {
  /**
   * Connect to the address and port and wait for an SSH identification line before publishing
   * the entry, so a missing or stopped sshd is reported at start, not by a failing device copy
   * (default false: no socket at all, as pyATS).
   */
  verify?: boolean;
  /** How long `verify` waits (default 5000 ms). */
  verifyTimeoutMs?: number;
}

/** Reads the SSH identification line (`SSH-2.0-...`) of the server at host:port. */
function sshIdentification(
  host: string,
  port: number,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, signal });
    let text = '';
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no answer within ${timeoutMs} ms`)));
    socket.on('error', fail);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const line = text.split(/\r?\n/).find((l) => l.startsWith('SSH-'));
      if (line) {
        socket.destroy();
        resolve(line.trim());
      } else if (text.length > 8192) {
        fail(new Error('the server does not speak SSH'));
      }
    });
    socket.on('end', () => fail(new Error('the server closed the connection without an SSH greeting')));
  });
}

/** @internal */
export const scpInfoBackend: Backend = {
  listens: false,
  async start(ctx: BackendContext): Promise<RunningBackend> {
    const o = ctx.options as ScpInfoOptions;
    const fail = (message: string): never => {
      throw new FileServerError('ERR_INVALID_OPTIONS', message);
    };
    for (const key of Object.keys(o)) {
      if (key !== 'verify' && key !== 'verifyTimeoutMs')
        fail(`scp.${key} is not an option of information-only SCP`);
    }
    if (!ctx.credentials) {
      fail(
        'Information-only SCP publishes an account of this host: give username and password (or embedded: true)',
      );
    }
    // This host's sshd does the copying: it can enforce none of these.
    if (ctx.readOnly) fail('readOnly needs a server of our own: use embedded: true (or protocol: sftp)');
    if (ctx.maxFileSize !== undefined) fail('maxFileSize needs a server of our own: use embedded: true');
    if (!ctx.overwrite) fail('overwrite: false needs a server of our own: use embedded: true');
    const port = ctx.port || 22;
    const extra: Record<string, unknown> = { embedded: false };
    if (o.verify) {
      const timeout = o.verifyTimeoutMs ?? 5000;
      try {
        extra.sshIdentification = await sshIdentification(ctx.advertisedAddress, port, timeout, ctx.signal);
      } catch (error) {
        throw new FileServerError(
          'ERR_START_FAILED',
          `No SSH server answers at ${ctx.advertisedAddress} port ${port}: ${(error as Error).message}`,
          { cause: error },
        );
      }
    }
    return { port, extra, close: async () => {} };
  },
};
