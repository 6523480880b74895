/**
 * Byte-level reading and writing on an SSH channel for the rcp protocol: single status bytes,
 * control lines, and exactly-n-byte file bodies, with backpressure both ways and bounded
 * memory (lines are capped; file bodies are handed over chunk by chunk).
 * @internal
 * @module
 */
import type { Duplex } from 'node:stream';
import { FileServerError } from '../../errors.js';

/** Longest control line accepted (`C0644 <size> <name>` with a long name). */
const MAX_LINE = 8192;

/**
 * @internal
 * `gone` aborts when the SSH connection closes: ssh2 emits 'close' on an exec channel only once
 * its input has been read to the end, which a sender blocked on a full window never does.
 */
export class ChannelIo {
  readonly #stream: Duplex;
  readonly #gone: AbortSignal;
  #leftover: Buffer | undefined;
  #ended = false;
  #wake: (() => void) | undefined;

  constructor(stream: Duplex, gone: AbortSignal) {
    this.#stream = stream;
    this.#gone = gone;
    const wake = () => {
      const w = this.#wake;
      this.#wake = undefined;
      w?.();
    };
    const end = () => {
      this.#ended = true;
      wake();
    };
    stream.on('readable', wake);
    stream.on('end', end);
    stream.on('error', end);
    gone.addEventListener('abort', end, { once: true });
    stream.on('close', () => {
      gone.removeEventListener('abort', end);
      end();
    });
  }

  /** The next chunk of input, or undefined at the end of the channel. */
  async #next(): Promise<Buffer | undefined> {
    if (this.#gone.aborted) return undefined;
    if (this.#leftover && this.#leftover.length > 0) {
      const chunk = this.#leftover;
      this.#leftover = undefined;
      return chunk;
    }
    for (;;) {
      const chunk = this.#stream.read() as Buffer | null;
      if (chunk !== null) return chunk;
      if (this.#ended) return undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** One byte, or undefined at the end of the channel. */
  async readByte(): Promise<number | undefined> {
    const chunk = await this.#next();
    if (!chunk) return undefined;
    this.#leftover = chunk.subarray(1);
    return chunk[0];
  }

  /** A line without its `\n`; undefined at the end of the channel before any byte of it. */
  async readLine(): Promise<string | undefined> {
    const parts: Buffer[] = [];
    let length = 0;
    for (;;) {
      const chunk = await this.#next();
      if (!chunk) {
        if (length === 0) return undefined;
        throw new FileServerError('ERR_TRANSFER_ABORTED', 'The channel ended inside a control line');
      }
      const newline = chunk.indexOf(0x0a);
      const part = newline < 0 ? chunk : chunk.subarray(0, newline);
      parts.push(part);
      length += part.length;
      if (length > MAX_LINE) throw new FileServerError('ERR_TRANSFER_FAILED', 'Control line too long');
      if (newline >= 0) {
        this.#leftover = chunk.subarray(newline + 1);
        return Buffer.concat(parts).toString('utf8');
      }
    }
  }

  /** Passes exactly `size` bytes to `sink`, chunk by chunk; throws if the channel ends first. */
  async readInto(size: number, sink: (chunk: Buffer) => Promise<void> | void): Promise<void> {
    let left = size;
    while (left > 0) {
      const chunk = await this.#next();
      if (!chunk) throw new FileServerError('ERR_TRANSFER_ABORTED', 'The channel ended inside a file');
      const take = chunk.length > left ? chunk.subarray(0, left) : chunk;
      if (chunk.length > left) this.#leftover = chunk.subarray(left);
      left -= take.length;
      await sink(take);
    }
  }

  /** Writes, waiting while the channel's window is full; throws once the channel is gone. */
  async write(data: Buffer | string): Promise<void> {
    if (this.#gone.aborted || this.#stream.destroyed || this.#stream.writableEnded) {
      throw new FileServerError('ERR_TRANSFER_ABORTED', 'The channel is closed');
    }
    if (this.#stream.write(data)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.#stream.off('drain', done);
        this.#stream.off('close', done);
        this.#gone.removeEventListener('abort', done);
        resolve();
      };
      this.#stream.on('drain', done);
      this.#stream.on('close', done);
      this.#gone.addEventListener('abort', done, { once: true });
    });
    if (this.#gone.aborted) throw new FileServerError('ERR_TRANSFER_ABORTED', 'The connection closed');
  }
}
