/**
 * The ftp-srv FileSystem every session gets: every path goes through the shared path policy
 * (virtual-path for `..` and the current folder, then safe-path for the root and symlinks),
 * uploads go to a temporary file renamed into place only when the data connection ended
 * normally while the control connection is still there, and every RETR/STOR is reported as a
 * transfer. Errors reach the client without server-side paths.
 * @internal
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { chmod, mkdir, open, rename, rmdir, stat, unlink } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { type Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { FileServerError } from '../../errors.js';
import type { AtomicFile } from '../../files/atomic-file.js';
import { resolveForRead, resolveForWrite } from '../../files/safe-path.js';
import { clientMessage, listFolder, openUpload, resolveEntry } from '../../files/tree.js';
import { joinVirtual } from '../../files/virtual-path.js';
import type { ActiveTransfer, Peer } from '../../transfer.js';
import type { BackendContext } from '../backend.js';
import { FileSystemBase, type FtpConnection } from './ftp-srv.js';

/**
 * A control connection ending at the same moment as the data connection means the client died
 * (its kernel closes both), not that the upload is complete. This is how long an upload waits
 * for that second close before it commits.
 */
const COMMIT_SETTLE_MS = 25;

/** What the file system needs to know about its control connection. */
export interface SessionState {
  readonly peer: Peer;
  /** True once the control connection is gone. */
  readonly closed: boolean;
  /** Registers a running transfer's abort function; call the returned function when it ends. */
  track(abort: (reason: Error) => void): () => void;
}

type FileContext = Pick<
  BackendContext,
  'root' | 'readOnly' | 'overwrite' | 'maxFileSize' | 'transfers' | 'log'
>;

function aborted(message: string): FileServerError {
  return new FileServerError('ERR_TRANSFER_ABORTED', message);
}

/** Any failure as an Error whose message is safe to show the client (the cause is logged). */
function forClient(ctx: FileContext, operation: string, error: unknown): Error {
  if (!(error instanceof FileServerError)) ctx.log('%s failed: %s', operation, (error as Error)?.message);
  return error instanceof FileServerError ? error : new Error(clientMessage(error), { cause: error });
}

/** @internal */
export class JailedFileSystem extends FileSystemBase {
  readonly #ctx: FileContext;
  readonly #session: SessionState;

  constructor(connection: FtpConnection, ctx: FileContext, session: SessionState) {
    super(connection, { root: ctx.root, cwd: '/' });
    this.#ctx = ctx;
    this.#session = session;
  }

  async #run<T>(operation: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      throw forClient(this.#ctx, operation, error);
    }
  }

  #writable(): void {
    if (this.#ctx.readOnly) throw new FileServerError('ERR_READ_ONLY', 'This server is read-only');
  }

  #virtual(requested: string | undefined): string {
    return joinVirtual(this.cwd, requested ?? '.');
  }

  currentDirectory(): string {
    return this.cwd;
  }

  get(fileName: string): Promise<Stats & { name: string }> {
    return this.#run('stat', async () => {
      const target = await resolveForRead(this.#ctx.root, this.#virtual(fileName));
      return Object.assign(await stat(target.absolute), { name: fileName });
    });
  }

  list(folder = '.'): Promise<Array<Stats & { name: string }>> {
    return this.#run('list', async () => {
      const target = await resolveForRead(this.#ctx.root, this.#virtual(folder));
      const entries = await listFolder(this.#ctx.root, target.absolute);
      return entries.map((entry) => Object.assign(entry.stats, { name: entry.name }));
    });
  }

  chdir(folder = '.'): Promise<string> {
    return this.#run('cwd', async () => {
      const virtual = this.#virtual(folder);
      const target = await resolveForRead(this.#ctx.root, virtual);
      if (!(await stat(target.absolute)).isDirectory()) {
        throw new FileServerError('ERR_NOT_FOUND', `Not a folder: ${virtual}`);
      }
      this.cwd = virtual;
      return virtual;
    });
  }

  read(
    fileName: string,
    { start }: { start?: number } = {},
  ): Promise<{ stream: Readable; clientPath: string }> {
    return this.#run('download', async () => {
      const virtual = this.#virtual(fileName);
      const target = await resolveForRead(this.#ctx.root, virtual);
      const handle = await open(target.absolute, 'r');
      try {
        if (!(await handle.stat()).isFile())
          throw new FileServerError('ERR_NOT_FOUND', `Not a file: ${virtual}`);
      } catch (error) {
        await handle.close();
        throw error;
      }
      const transfer = this.#begin(target.relative, 'download');
      const stream = handle.createReadStream({ start: start ?? 0 });
      this.#trackDownload(stream, transfer);
      return { stream, clientPath: virtual };
    });
  }

  /**
   * A download is whole once the file was read to its end and the data socket flushed it (its
   * 'finish'); a socket that closes first, a read error or the session ending fail it.
   */
  #trackDownload(stream: Readable, transfer: ActiveTransfer): void {
    const socket = (this.connection.connector as { socket?: Socket | null }).socket ?? undefined;
    let readAll = false;
    const end = (error?: Error) => {
      untrack();
      transfer.end(error);
    };
    // Destroyed without an error: an 'error' here would reject a promise of ftp-srv's RETR
    // handler that may not have a handler yet (an unhandled Bluebird rejection, printed on stderr).
    const untrack = this.#session.track((reason) => {
      end(reason);
      stream.destroy();
    });
    stream.on('data', (chunk: Buffer) => transfer.add(chunk.length));
    stream.on('error', (error) => end(error)); // also keeps an unhandled 'error' from crashing us
    stream.once('end', () => {
      readAll = true;
      if (!socket) end();
    });
    socket?.once('finish', () => end(readAll ? undefined : aborted('Data connection ended early')));
    socket?.once('close', () => end(aborted('Data connection closed before the file was sent')));
  }

  write(fileName: string, { append = false, start }: { append?: boolean; start?: number } = {}) {
    return this.#run('upload', async () => {
      this.#writable();
      const virtual = this.#virtual(fileName);
      const { file, target } = await openUpload(this.#ctx.root, virtual, {
        overwrite: this.#ctx.overwrite,
        maxSize: this.#ctx.maxFileSize,
        keep: append ? 'all' : (start ?? 0),
      });
      const transfer = this.#begin(target.relative, 'upload');
      return { stream: this.#uploadStream(file, transfer), clientPath: virtual };
    });
  }

  #uploadStream(file: AtomicFile, transfer: ActiveTransfer): Writable {
    let committed = false;
    let abortedBy: Error | undefined;
    let untrack = () => {};
    const stream = new Writable({
      highWaterMark: 256 * 1024,
      write: (chunk: Buffer, _encoding, callback) => {
        file.write(chunk).then(() => {
          transfer.add(chunk.length);
          callback();
        }, callback);
      },
      final: (callback) => {
        this.#commit(file)
          .then(() => {
            committed = true;
            untrack();
            transfer.end();
            callback();
          })
          .catch(callback);
      },
      destroy: (error, callback) => {
        if (committed) return callback(error);
        untrack();
        const reason = error ?? abortedBy ?? aborted('Upload did not complete');
        transfer.end(reason);
        file.abort().then(
          () => callback(error),
          () => callback(error),
        );
      },
    });
    // Destroyed without an error, for the reason given at the download above.
    untrack = this.#session.track((reason) => {
      abortedBy = reason;
      stream.destroy();
    });
    // ftp-srv ends an upload by emitting 'close' on the stream once the data socket ends.
    stream.once('close', () => stream.end());
    stream.on('error', (error) => this.#ctx.log('upload %s: %s', file.finalPath, error.message));
    return stream;
  }

  async #commit(file: AtomicFile): Promise<void> {
    await delay(COMMIT_SETTLE_MS);
    if (this.#session.closed)
      throw aborted('The control connection closed: the client did not finish the upload');
    await file.commit();
  }

  delete(requested: string): Promise<void> {
    return this.#run('delete', async () => {
      this.#writable();
      const entry = await resolveEntry(this.#ctx.root, this.#virtual(requested));
      await (entry.stats.isDirectory() ? rmdir(entry.absolute) : unlink(entry.absolute));
    });
  }

  mkdir(requested: string): Promise<string> {
    return this.#run('mkdir', async () => {
      this.#writable();
      const virtual = this.#virtual(requested);
      const target = await resolveForWrite(this.#ctx.root, virtual, { mkdirs: true });
      await mkdir(target.absolute);
      return virtual;
    });
  }

  rename(from: string, to: string): Promise<void> {
    return this.#run('rename', async () => {
      this.#writable();
      const source = await resolveEntry(this.#ctx.root, this.#virtual(from));
      const target = await resolveForWrite(this.#ctx.root, this.#virtual(to));
      if (!this.#ctx.overwrite && (await stat(target.absolute).catch(() => undefined))) {
        throw new FileServerError('ERR_FILE_EXISTS', `File exists and overwrite is off: ${to}`);
      }
      await rename(source.absolute, target.absolute);
    });
  }

  chmod(requested: string, mode: number): Promise<void> {
    return this.#run('chmod', async () => {
      this.#writable();
      if (!Number.isInteger(mode)) throw new FileServerError('ERR_INVALID_OPTIONS', 'Mode must be octal');
      const target = await resolveForRead(this.#ctx.root, this.#virtual(requested));
      await chmod(target.absolute, mode & 0o777);
    });
  }

  getUniqueName(): string {
    return `upload-${randomBytes(8).toString('hex')}`;
  }

  #begin(relative: string, direction: 'download' | 'upload'): ActiveTransfer {
    return this.#ctx.transfers.begin({
      protocol: 'ftp',
      peer: this.#session.peer,
      path: relative,
      direction,
    });
  }
}
