/**
 * Passive-mode data ports. Every FTP server takes a window of its own out of the allowed range,
 * disjoint from the windows of the other servers in this process, so that many servers started
 * at once never race for the same ports (ftp-srv's own finder starts every server at the bottom
 * of one shared range and gives up after five tries). Inside its window a server binds ports
 * round-robin and skips those another process holds.
 * @internal
 * @module
 */
import type { Server } from 'node:net';
import { FileServerError } from '../../errors.js';

/** An inclusive port range. */
export interface PortRange {
  readonly min: number;
  readonly max: number;
}

const held = new Set<number>(); // first ports of the windows held in this process

/** The passive ports of one server. */
export class PassiveWindow implements PortRange {
  readonly min: number;
  readonly max: number;
  readonly #bound = new Set<number>();
  #next: number;
  #released = false;

  constructor(min: number, max: number) {
    this.min = min;
    this.max = max;
    this.#next = min;
  }

  /**
   * Makes `server` listen on a free port of the window on `host` and returns the port. Throws
   * the last bind error when every port of the window is busy.
   */
  async listen(server: Server, host: string): Promise<number> {
    const size = this.max - this.min + 1;
    let lastError: unknown;
    for (let tried = 0; tried < size; tried++) {
      const port = this.#next;
      this.#next = port === this.max ? this.min : port + 1;
      if (this.#bound.has(port)) continue;
      try {
        await listenOnce(server, host, port);
      } catch (error) {
        lastError = error;
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE' || code === 'EACCES') continue;
        throw error;
      }
      this.#bound.add(port);
      server.once('close', () => this.#bound.delete(port));
      return port;
    }
    throw (
      lastError ??
      new FileServerError('ERR_ADDRESS_IN_USE', `Every passive port ${this.min}-${this.max} is in use`)
    );
  }

  /** Gives the window back to the pool; idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    held.delete(this.min);
  }
}

function listenOnce(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      server.off('listening', onListening);
      reject(error);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ host, port, exclusive: true });
  });
}

/**
 * Reserves a window of `count` ports inside `range` that no other server of this process holds.
 * Windows are aligned slots of the range, picked at random so that separate processes (parallel
 * test workers) rarely pick the same one. Throws ERR_START_FAILED when every slot is taken.
 */
export function reservePassiveWindow(range: PortRange, count: number): PassiveWindow {
  const span = range.max - range.min + 1;
  const size = Math.min(count, span);
  const slots = Math.floor(span / size);
  const free: number[] = [];
  for (let slot = 0; slot < slots; slot++) {
    const first = range.min + slot * size;
    if (!held.has(first)) free.push(first);
  }
  const first = free[Math.floor(Math.random() * free.length)];
  if (first === undefined) {
    throw new FileServerError(
      'ERR_START_FAILED',
      `All ${slots} passive port windows of ${range.min}-${range.max} are held by other FTP servers in this ` +
        'process; widen ftp.passivePortRange or lower ftp.passivePortCount',
      { details: { passivePortRange: [range.min, range.max], passivePortCount: size } },
    );
  }
  held.add(first);
  return new PassiveWindow(first, first + size - 1);
}
