/**
 * Netascii (RFC 1350, RFC 764): on the wire a line ends in CR LF and a bare CR is CR NUL; on this
 * host a line ends in LF. Both converters keep state across block boundaries, because a CR can
 * end one block with its LF or NUL at the start of the next, and both can be checkpointed so that
 * a sender can rewind to any block it still has to retransmit.
 * @module
 */

const CR = 0x0d;
const LF = 0x0a;
const NUL = 0x00;

/** Converter state: the second byte of a pair that did not fit, or -1. */
export type NetasciiCheckpoint = number;

/** Host text to netascii: LF becomes CR LF, CR becomes CR NUL. */
export class NetasciiEncoder {
  #pending = -1;

  /**
   * Converts bytes of `src` into `dst[dstStart, dstEnd)` until either is exhausted. Returns how
   * many source bytes were consumed and how many bytes were written. When a pair does not fit,
   * its CR is written and the second byte is kept for the next call.
   */
  encode(
    src: Uint8Array,
    dst: Uint8Array,
    dstStart = 0,
    dstEnd = dst.length,
  ): { read: number; written: number } {
    let out = dstStart;
    if (this.#pending !== -1 && out < dstEnd) {
      dst[out++] = this.#pending;
      this.#pending = -1;
    }
    let i = 0;
    if (this.#pending !== -1) return { read: 0, written: 0 };
    while (i < src.length && out < dstEnd) {
      const byte = src[i++]!;
      if (byte === LF || byte === CR) {
        dst[out++] = CR;
        const second = byte === LF ? LF : NUL;
        if (out < dstEnd) dst[out++] = second;
        else this.#pending = second;
      } else {
        dst[out++] = byte;
      }
    }
    return { read: i, written: out - dstStart };
  }

  /** True when a pair's second byte is waiting to be written. */
  get hasPending(): boolean {
    return this.#pending !== -1;
  }

  /** The state to restore when rewinding to this point. */
  checkpoint(): NetasciiCheckpoint {
    return this.#pending;
  }

  /** Rewinds to a state from {@link NetasciiEncoder.checkpoint}. */
  restore(state: NetasciiCheckpoint): void {
    this.#pending = state;
  }
}

/** Netascii to host text: CR LF becomes LF, CR NUL becomes CR; a lone CR is kept as is. */
export class NetasciiDecoder {
  #pendingCR = false;

  /** Converts one block; a CR at its end waits for the next block (or {@link NetasciiDecoder.end}). */
  decode(src: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(src.length + 1);
    let n = 0;
    let i = 0;
    if (this.#pendingCR && src.length > 0) {
      this.#pendingCR = false;
      const next = src[0]!;
      if (next === LF) {
        out[n++] = LF;
        i = 1;
      } else if (next === NUL) {
        out[n++] = CR;
        i = 1;
      } else {
        out[n++] = CR;
      }
    }
    for (; i < src.length; i++) {
      const byte = src[i]!;
      if (byte !== CR) {
        out[n++] = byte;
        continue;
      }
      if (i + 1 === src.length) {
        this.#pendingCR = true;
        break;
      }
      const next = src[i + 1]!;
      if (next === LF) {
        out[n++] = LF;
        i++;
      } else if (next === NUL) {
        out[n++] = CR;
        i++;
      } else {
        out[n++] = CR;
      }
    }
    return out.subarray(0, n);
  }

  /** What is left at the end of the transfer: a lone trailing CR is kept. */
  end(): Buffer {
    if (!this.#pendingCR) return Buffer.alloc(0);
    this.#pendingCR = false;
    return Buffer.from([CR]);
  }

  /** The state to restore when rewinding to this point. */
  checkpoint(): NetasciiCheckpoint {
    return this.#pendingCR ? CR : -1;
  }

  /** Rewinds to a state from {@link NetasciiDecoder.checkpoint}. */
  restore(state: NetasciiCheckpoint): void {
    this.#pendingCR = state === CR;
  }
}

/** Whole-buffer conversion, host text to netascii. */
export function toNetascii(text: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(text.length * 2);
  const { written } = new NetasciiEncoder().encode(text, out);
  return out.subarray(0, written);
}

/** Whole-buffer conversion, netascii to host text. */
export function fromNetascii(wire: Uint8Array): Buffer {
  const decoder = new NetasciiDecoder();
  return Buffer.concat([decoder.decode(wire), decoder.end()]);
}
