/**
 * Where a {@link Sender} gets its bytes: a Buffer, a Readable, or random access
 * (`read(position, length)`), optionally converted to netascii. Random access reads large chunks
 * into two reused staging buffers, one being filled while the other is drained, so that small
 * blocks never mean small reads and a file is never held in memory whole.
 * @module
 */
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { NetasciiEncoder } from './netascii.js';

/** A sequential byte supply for the sender. */
export interface BlockSource {
  /**
   * Copies the next bytes into `target[offset, offset + length)`. Returns the count, which is
   * less than `length` only at the end. Synchronous when the bytes are at hand.
   */
  read(target: Buffer, offset: number, length: number): number | Promise<number>;
  /** Total bytes this source produces, when known in advance. */
  readonly size: number | undefined;
  /** Releases what the source holds (file handles, streams). Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Content with random access, the way fbtftp's ResponseData and async-tftp-rs's readers work.
 * `read` returns the bytes at `[position, position + length)`, fewer only at the end.
 */
export interface TftpRandomAccess {
  /** Size in bytes, when known (answers the tsize option). */
  readonly size?: number | undefined;
  /**
   * Returns up to `length` bytes starting at `position`; fewer (or none) only at the end of the
   * content, which ends the transfer.
   */
  read(position: number, length: number): Promise<Uint8Array> | Uint8Array;
  /**
   * Optional fast path: reads into `target[offset, offset + length)` and returns the count, like
   * `FileHandle.read`; used instead of `read` to save an allocation per chunk.
   */
  readInto?(target: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** Called once when the transfer ends, successfully or not. */
  close?(): void | Promise<void>;
}

/** A Buffer as a source; no copies beyond the one into the packet. */
export class BufferSource implements BlockSource {
  readonly #data: Uint8Array;
  #at = 0;

  constructor(data: Uint8Array) {
    this.#data = data;
  }

  get size(): number {
    return this.#data.length;
  }

  read(target: Buffer, offset: number, length: number): number {
    const n = Math.min(length, this.#data.length - this.#at);
    target.set(this.#data.subarray(this.#at, this.#at + n), offset);
    this.#at += n;
    return n;
  }

  async close(): Promise<void> {}
}

/** Random access read in big chunks ahead of the sender. */
export class RandomAccessSource implements BlockSource {
  readonly #content: TftpRandomAccess;
  readonly #chunk: number;
  readonly #spare: Buffer[] = [];
  #current: Buffer = Buffer.alloc(0);
  #currentOwned = false;
  #at = 0;
  #position = 0;
  #contentEnded = false;
  #inflight: Promise<void> | undefined;
  #ready: { data: Uint8Array; owned: boolean } | undefined;
  #failure: unknown;
  #closed = false;

  constructor(content: TftpRandomAccess, chunkSize: number) {
    this.#content = content;
    const size = content.size;
    this.#chunk = Math.max(1, size === undefined ? chunkSize : Math.min(chunkSize, size));
    this.#prefetch();
  }

  get size(): number | undefined {
    return this.#content.size;
  }

  read(target: Buffer, offset: number, length: number): number | Promise<number> {
    let done = 0;
    for (;;) {
      const left = this.#current.length - this.#at;
      if (left > 0) {
        const n = Math.min(left, length - done);
        this.#current.copy(target, offset + done, this.#at, this.#at + n);
        this.#at += n;
        done += n;
        if (done === length) {
          if (this.#at === this.#current.length) this.#release();
          return done;
        }
        continue;
      }
      this.#release();
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#ready) {
        const data = this.#ready.data;
        this.#current = Buffer.isBuffer(data)
          ? data
          : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
        this.#currentOwned = this.#ready.owned;
        this.#at = 0;
        this.#ready = undefined;
        this.#prefetch();
        continue;
      }
      if (!this.#inflight) return done; // the content has ended
      const sofar = done;
      return this.#inflight.then(() => {
        const more = this.read(target, offset + sofar, length - sofar);
        return typeof more === 'number' ? sofar + more : more.then((n) => sofar + n);
      });
    }
  }

  /** Gives the drained chunk's buffer back for the next read. */
  #release(): void {
    if (this.#currentOwned && this.#current.length > 0) {
      this.#spare.push(Buffer.from(this.#current.buffer, this.#current.byteOffset, this.#chunk));
    }
    this.#current = Buffer.alloc(0);
    this.#currentOwned = false;
    this.#at = 0;
  }

  #prefetch(): void {
    if (this.#inflight || this.#contentEnded || this.#closed) return;
    const content = this.#content;
    const position = this.#position;
    const size = content.size;
    const length = size === undefined ? this.#chunk : Math.min(this.#chunk, size - position);
    if (length <= 0) {
      this.#contentEnded = true;
      return;
    }
    const finished = (data: Uint8Array, owned: boolean): void => {
      this.#inflight = undefined;
      this.#position += data.length;
      if (data.length < length || (size !== undefined && this.#position >= size)) this.#contentEnded = true;
      if (data.length > 0) this.#ready = { data, owned };
    };
    const failed = (error: unknown): void => {
      this.#inflight = undefined;
      this.#contentEnded = true;
      this.#failure = error;
    };
    try {
      if (content.readInto) {
        const buf = this.#spare.pop() ?? Buffer.allocUnsafeSlow(this.#chunk);
        this.#inflight = content
          .readInto(buf, 0, length, position)
          .then((n) => finished(buf.subarray(0, n), true), failed);
      } else {
        // A result too long is the handler's failure like a throw, never an unhandled rejection.
        this.#inflight = Promise.resolve(content.read(position, length))
          .then((data) => {
            if (data.length > length)
              throw new RangeError(`read(${position}, ${length}) returned ${data.length} bytes`);
            finished(data, false);
          })
          .catch(failed);
      }
    } catch (error) {
      failed(error);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#inflight;
    await this.#content.close?.();
  }
}

/** A Readable as a source. Object-mode streams are refused. */
export class StreamSource implements BlockSource {
  readonly #stream: Readable;
  #chunk: Buffer | null = null;
  #at = 0;
  #ended = false;
  #failure: unknown;
  #wake: (() => void) | undefined;

  constructor(stream: Readable) {
    this.#stream = stream;
    const wake = () => {
      const fn = this.#wake;
      this.#wake = undefined;
      fn?.();
    };
    stream.on('readable', wake);
    stream.once('end', () => {
      this.#ended = true;
      wake();
    });
    stream.once('error', (error) => {
      this.#failure = error;
      wake();
    });
  }

  readonly size = undefined;

  read(target: Buffer, offset: number, length: number): number | Promise<number> {
    let done = 0;
    while (done < length) {
      if (this.#chunk && this.#at < this.#chunk.length) {
        const n = Math.min(this.#chunk.length - this.#at, length - done);
        this.#chunk.copy(target, offset + done, this.#at, this.#at + n);
        this.#at += n;
        done += n;
        continue;
      }
      if (this.#failure !== undefined) throw this.#failure;
      const next: unknown = this.#stream.read();
      if (next !== null) {
        if (typeof next === 'string') this.#chunk = Buffer.from(next);
        else if (next instanceof Uint8Array)
          this.#chunk = Buffer.from(next.buffer, next.byteOffset, next.length);
        else throw new TypeError('The stream must yield Buffers or strings, not objects');
        this.#at = 0;
        continue;
      }
      if (this.#ended || this.#stream.readableEnded) return done;
      const sofar = done;
      return new Promise<void>((resolve) => {
        this.#wake = resolve;
      }).then(() => {
        const more = this.read(target, offset + sofar, length - sofar);
        return typeof more === 'number' ? sofar + more : more.then((n) => sofar + n);
      });
    }
    return done;
  }

  async close(): Promise<void> {
    if (!this.#stream.destroyed) this.#stream.destroy();
  }
}

/** Converts another source to netascii on the fly (its size becomes unknown). */
export class NetasciiSource implements BlockSource {
  readonly #inner: BlockSource;
  readonly #encoder = new NetasciiEncoder();
  readonly #raw = Buffer.allocUnsafe(64 * 1024);
  #start = 0;
  #end = 0;
  #innerEnded = false;

  constructor(inner: BlockSource) {
    this.#inner = inner;
  }

  readonly size = undefined;

  read(target: Buffer, offset: number, length: number): number | Promise<number> {
    let written = 0;
    for (;;) {
      const step = this.#encoder.encode(
        this.#raw.subarray(this.#start, this.#end),
        target,
        offset + written,
        offset + length,
      );
      this.#start += step.read;
      written += step.written;
      if (written === length) return written;
      if (this.#start < this.#end) continue;
      if (this.#innerEnded) return written;
      const got = this.#inner.read(this.#raw, 0, this.#raw.length);
      if (typeof got === 'number') {
        this.#refilled(got);
        continue;
      }
      const sofar = written;
      return got.then((n) => {
        this.#refilled(n);
        const more = this.read(target, offset + sofar, length - sofar);
        return typeof more === 'number' ? sofar + more : more.then((m) => sofar + m);
      });
    }
  }

  #refilled(n: number): void {
    this.#start = 0;
    this.#end = n;
    if (n < this.#raw.length) this.#innerEnded = true;
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

/** Random access over an open file; `close()` closes the handle. */
export function fileContent(handle: FileHandle, size: number): TftpRandomAccess {
  let closed = false;
  return {
    size,
    async read(position, length) {
      const buf = Buffer.allocUnsafe(length);
      const { bytesRead } = await handle.read(buf, 0, length, position);
      return buf.subarray(0, bytesRead);
    },
    async readInto(target, offset, length, position) {
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(target, offset + done, length - done, position + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done;
    },
    async close() {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}
