/**
 * Where a {@link Receiver} puts its bytes: a Writable, optionally through the netascii decoder.
 * DATA payloads are handed over as they arrive (each datagram is its own Buffer, so nothing is
 * copied); the Writable's backpressure holds back our ACKs, which is how TFTP slows a sender down.
 * @module
 */
import type { Writable } from 'node:stream';
import { NetasciiDecoder } from './netascii.js';

/** A byte sink for the receiver. */
export interface BlockSink {
  /** Takes one block's payload (ownership passes). */
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
  #failure: unknown;
  #onError: ((error: unknown) => void) | undefined;

  constructor(writable: Writable, options: { netascii?: boolean } = {}) {
    this.#writable = writable;
    this.#decoder = options.netascii ? new NetasciiDecoder() : undefined;
    writable.on('error', (error) => {
      if (this.#failure !== undefined) return;
      this.#failure = error;
      this.#onError?.(error);
    });
  }

  write(data: Buffer): void {
    if (this.#failure !== undefined) return; // already reported through onError
    const chunk = this.#decoder ? this.#decoder.decode(data) : data;
    if (chunk.length > 0) this.#writable.write(chunk);
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
