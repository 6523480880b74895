/**
 * TFTP on our own {@link TftpClient}: blksize, windowsize and tsize negotiated (and dropped
 * when the server refuses them); tsize, when the server sends it, is the total.
 * @internal
 * @module
 */
import { FileServerError } from '../../errors.js';
import { TftpClient } from '../../tftp/client.js';
import type { ResolvedUrl } from '../url.js';
import type { Transport } from './types.js';

/** Block size and window that most servers accept and that fill a 1500-byte MTU. */
const SETTINGS = { blksize: 1428, windowsize: 8, tsize: true } as const;

function client(target: ResolvedUrl): TftpClient {
  return new TftpClient({ host: target.host, port: target.port, ...SETTINGS });
}

function mapError(error: unknown, target: ResolvedUrl, action: string): unknown {
  if (!(error instanceof FileServerError)) return error;
  // TFTP error 1 is "file not found".
  if (error.code === 'ERR_TFTP' && (error as FileServerError & { tftpCode?: number }).tftpCode === 1) {
    return new FileServerError(
      'ERR_NOT_FOUND',
      `TFTP ${action} ${target.displayUrl} failed: ${error.message}`,
      {
        cause: error,
      },
    );
  }
  return error;
}

/** @internal */
export const tftpTransport: Transport = {
  async download(target, sink, { signal, onSize }) {
    let announced = false;
    try {
      await client(target).get(target.path, sink, {
        signal,
        onProgress: (progress) => {
          if (announced) return;
          announced = true;
          onSize(progress.total);
        },
      });
    } catch (error) {
      throw mapError(error, target, 'download of');
    }
    if (!announced) onSize(undefined);
  },
  async upload(target, source, { size, signal, onWriteStart }) {
    onWriteStart();
    try {
      await client(target).put(source, target.path, { signal, ...(size === undefined ? {} : { size }) });
    } catch (error) {
      throw mapError(error, target, 'upload to');
    }
  },
};
