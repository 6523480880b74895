/**
 * Where a {@link Receiver} puts its bytes: a Writable, optionally through the netascii decoder.
 * A DATA payload is valid only while write() runs (the socket may receive the next datagram into
 * the same memory), so the sink copies it: into a buffer of its own pool when the Writable says
 * it releases chunks once written (our upload files do), else into a new Buffer. The Writable's
 * backpressure holds back our ACKs, which is how TFTP slows a sender down.
 * @module
 */
import type { Writable } from 'node:stream';
import { RELEASES_CHUNKS } from '../files/atomic-file.js';
import { NetasciiDecoder } from './netascii.js';

/** A byte sink for the receiver. */
export interface BlockSink {
  /** Takes one block's payload, which is valid only during the call. */
  write(data: Buffer): void;
  /** True while the sink has room for more; false until it drains once it is full. */
  readonly ready: boolean;
  /** Calls `fn` once the sink accepts more. */
  whenDrained(fn: () => void): void;
  /** Flushes and completes (for an upload: commits it). Rejects if that fails. */
  end(): Promise<void>;
  /** Discards what was written (an upload leaves nothing behind). */
  abort(error: Error): Promise<void>;
  /** Registers the handler of a failure that happens between calls (disk full...). */
  onError(fn: (error: unknown) => void): void;
}

/** A Writable as a sink: `end()` waits for 'finish', `abort()` destroys it and waits for 'close'. */
export class WritableSink implements BlockSink {
  readonly #writable: Writable;
  readonly #decoder: NetasciiDecoder | undefined;
  /** Buffers the Writable has released, when it does (RELEASES_CHUNKS); else undefined. */
  readonly #free: Buffer[] | undefined;
  #failure: unknown;
  #onError: ((error: unknown) => void) | undefined;

  constructor(writable: Writable, options: { netascii?: boolean } = {}) {
    this.#writable = writable;
    this.#decoder = options.netascii ? new NetasciiDecoder() : undefined;
    this.#free = (writable as Partial<Record<typeof RELEASES_CHUNKS, boolean>>)[RELEASES_CHUNKS]
      ? []
      : undefined;
    writable.on('error', (error) => {
      if (this.#failure !== undefined) return;
      this.#failure = error;
      this.#onError?.(error);
    });
  }

  write(data: Buffer): void {
    if (this.#failure !== undefined || data.length === 0) return; // a failure went through onError
    if (this.#decoder) {
      const decoded = this.#decoder.decode(data); // a Buffer of its own
      if (decoded.length > 0) this.#writable.write(decoded);
      return;
    }
    const free = this.#free;
    if (!free) {
      this.#writable.write(Buffer.from(data));
      return;
    }
    const spare = free.pop();
    const buffer = spare && spare.length >= data.length ? spare : Buffer.allocUnsafeSlow(data.length);
    data.copy(buffer);
    this.#writable.write(buffer.subarray(0, data.length), () => free.push(buffer));
  }

  get ready(): boolean {
    return !this.#writable.writableNeedDrain;
  }

  whenDrained(fn: () => void): void {
    if (!this.#writable.writableNeedDrain) fn();
    else this.#writable.once('drain', fn);
  }

  onError(fn: (error: unknown) => void): void {
    this.#onError = fn;
  }

  end(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.#failure !== undefined) {
        reject(this.#failure);
        return;
      }
      const w = this.#writable;
      const done = (error?: unknown) => {
        w.off('finish', ok);
        w.off('error', done);
        if (error !== undefined) reject(error);
        else resolve();
      };
      const ok = () => done();
      w.once('finish', ok);
      w.once('error', done);
      const tail = this.#decoder?.end();
      if (tail && tail.length > 0) w.write(tail);
      w.end();
    });
  }

  abort(error: Error): Promise<void> {
    const w = this.#writable;
    if (this.#failure === undefined) this.#failure = error;
    if (w.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      // A Writable that never emits 'close' (emitClose: false) must not hang the session.
      const timer = setTimeout(resolve, 2000).unref();
      w.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (!w.destroyed) w.destroy(error);
    });
  }
}
