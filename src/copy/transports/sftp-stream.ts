/**
 * SFTP reads and writes with several requests in flight: one request per round trip (what
 * ssh2's read and write streams do) is latency-bound, a window of requests is not.
 * @internal
 * @module
 */
import type { Readable, Writable } from 'node:stream';
import type { SFTPWrapper } from 'ssh2';
import { endSink, writeChunk } from './streams.js';

/** Bytes per request: 32 KiB fits every server's packet limit. */
const CHUNK = 32 * 1024;
/** Requests in flight. */
const WINDOW = 16;

type Call = <T>(fn: (cb: (error: Error | undefined | null, value: T) => void) => void) => Promise<T>;

/**
 * Requests on `sftp` as promises that also reject when the session closes: ssh2 never answers
 * the requests still open when the connection goes (an abort ends it).
 */
function requests(sftp: SFTPWrapper): Call {
  let gone: Error | undefined;
  const open = new Set<(error: Error) => void>();
  const onClose = () => {
    gone ??= new Error('The SFTP session closed');
    for (const reject of open) reject(gone);
    open.clear();
  };
  sftp.once('close', onClose);
  return <T>(fn: (cb: (error: Error | undefined | null, value: T) => void) => void) =>
    new Promise<T>((resolve, reject) => {
      if (gone) return reject(gone);
      open.add(reject);
      fn((error, value) => {
        open.delete(reject);
        if (error) reject(error);
        else resolve(value);
      });
    });
}

/** Writes `source` to `path` (created or truncated), then closes the handle (servers commit on close). @internal */
export async function sftpWriteFile(sftp: SFTPWrapper, path: string, source: Readable): Promise<void> {
  const call = requests(sftp);
  const handle = await call<Buffer>((cb) => sftp.open(path, 'w', cb));
  let failure: unknown;
  const inflight = new Set<Promise<void>>();
  try {
    let position = 0;
    for await (const chunk of source as AsyncIterable<Buffer>) {
      for (let offset = 0; offset < chunk.length; offset += CHUNK) {
        const piece = chunk.subarray(offset, offset + CHUNK);
        const request = call<void>((cb) =>
          sftp.write(handle, piece, 0, piece.length, position, (e) => cb(e, undefined)),
        )
          .catch((error: unknown) => {
            failure ??= error;
          })
          .finally(() => inflight.delete(request));
        inflight.add(request);
        position += piece.length;
        if (inflight.size >= WINDOW) await Promise.race(inflight);
        if (failure) throw failure;
      }
    }
    await Promise.all(inflight);
    if (failure) throw failure;
  } finally {
    await Promise.all(inflight);
    await call<void>((cb) => sftp.close(handle, (e) => cb(e, undefined))).catch((error: unknown) => {
      failure ??= error;
    });
  }
  if (failure) throw failure;
}

/** Reads `size` bytes of `path` into `sink`, in order, and ends it. @internal */
export async function sftpReadFile(
  sftp: SFTPWrapper,
  path: string,
  size: number,
  sink: Writable,
): Promise<void> {
  const call = requests(sftp);
  const handle = await call<Buffer>((cb) => sftp.open(path, 'r', cb));
  const read = (position: number, length: number) => {
    const buffer = Buffer.allocUnsafe(length);
    return call<number>((cb) => sftp.read(handle, buffer, 0, length, position, (e, n) => cb(e, n))).then(
      (n) => buffer.subarray(0, n),
    );
  };
  const queue: Array<{ position: number; length: number; data: Promise<Buffer> }> = [];
  let next = 0;
  const fill = () => {
    while (next < size && queue.length < WINDOW) {
      const length = Math.min(CHUNK, size - next);
      const data = read(next, length);
      data.catch(() => {});
      queue.push({ position: next, length, data });
      next += length;
    }
  };
  try {
    fill();
    while (queue.length > 0) {
      const { position, length, data } = queue.shift()!;
      let piece = await data;
      await writeChunk(sink, piece);
      // A short read is legal in SFTP: fetch the rest of the range before going on.
      for (let got = piece.length; got < length; got += piece.length) {
        piece = await read(position + got, length - got);
        if (piece.length === 0) throw new Error(`the file ended after ${position + got} of ${size} bytes`);
        await writeChunk(sink, piece);
      }
      fill();
    }
    await endSink(sink);
  } catch (error) {
    sink.destroy(error as Error);
    throw error;
  } finally {
    await Promise.allSettled(queue.map((q) => q.data));
    await call<void>((cb) => sftp.close(handle, (e) => cb(e, undefined))).catch(() => {});
  }
}
