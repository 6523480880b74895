/**
 * FTP with basic-ftp: SIZE for the total, RETR/STOR streamed, parent folders created on upload,
 * DELE to clean up a failed upload. Aborting closes the client. An entry of an FTPS server
 * (`tls: 'explicit'`) gets `AUTH TLS` before the login, trusting what the entry says (trust.ts).
 * @internal
 * @module
 */
import { addAbortListener } from 'node:events';
import type { TLSSocket } from 'node:tls';
import { Client, FTPError } from 'basic-ftp';
import { FileServerError } from '../../errors.js';
import type { ResolvedUrl } from '../url.js';
import { certificateToTrust } from './trust.js';
import type { Transport } from './types.js';

const TIMEOUT_MS = 30_000;

async function withClient<T>(
  target: ResolvedUrl,
  signal: AbortSignal,
  action: string,
  body: (client: Client) => Promise<T>,
): Promise<T> {
  signal.throwIfAborted();
  const client = new Client(TIMEOUT_MS);
  const probe = new Client(TIMEOUT_MS);
  const listener = addAbortListener(signal, () => {
    client.close();
    probe.close();
  });
  try {
    const secure = target.entry.tls === 'explicit';
    const ca = secure
      ? await certificateToTrust(
          target.entry,
          async () => {
            await probe.connect(target.host, target.port);
            await probe.useTLS({ rejectUnauthorized: false }); // checked against the pin, then closed
            return (probe.ftp.socket as TLSSocket).getPeerX509Certificate();
          },
          (why) => mapError(new Error(why), target, action) as Error,
        )
      : undefined;
    probe.close();
    await client.access({
      host: target.host,
      port: target.port,
      user: target.username ?? 'anonymous',
      password: target.password ?? '',
      ...(secure ? { secure: true, secureOptions: ca === undefined ? {} : { ca } } : {}),
    });
    return await body(client);
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw mapError(error, target, action);
  } finally {
    listener[Symbol.dispose]();
    client.close();
    probe.close();
  }
}

function mapError(error: unknown, target: ResolvedUrl, action: string): unknown {
  if (error instanceof FileServerError) return error;
  const reply = error instanceof FTPError ? error.code : undefined;
  // 550 is the standard reply; ftp-srv answers a missing file with 551 "No such file".
  const missing =
    reply === 550 || (reply !== undefined && /no such file|not found/i.test((error as Error).message));
  const code = missing && action !== 'upload to' ? 'ERR_NOT_FOUND' : 'ERR_TRANSFER_FAILED';
  const why = reply === 530 ? 'login refused' : (error as Error).message;
  return new FileServerError(code, `FTP ${action} ${target.displayUrl} failed: ${why}`, {
    cause: error,
    details: { url: target.displayUrl, ...(reply === undefined ? {} : { replyCode: reply }) },
  });
}

function split(path: string): { dir: string; name: string } {
  const slash = path.lastIndexOf('/');
  return { dir: slash < 0 ? '' : path.slice(0, slash) || '/', name: path.slice(slash + 1) };
}

/** @internal */
export const ftpTransport: Transport = {
  download(target, sink, { signal, onSize }) {
    return withClient(target, signal, 'download of', async (client) => {
      onSize(await client.size(target.path).catch(() => undefined));
      await client.downloadTo(sink, target.path);
    });
  },
  upload(target, source, { signal, onWriteStart }) {
    return withClient(target, signal, 'upload to', async (client) => {
      const { dir, name } = split(target.path);
      if (dir !== '') await client.ensureDir(dir);
      onWriteStart();
      await client.uploadFrom(source, name);
    });
  },
  async remove(target, signal) {
    await withClient(target, signal, 'removal of', (client) => client.remove(target.path));
  },
};
