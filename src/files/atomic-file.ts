/**
 * Uploads land whole or not at all: bytes go to a hidden temporary file beside the target, which
 * is renamed over the target only on {@link AtomicFile.commit}. Anything else (an error, an abort,
 * a server stop, a process crash) leaves the target untouched; abort() removes the temporary file.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, link, lstat, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { FileServerError } from '../errors.js';

const TEMP_SUFFIX = '.tbfs-part';

/**
 * Marks a Writable that never keeps a chunk once its write callback has run (it has written the
 * bytes by then), so the chunk's buffer may be reused. {@link AtomicFile.writable}'s have it.
 */
export const RELEASES_CHUNKS: unique symbol = Symbol('releasesChunks');

/** True for the temporary names of uploads in progress; listings hide them. */
export function isTempName(name: string): boolean {
  return name.startsWith('.') && name.endsWith(TEMP_SUFFIX);
}

/** Options of {@link AtomicFile.create}. */
export interface AtomicFileOptions {
  /** Replace an existing target (default true). When false, commit fails with ERR_FILE_EXISTS. */
  overwrite?: boolean;
  /** Refuse to grow beyond this many bytes with ERR_FILE_TOO_LARGE. */
  maxSize?: number | undefined;
  /** fsync before the rename (default false: the rename alone is atomic, fsync adds durability). */
  fsync?: boolean;
}

/** A file being written under a temporary name. */
export class AtomicFile {
  readonly finalPath: string;
  readonly tempPath: string;
  readonly #handle: FileHandle;
  readonly #options: AtomicFileOptions;
  #size = 0;
  #state: 'open' | 'committed' | 'aborted' = 'open';

  private constructor(finalPath: string, tempPath: string, handle: FileHandle, options: AtomicFileOptions) {
    this.finalPath = finalPath;
    this.tempPath = tempPath;
    this.#handle = handle;
    this.#options = options;
  }

  /** Opens a temporary file beside `finalPath` (whose folder must exist). */
  static async create(finalPath: string, options: AtomicFileOptions = {}): Promise<AtomicFile> {
    if (options.overwrite === false) await assertAbsent(finalPath);
    const tempPath = path.join(
      path.dirname(finalPath),
      `.${path.basename(finalPath)}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`,
    );
    // O_EXCL: never write through a pre-planted file or symlink of that name.
    const handle = await open(tempPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    return new AtomicFile(finalPath, tempPath, handle, options);
  }

  /** Bytes written so far (the highest offset reached). */
  get size(): number {
    return this.#size;
  }

  /** Writes `data` at `position` (default: at the current end). */
  async write(data: Uint8Array, position = this.#size): Promise<void> {
    if (this.#state !== 'open') throw new FileServerError('ERR_INVALID_STATE', 'Upload already finished');
    const end = position + data.byteLength;
    const max = this.#options.maxSize;
    if (max !== undefined && end > max) {
      throw new FileServerError('ERR_FILE_TOO_LARGE', `Upload exceeds the ${max}-byte limit`, {
        details: { maxFileSize: max },
      });
    }
    let done = 0;
    while (done < data.byteLength) {
      const { bytesWritten } = await this.#handle.write(data, done, data.byteLength - done, position + done);
      done += bytesWritten;
    }
    if (end > this.#size) this.#size = end;
  }

  /** Appends `chunks` in one system call where the kernel takes them whole. */
  async writev(chunks: readonly Uint8Array[]): Promise<void> {
    let bytes = 0;
    for (const chunk of chunks) bytes += chunk.byteLength;
    const max = this.#options.maxSize;
    if (this.#state !== 'open' || (max !== undefined && this.#size + bytes > max)) {
      for (const chunk of chunks) await this.write(chunk); // the same errors as write()
      return;
    }
    const { bytesWritten } = await this.#handle.writev(chunks as Uint8Array[], this.#size);
    this.#size += bytesWritten;
    if (bytesWritten === bytes) return;
    // A short write (rare for regular files): the rest, chunk by chunk.
    let skip = bytesWritten;
    for (const chunk of chunks) {
      if (skip >= chunk.byteLength) {
        skip -= chunk.byteLength;
        continue;
      }
      await this.write(chunk.subarray(skip));
      skip = 0;
    }
  }

  /**
   * A Writable that appends to the file, buffered chunks in one `writev`. With `commit`, finishing
   * it commits the file and destroying it aborts it; otherwise the caller does either.
   */
  writable(options: { commit?: boolean } = {}): Writable {
    const writable = new Writable({
      highWaterMark: 1 << 20,
      write: (chunk: Buffer, _encoding, callback) => {
        this.write(chunk).then(() => callback(), callback);
      },
      writev: (chunks, callback) => {
        this.writev(chunks.map((c) => c.chunk as Buffer)).then(() => callback(), callback);
      },
      ...(options.commit
        ? {
            final: (callback: (error?: Error | null) => void) => {
              this.commit().then(() => callback(), callback);
            },
            destroy: (error: Error | null, callback: (error?: Error | null) => void) => {
              this.abort().then(
                () => callback(error),
                () => callback(error),
              );
            },
          }
        : {}),
    });
    return Object.assign(writable, { [RELEASES_CHUNKS]: true });
  }

  /** Moves the complete file under its final name. */
  async commit(): Promise<void> {
    if (this.#state !== 'open') throw new FileServerError('ERR_INVALID_STATE', 'Upload already finished');
    this.#state = 'committed';
    try {
      if (this.#options.fsync) await this.#handle.datasync();
      await this.#handle.close();
      if (this.#options.overwrite === false) {
        // link() fails with EEXIST if the target appeared meanwhile: no clobbering, ever.
        await link(this.tempPath, this.finalPath);
        await unlink(this.tempPath);
      } else {
        await rename(this.tempPath, this.finalPath);
      }
    } catch (error) {
      await unlink(this.tempPath).catch(() => {});
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new FileServerError('ERR_FILE_EXISTS', `File exists: ${path.basename(this.finalPath)}`, {
          cause: error,
        });
      }
      throw error;
    }
  }

  /** Discards the temporary file; a no-op after commit or a previous abort. */
  async abort(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'aborted';
    await this.#handle.close().catch(() => {});
    await unlink(this.tempPath).catch(() => {});
  }

  /** Aborts unless committed, so `await using` never leaves a temporary file behind. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.abort();
  }
}

async function assertAbsent(file: string): Promise<void> {
  if (
    await lstat(file).then(
      () => true,
      () => false,
    )
  ) {
    throw new FileServerError('ERR_FILE_EXISTS', `File exists and overwrite is off: ${path.basename(file)}`);
  }
}
