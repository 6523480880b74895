/**
 * {@link TftpServer}: RRQ and WRQ over IPv4 or IPv6 with every option of RFC 2347/2348/2349/7440,
 * a new port per transfer, limits, statistics and a virtual file system seam.
 * @module
 */
import { EventEmitter } from 'node:events';
import { realpath, stat } from 'node:fs/promises';
import net from 'node:net';
import { FileServerError, fromSystemError } from '../errors.js';
import { log } from '../log.js';
import { raceSignal } from '../util/abort.js';
import { decodePacket, encodeError, OPCODE, type RequestPacket } from './codec.js';
import { TFTP_ERROR, TftpError } from './errors.js';
import { rootHandler, type TftpHandler, type TftpRequest } from './handler.js';
import {
  KNOWN_OPTIONS,
  MAX_BLKSIZE,
  MAX_WINDOWSIZE,
  MIN_BLKSIZE,
  optionRecord,
  parseOptionValue,
} from './options.js';
import { ServerSession, type SessionEvents, type SessionSettings } from './server-session.js';
import { systemClock } from './session.js';
import {
  newServerCounters,
  type TftpServerCounters,
  type TftpTransferInfo,
  type TftpTransferStats,
} from './stats.js';
import { type Endpoint, type RemoteInfo, SharedSocket, type TftpPacketHook, UdpSocket } from './transport.js';

/** Options of a {@link TftpServer}. Give `root`, `handler`, or both (the handler wins). */
export interface TftpServerOptions {
  /** Address to bind; one explicit address, so replies leave from it (default `127.0.0.1`). */
  address?: string;
  /** Port to bind (default 0: a free port; 69 is the standard one). */
  port?: number;
  /** Folder to serve. */
  root?: string;
  /** Virtual file system (see {@link rootHandler} to fall back to a folder). */
  handler?: TftpHandler;
  /** Accept uploads into `root` (default true). */
  writable?: boolean;
  /** Uploads may replace existing files (default true); false answers ERROR 6. */
  overwrite?: boolean;
  /** Largest upload in bytes, checked against tsize up front and while receiving (ERROR 3). */
  maxFileSize?: number;
  /** Create missing folders on upload (default true). */
  createFolders?: boolean;
  /** Largest blksize granted (default 65464, the RFC 2348 maximum). Lower it for paths that cannot fragment. */
  maxBlksize?: number;
  /** Largest windowsize granted (default 64; gains flatten beyond it, RFC 7440 section 5). */
  maxWindowsize?: number;
  /** Options never granted, e.g. `['windowsize']` (names of {@link KNOWN_OPTIONS}). */
  refuseOptions?: readonly string[];
  /** Retransmission timeout before a round trip is measured, in ms (default 1000). */
  timeoutMs?: number;
  /** Floor of the adaptive retransmission timeout, in ms (default 100). */
  minTimeoutMs?: number;
  /** Ceiling of the retransmission timeout with backoff, in ms (default 5000). */
  maxTimeoutMs?: number;
  /**
   * Treat a client's RFC 2349 timeout as a floor: never retransmit sooner (default false: it is
   * the starting value and the ceiling, and the measured round trip drives the timeout).
   */
  strictTimeoutOption?: boolean;
  /** Consecutive timeouts before a transfer is abandoned (default 8). */
  retries?: number;
  /** A transfer that makes no progress for this long is ended (default 30 000 ms). */
  idleTimeoutMs?: number;
  /** How long the receiver of an upload stays to repeat its final ACK (default 2000 ms). */
  dallyMs?: number;
  /** Transfers running at once, in total (default 1024). */
  maxSessions?: number;
  /** Transfers running at once from one address (default 512). */
  maxSessionsPerPeer?: number;
  /** Largest request datagram accepted (default 512 as RFC 2347 says; up to 65468). */
  maxRequestSize?: number;
  /** Bind transfer sockets to ports in this inclusive range (for firewalls); default: any free port. */
  portRange?: readonly [number, number];
  /**
   * Serve every transfer from the listening port instead of a new port (TID) per transfer, told
   * apart by the peer's address and port (default false). For NAT, port forwarding (containers)
   * and firewalls that let only the one port through; RFC 1350 wants a new port, and clients
   * accept either. `portRange` does not apply.
   */
  singlePort?: boolean;
  /** Called for every datagram of every transfer; costs nothing when absent. */
  onPacket?: TftpPacketHook;
  /** Emit `'counters'` this often, in ms (default: never). */
  countersIntervalMs?: number;
}

/** Events of a {@link TftpServer}. It never emits `'error'`. */
export interface TftpServerEvents {
  /** Listening on this address and port. */
  listening: [address: Endpoint];
  /** Data started to flow for a transfer. */
  transferstart: [info: TftpTransferInfo];
  /** A transfer ended (every outcome, probes included: see `outcome`). */
  transfer: [stats: TftpTransferStats];
  /** Periodic counters (see `countersIntervalMs`). */
  counters: [counters: TftpServerCounters];
  /** Stopped; every socket and file is released. */
  close: [];
}

type ServerState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

interface ResolvedOptions {
  address: string;
  port: number;
  root: string | undefined;
  handler: TftpHandler | undefined;
  writable: boolean;
  overwrite: boolean;
  maxFileSize: number | undefined;
  createFolders: boolean;
  maxSessions: number;
  maxSessionsPerPeer: number;
  maxRequestSize: number;
  countersIntervalMs: number | undefined;
  singlePort: boolean;
  settings: Omit<SessionSettings, 'handler'>;
}

const DEFAULT_GRACE_MS = 2000;
/** Error replies from the listening port per second (reflection defence). */
const REFUSALS_PER_SECOND = 50;

/**
 * A TFTP server.
 *
 * ```ts
 * await using server = new TftpServer({ root: '/srv/tftp', address: '192.0.2.1', port: 69 });
 * await server.start();
 * server.on('transfer', (t) => console.log(t.filename, t.outcome, t.bytes));
 * ```
 */
export class TftpServer extends EventEmitter<TftpServerEvents> implements AsyncDisposable {
  readonly #o: ResolvedOptions;
  readonly #counters = newServerCounters();
  readonly #sessions = new Map<string, ServerSession>();
  /** Single-port mode: each transfer's view of the listening socket, by peer. */
  readonly #shared = new Map<string, SharedSocket>();
  readonly #perAddress = new Map<string, number>();
  #state: ServerState = 'new';
  #listener: UdpSocket | undefined;
  #handler: TftpHandler | undefined;
  #running = 0;
  #nextId = 1;
  #refusalSecond = 0;
  #refusals = 0;
  #countersTimer: NodeJS.Timeout | undefined;
  #changed: Array<() => void> = [];
  #stopping: Promise<void> | undefined;

  /** Validates the options; does no I/O. Throws ERR_INVALID_OPTIONS. */
  constructor(options: TftpServerOptions) {
    super();
    this.#o = resolveOptions(options);
  }

  /** Binds the listening socket; resolves with the address and port once listening. */
  async start(options: { signal?: AbortSignal } = {}): Promise<Endpoint> {
    if (this.#state !== 'new') {
      throw new FileServerError('ERR_INVALID_STATE', `start() called on a ${this.#state} TFTP server`);
    }
    this.#state = 'starting';
    try {
      this.#handler = this.#o.handler ?? (await raceSignal(this.#rootHandler(), options.signal));
      const listener = await raceSignal(
        // Single-port mode: every window of every transfer arrives here.
        UdpSocket.bind(this.#o.address, this.#o.port, {
          bufferBytes: this.#o.singlePort ? 8 << 20 : 1 << 20,
        }).catch((error: unknown) => {
          throw fromSystemError(
            error,
            'ERR_START_FAILED',
            `Cannot listen on ${this.#o.address} port ${this.#o.port}`,
          );
        }),
        options.signal,
      );
      if (options.signal?.aborted) {
        listener.close();
        throw options.signal.reason;
      }
      this.#listener = listener;
    } catch (error) {
      this.#state = 'stopped';
      throw error;
    }
    this.#listener.onMessage = (datagram, remote) => this.#onRequest(datagram, remote);
    if (this.#o.countersIntervalMs !== undefined) {
      this.#countersTimer = setInterval(
        () => this.emit('counters', this.counters),
        this.#o.countersIntervalMs,
      ).unref();
    }
    this.#state = 'running';
    const address = this.#listener.local;
    log.tftp('listening on %s port %d', address.address, address.port);
    this.emit('listening', address);
    return address;
  }

  async #rootHandler(): Promise<TftpHandler> {
    const o = this.#o;
    const root = o.root!;
    let real: string;
    try {
      real = await realpath(root);
      if (!(await stat(real)).isDirectory()) throw new Error('not a folder');
    } catch (error) {
      throw new FileServerError(
        'ERR_ROOT_INVALID',
        `TFTP root ${root} is not usable: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    return rootHandler(real, {
      writable: o.writable,
      overwrite: o.overwrite,
      maxFileSize: o.maxFileSize,
      createFolders: o.createFolders,
    });
  }

  /** The bound address and port; throws ERR_NOT_RUNNING before start() or after stop(). */
  get address(): Endpoint {
    if (this.#state !== 'running' || !this.#listener) {
      throw new FileServerError('ERR_NOT_RUNNING', `The TFTP server is ${this.#state}, not running`);
    }
    return this.#listener.local;
  }

  /** A snapshot of the counters. */
  get counters(): TftpServerCounters {
    return { ...this.#counters };
  }

  /** Transfers whose outcome is not known yet. */
  get activeTransfers(): number {
    return this.#running;
  }

  #onRequest(datagram: Buffer, remote: RemoteInfo): void {
    const request = datagram[0] === 0 && (datagram[1] === OPCODE.RRQ || datagram[1] === OPCODE.WRQ);
    if (this.#shared.size > 0 && !request) {
      // Single-port mode: everything else from a peer goes to its transfer, garbage included (an
      // ERROR from this port would end the peer's transfer).
      const view = this.#shared.get(`${remote.address}|${remote.port}`);
      if (view) {
        view.onMessage(datagram, remote);
        return;
      }
    }
    const counters = this.#counters;
    counters.requests++;
    if (this.#state !== 'running') return;
    const peer = {
      address: remote.address,
      port: remote.port,
      family: remote.family === 'IPv6' ? 'IPv6' : 'IPv4',
    } as const;
    if (datagram.length > this.#o.maxRequestSize) {
      counters.refused++;
      this.#refuse(peer, TFTP_ERROR.ILLEGAL_OPERATION, `Request larger than ${this.#o.maxRequestSize} bytes`);
      return;
    }
    let packet: ReturnType<typeof decodePacket>;
    try {
      packet = decodePacket(datagram);
    } catch (error) {
      counters.malformed++;
      this.#refuse(peer, TFTP_ERROR.ILLEGAL_OPERATION, (error as Error).message);
      return;
    }
    if (packet.opcode === OPCODE.ERROR) return; // never answer an ERROR
    if (packet.opcode !== OPCODE.RRQ && packet.opcode !== OPCODE.WRQ) {
      counters.refused++;
      this.#refuse(peer, TFTP_ERROR.UNKNOWN_TID, 'Unknown transfer ID');
      return;
    }
    const key = `${peer.address}|${peer.port}`;
    const existing = this.#sessions.get(key);
    if (existing) {
      if (!existing.ended && existing.datagram.equals(datagram)) {
        // A retransmitted request: its transfer is running, but our first answer may be lost.
        counters.duplicateRequests++;
        existing.repeatedRequest();
        return;
      }
      // Same port, new request: the peer has moved on (e.g. the UEFI size probe, then the real read).
      this.#detach(key, existing);
      existing.close();
    }
    const refusal = this.#check(packet, peer.address);
    if (refusal) {
      counters.refused++;
      this.#refuse(peer, refusal.code, refusal.message);
      return;
    }
    this.#startSession(key, packet, datagram, peer);
  }

  #check(packet: RequestPacket, address: string): { code: number; message: string } | undefined {
    const mode = packet.mode.toLowerCase();
    if (mode === 'mail') return { code: TFTP_ERROR.ILLEGAL_OPERATION, message: 'Mail mode is not supported' };
    if (mode !== 'octet' && mode !== 'netascii') {
      return {
        code: TFTP_ERROR.ILLEGAL_OPERATION,
        message: `Unknown transfer mode ${JSON.stringify(packet.mode)}`,
      };
    }
    if (packet.filename === '') return { code: TFTP_ERROR.ILLEGAL_OPERATION, message: 'Empty file name' };
    if (packet.opcode === OPCODE.WRQ && !this.#handler?.openWrite) {
      return { code: TFTP_ERROR.ACCESS_VIOLATION, message: 'Uploads are not allowed on this server' };
    }
    if (this.#running >= this.#o.maxSessions) {
      return { code: TFTP_ERROR.NOT_DEFINED, message: 'Too many transfers; try again later' };
    }
    if ((this.#perAddress.get(address) ?? 0) >= this.#o.maxSessionsPerPeer) {
      return {
        code: TFTP_ERROR.NOT_DEFINED,
        message: 'Too many transfers from this address; try again later',
      };
    }
    return undefined;
  }

  #startSession(
    key: string,
    packet: RequestPacket,
    datagram: Buffer,
    peer: Endpoint & { family: 'IPv4' | 'IPv6' },
  ): void {
    const options = optionRecord(packet.options);
    const request: Omit<TftpRequest, 'signal'> = {
      direction: packet.opcode === OPCODE.RRQ ? 'read' : 'write',
      filename: packet.filename,
      mode: packet.mode.toLowerCase() as 'octet' | 'netascii',
      options,
      peer,
      local: this.#listener!.local,
      size:
        packet.opcode === OPCODE.WRQ && options.tsize !== undefined
          ? parseOptionValue(options.tsize)
          : undefined,
    };
    const session = new ServerSession(
      this.#nextId++,
      request,
      packet.options,
      datagram,
      { ...this.#o.settings, handler: this.#handler! },
      this.#sessionEvents(key),
    );
    this.#sessions.set(key, session);
    this.#perAddress.set(peer.address, (this.#perAddress.get(peer.address) ?? 0) + 1);
    this.#running++;
    this.#counters.sessionsStarted++;
    this.#counters.sessionsActive++;
    if (log.tftp.enabled) {
      log.tftp(
        '#%d %s %s from %s:%d %o',
        session.id,
        request.direction,
        request.filename,
        peer.address,
        peer.port,
        options,
      );
    }
    void session.start();
  }

  #sessionEvents(key: string): SessionEvents {
    return {
      dataStart: (session) => {
        if (this.listenerCount('transferstart') > 0) this.emit('transferstart', session.info());
      },
      end: (session, stats) => this.#onEnd(session, stats),
      closed: (session) => {
        this.#detach(key, session);
        this.#counters.sessionsActive--;
        this.#notify();
      },
      refuse: (peer, code, message) => this.#refuse(peer, code, message),
      ...(this.#o.singlePort ? { shareListener: () => this.#share(key) } : {}),
    };
  }

  #share(key: string): SharedSocket {
    const view = new SharedSocket(this.#listener!, () => {
      if (this.#shared.get(key) === view) this.#shared.delete(key);
    });
    this.#shared.set(key, view);
    return view;
  }

  #onEnd(session: ServerSession, stats: TftpTransferStats): void {
    const c = this.#counters;
    this.#running--;
    const address = session.request.peer.address;
    const left = (this.#perAddress.get(address) ?? 1) - 1;
    if (left > 0) this.#perAddress.set(address, left);
    else this.#perAddress.delete(address);
    if (stats.outcome === 'ok') c.transfersOk++;
    else if (stats.outcome === 'probe') c.probes++;
    else c.transfersFailed++;
    if (stats.direction === 'read') c.bytesSent += stats.bytes;
    else c.bytesReceived += stats.bytes;
    c.retransmits += stats.retransmits;
    c.timeouts += stats.timeouts;
    c.strangers += stats.strangers;
    if (log.tftp.enabled) {
      log.tftp(
        '#%d %s %s: %s, %d bytes, %d blocks, %d retransmits, %d ms%s',
        stats.id,
        stats.direction,
        stats.filename,
        stats.outcome,
        stats.bytes,
        stats.blocks,
        stats.retransmits,
        Math.round(stats.durationMs),
        stats.error ? ` (${stats.error.message})` : '',
      );
    }
    this.emit('transfer', stats);
    this.#notify();
  }

  #detach(key: string, session: ServerSession): void {
    if (this.#sessions.get(key) === session) this.#sessions.delete(key);
  }

  #notify(): void {
    const waiting = this.#changed;
    this.#changed = [];
    for (const fn of waiting) fn();
  }

  /** ERROR from the listening port, rate-limited so that we never become a reflector. */
  #refuse(peer: Endpoint, code: number, message: string): void {
    const second = Math.floor(performance.now() / 1000);
    if (second !== this.#refusalSecond) {
      this.#refusalSecond = second;
      this.#refusals = 0;
    }
    if (++this.#refusals > REFUSALS_PER_SECOND || !this.#listener) return;
    const packet = encodeError(code, message);
    this.#listener.send(packet, packet.length, peer.port, peer.address);
  }

  /**
   * Stops accepting requests, lets running transfers finish for up to `graceMs` (default 2000),
   * then ends the rest (ERROR 0 to their peers) and releases every socket, timer and file.
   * Idempotent; concurrent calls share one promise.
   */
  stop(options: { graceMs?: number } = {}): Promise<void> {
    if (this.#state === 'new' || this.#state === 'stopped') {
      this.#state = 'stopped';
      return Promise.resolve();
    }
    this.#stopping ??= this.#stop(options.graceMs ?? DEFAULT_GRACE_MS);
    return this.#stopping;
  }

  async #stop(graceMs: number): Promise<void> {
    this.#state = 'stopping';
    this.#listener?.close();
    clearInterval(this.#countersTimer);
    if (graceMs > 0) await this.#until(() => this.#running === 0, graceMs);
    const reason = new TftpError('ERR_TRANSFER_ABORTED', 'The TFTP server is shutting down', {
      tftpCode: TFTP_ERROR.NOT_DEFINED,
    });
    const sessions = [...this.#sessions.values()];
    for (const session of sessions) session.abort(reason);
    await this.#until(() => this.#sessions.size === 0, 5000);
    await Promise.all(sessions.map((s) => s.released()));
    this.#state = 'stopped';
    log.tftp('stopped');
    this.emit('close');
  }

  /** Resolves once `done()` holds or after `ms`. */
  async #until(done: () => boolean, ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    while (!done()) {
      const left = deadline - performance.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#changed.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Same as {@link TftpServer.stop}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

function resolveOptions(options: TftpServerOptions): ResolvedOptions {
  const fail = (message: string): never => {
    throw new FileServerError('ERR_INVALID_OPTIONS', message);
  };
  if (typeof options !== 'object' || options === null) fail('TftpServer needs an options object');
  if (options.root === undefined && options.handler === undefined)
    fail('TftpServer needs a root folder or a handler');
  const int = (name: keyof TftpServerOptions, fallback: number, min: number, max: number): number => {
    const value = options[name] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      fail(`${name} must be an integer ${min}..${max}, got ${JSON.stringify(value)}`);
    }
    return value as number;
  };
  const address = options.address ?? '127.0.0.1';
  if (!net.isIP(address.replace(/%.*$/, '')))
    fail(`address must be an IP address, got ${JSON.stringify(address)}`);
  const range = options.portRange;
  if (range !== undefined) {
    const [low, high] = range;
    if (!Number.isInteger(low) || !Number.isInteger(high) || low < 1 || high > 65535 || low > high) {
      fail(`portRange must be [low, high] within 1..65535, got ${JSON.stringify(range)}`);
    }
  }
  const refuse = new Set((options.refuseOptions ?? []).map((name) => String(name).toLowerCase()));
  for (const name of refuse) {
    if (!(KNOWN_OPTIONS as readonly string[]).includes(name)) fail(`refuseOptions: unknown option ${name}`);
  }
  const minTimeoutMs = int('minTimeoutMs', 50, 1, 60_000);
  const maxTimeoutMs = int('maxTimeoutMs', 5000, minTimeoutMs, 600_000);
  const maxFileSize = options.maxFileSize;
  if (maxFileSize !== undefined && !(Number.isSafeInteger(maxFileSize) && maxFileSize >= 0)) {
    fail('maxFileSize must be a non-negative integer');
  }
  return {
    address,
    port: int('port', 0, 0, 65535),
    root: options.root,
    handler: options.handler,
    writable: options.writable ?? true,
    overwrite: options.overwrite ?? true,
    maxFileSize,
    createFolders: options.createFolders ?? true,
    maxSessions: int('maxSessions', 1024, 1, 1_000_000),
    maxSessionsPerPeer: int('maxSessionsPerPeer', 512, 1, 1_000_000),
    maxRequestSize: int('maxRequestSize', 512, 16, 65468),
    countersIntervalMs:
      options.countersIntervalMs === undefined ? undefined : int('countersIntervalMs', 0, 10, 86_400_000),
    singlePort: options.singlePort ?? false,
    settings: {
      limits: {
        maxBlksize: int('maxBlksize', MAX_BLKSIZE, MIN_BLKSIZE, MAX_BLKSIZE),
        maxWindowsize: int('maxWindowsize', 64, 1, MAX_WINDOWSIZE),
        refuse,
      },
      maxFileSize,
      timeoutMs: int('timeoutMs', 1000, 1, 600_000),
      minTimeoutMs,
      maxTimeoutMs,
      strictTimeoutOption: options.strictTimeoutOption ?? false,
      retries: int('retries', 8, 0, 1000),
      idleTimeoutMs: int('idleTimeoutMs', 30_000, 100, 86_400_000),
      dallyMs: int('dallyMs', 2000, 0, 600_000),
      portRange: range,
      hook: options.onPacket,
      clock: systemClock,
    },
  };
}
