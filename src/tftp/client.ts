/**
 * {@link TftpClient}: get and put, to and from a path, a stream or a Buffer, with blksize,
 * windowsize, tsize and timeout options, falling back to plain RFC 1350 when a server refuses
 * them (ERROR 8) or ignores them.
 * @module
 */
import { lookup } from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import { open } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { FileServerError } from '../errors.js';
import { AtomicFile } from '../files/atomic-file.js';
import { log } from '../log.js';
import { decodePacket, encodeError, encodePacket, OPCODE, type TftpPacket } from './codec.js';
import { TFTP_ERROR, TftpError } from './errors.js';
import {
  acceptOack,
  MAX_BLKSIZE,
  MAX_WINDOWSIZE,
  MIN_BLKSIZE,
  optionRecord,
  PLAIN_PARAMS,
  type RequestedOptions,
  requestOptionList,
  type TransferParams,
} from './options.js';
import { Receiver } from './receiver.js';
import { type RetransmitTimeout, transferRto } from './rto.js';
import { Sender } from './sender.js';
import { socketBufferBytes } from './server-session.js';
import { Alarm, type SessionClock, type SessionResult, systemClock } from './session.js';
import { type BlockSink, WritableSink } from './sink.js';
import {
  type BlockSource,
  BufferSource,
  fileContent,
  NetasciiSource,
  RandomAccessSource,
  StreamSource,
} from './source.js';
import type { TftpTransferStats } from './stats.js';
import { type Endpoint, type TftpPacketHook, TransferChannel, UdpSocket } from './transport.js';

/** Per-transfer settings; each can be given to the constructor or to one get()/put(). */
export interface TftpTransferSettings {
  /** Block size to ask for, 8..65464 (default 1468: one Ethernet frame). 512 asks for none. */
  blksize?: number;
  /** Window size to ask for, 1..65535 (default 16). 1 asks for none. */
  windowsize?: number;
  /** Ask for / announce the transfer size and check it (default true). */
  tsize?: boolean;
  /** Ask the server to retransmit after this many seconds (RFC 2349 timeout, 1..255; default: not asked). */
  timeout?: number;
  /** Send no options at all: plain RFC 1350 (default false). */
  noOptions?: boolean;
  /** Transfer mode (default `octet`). */
  mode?: 'octet' | 'netascii';
  /** Consecutive timeouts before giving up (default 8). */
  retries?: number;
  /** Retransmission timeout before a round trip is measured, in ms (default 1000). */
  timeoutMs?: number;
  /** Floor of the adaptive retransmission timeout, in ms (default 100). */
  minTimeoutMs?: number;
  /** Ceiling of the retransmission timeout with backoff, in ms (default 5000). */
  maxTimeoutMs?: number;
  /** After the final ACK of a get, stay this long to repeat it if the server asks (default 2000 ms; in the background). */
  dallyMs?: number;
}

/** Options of a {@link TftpClient}. */
export interface TftpClientOptions extends TftpTransferSettings {
  /** Server name or address. */
  host: string;
  /** Server port (default 69). */
  port?: number;
  /** Local address to bind (default: any). */
  localAddress?: string;
  /** Called for every datagram sent or received; costs nothing when absent. */
  onPacket?: TftpPacketHook;
}

/** Progress of one transfer. */
export interface TftpProgress {
  /** `read` for a get (download), `write` for a put (upload). */
  readonly direction: 'read' | 'write';
  /** The remote file name. */
  readonly filename: string;
  /** File bytes moved so far (acknowledged by the server on a put). */
  readonly bytes: number;
  /** Total size, when known (tsize). */
  readonly total: number | undefined;
}

/** Options of one {@link TftpClient.get} or {@link TftpClient.put}. */
export interface TftpCallOptions extends TftpTransferSettings {
  /** Aborts the transfer (the server gets ERROR 0); the call rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called as data moves (after every block). */
  onProgress?: (progress: TftpProgress) => void;
  /** put() from a stream: the size to announce with tsize, when known. */
  size?: number;
}

/** Events of a {@link TftpClient}. */
export interface TftpClientEvents {
  /** A transfer made progress (only computed while someone listens). */
  progress: [progress: TftpProgress];
  /** A transfer ended, successfully or not. */
  transfer: [stats: TftpTransferStats];
}

interface ResolvedSettings {
  requested: RequestedOptions;
  useOptions: boolean;
  mode: 'octet' | 'netascii';
  retries: number;
  timeoutMs: number;
  minTimeoutMs: number;
  maxTimeoutMs: number;
  dallyMs: number;
}

type Local = { kind: 'sink'; sink: BlockSink } | { kind: 'source'; source: BlockSource };

/**
 * A TFTP client. One instance can run any number of transfers at once.
 *
 * ```ts
 * const client = new TftpClient({ host: '192.0.2.10', blksize: 1468, windowsize: 16 });
 * await client.get('boot/ios.bin', './ios.bin');
 * await client.put(Buffer.from('hostname r1\n'), 'configs/r1.cfg');
 * ```
 */
export class TftpClient extends EventEmitter<TftpClientEvents> {
  readonly #o: TftpClientOptions;
  readonly #clock: SessionClock = systemClock;
  #nextId = 1;

  /** Validates the options; does no I/O. Throws ERR_INVALID_OPTIONS. */
  constructor(options: TftpClientOptions) {
    super();
    if (typeof options?.host !== 'string' || options.host === '') {
      throw new FileServerError('ERR_INVALID_OPTIONS', 'TftpClient needs a host');
    }
    if (
      options.port !== undefined &&
      !(Number.isInteger(options.port) && options.port >= 1 && options.port <= 65535)
    ) {
      throw new FileServerError('ERR_INVALID_OPTIONS', `port must be 1..65535, got ${options.port}`);
    }
    resolveSettings(options, {});
    this.#o = { ...options };
  }

  /**
   * Downloads `remote` into `local`: a path (written to a temporary file, renamed into place once
   * complete, so a failed get leaves nothing) or a Writable (ended on success, destroyed on failure).
   * Resolves with the transfer's statistics; rejects with a {@link TftpError} (ERR_TFTP with the
   * server's `tftpCode`, ERR_TFTP_TIMEOUT, ERR_TFTP_PROTOCOL) or the signal's reason.
   */
  async get(
    remote: string,
    local: string | Writable,
    options: TftpCallOptions = {},
  ): Promise<TftpTransferStats> {
    const settings = resolveSettings(this.#o, options);
    options.signal?.throwIfAborted();
    let writable: Writable;
    if (typeof local === 'string') {
      const file = await AtomicFile.create(path.resolve(local), { overwrite: true });
      writable = file.writable({ commit: true });
    } else if (local instanceof Writable || isWritableLike(local)) {
      writable = local;
    } else {
      throw new FileServerError('ERR_INVALID_OPTIONS', 'get() needs a local path or a Writable');
    }
    const sink = new WritableSink(writable, { netascii: settings.mode === 'netascii' });
    try {
      return await this.#transfer('read', remote, { kind: 'sink', sink }, settings, options);
    } catch (error) {
      await sink.abort(error as Error).catch(() => {});
      throw error;
    }
  }

  /**
   * Uploads `local` (a path, a Readable or a Buffer) as `remote`. Resolves with the transfer's
   * statistics once the server has acknowledged the last block.
   */
  async put(
    local: string | Readable | Uint8Array,
    remote: string,
    options: TftpCallOptions = {},
  ): Promise<TftpTransferStats> {
    const settings = resolveSettings(this.#o, options);
    options.signal?.throwIfAborted();
    let raw: BlockSource;
    if (typeof local === 'string') {
      const handle = await open(path.resolve(local), 'r');
      try {
        const { size } = await handle.stat();
        raw = new RandomAccessSource(fileContent(handle, size), 1 << 20);
      } catch (error) {
        await handle.close();
        throw error;
      }
    } else if (local instanceof Uint8Array) {
      raw = new BufferSource(local);
    } else if (local instanceof Readable) {
      raw = new StreamSource(local);
    } else {
      throw new FileServerError('ERR_INVALID_OPTIONS', 'put() needs a local path, a Readable or a Buffer');
    }
    const size = raw.size ?? options.size;
    const source = settings.mode === 'netascii' ? new NetasciiSource(raw) : raw;
    if (settings.requested.tsize !== undefined) {
      settings.requested =
        settings.mode === 'octet' && size !== undefined
          ? { ...settings.requested, tsize: size }
          : { ...settings.requested, tsize: undefined };
    }
    try {
      return await this.#transfer('write', remote, { kind: 'source', source }, settings, options);
    } finally {
      await source.close().catch(() => {});
    }
  }

  async #transfer(
    direction: 'read' | 'write',
    filename: string,
    local: Local,
    settings: ResolvedSettings,
    options: TftpCallOptions,
  ): Promise<TftpTransferStats> {
    const signal = options.signal;
    const address = await resolveHost(this.#o.host);
    signal?.throwIfAborted();
    const socket = await UdpSocket.bind(this.#o.localAddress ?? (net.isIPv6(address) ? '::' : '0.0.0.0'), 0, {
      bufferBytes: socketBufferBytes({
        blksize: settings.requested.blksize ?? 512,
        windowsize: settings.requested.windowsize ?? 1,
      }),
      transient: true, // the state machines copy what they keep
    });
    const run = new ClientTransfer({
      id: this.#nextId++,
      direction,
      filename,
      local,
      settings,
      socket,
      server: { address, port: this.#o.port ?? 69 },
      clock: this.#clock,
      hook: this.#o.onPacket,
      progress: (bytes, total) => {
        const wanted = options.onProgress !== undefined || this.listenerCount('progress') > 0;
        if (!wanted) return;
        const progress: TftpProgress = { direction, filename, bytes, total };
        options.onProgress?.(progress);
        this.emit('progress', progress);
      },
    });
    const stats = await run.run(signal);
    this.emit('transfer', stats);
    if (stats.outcome !== 'ok') {
      if (stats.outcome === 'aborted' && signal?.aborted) throw signal.reason;
      throw stats.error;
    }
    return stats;
  }
}

interface ClientTransferConfig {
  id: number;
  direction: 'read' | 'write';
  filename: string;
  local: Local;
  settings: ResolvedSettings;
  socket: UdpSocket;
  server: Endpoint;
  clock: SessionClock;
  hook: TftpPacketHook | undefined;
  progress: (bytes: number, total: number | undefined) => void;
}

/** One get or put: the request phase (with its own retransmissions), then a Sender or Receiver. */
class ClientTransfer {
  readonly #c: ClientTransferConfig;
  readonly #channel: TransferChannel;
  readonly #alarm: Alarm;
  readonly #startedAt = new Date();
  readonly #t0: number;
  readonly #rto: RetransmitTimeout;
  #withOptions: boolean;
  #request: Buffer;
  #expiries = 0;
  /** When the request last went out, and whether it went out more than once (Karn). */
  #requestSentAt = -1;
  #requestRepeated = false;
  #machine: Sender | Receiver | undefined;
  #params: TransferParams = PLAIN_PARAMS;
  #negotiated: Record<string, string> = {};
  #finish: ((result: SessionResult) => void) | undefined;
  #result: SessionResult | undefined;

  constructor(config: ClientTransferConfig) {
    this.#c = config;
    this.#t0 = config.clock.now();
    this.#withOptions = config.settings.useOptions;
    this.#request = this.#encodeRequest();
    this.#channel = new TransferChannel(config.socket, config.server, { locked: false, hook: config.hook });
    this.#channel.onFirstReply = (datagram, from) => this.#onFirstReply(datagram, from);
    this.#alarm = new Alarm(config.clock, () => this.#onRequestTimeout());
    const s = config.settings;
    this.#rto = transferRto(s, s.requested.timeout === undefined ? undefined : s.requested.timeout * 1000);
  }

  #encodeRequest(): Buffer {
    const c = this.#c;
    return encodePacket({
      opcode: c.direction === 'read' ? OPCODE.RRQ : OPCODE.WRQ,
      filename: c.filename,
      mode: c.settings.mode,
      options: this.#withOptions ? requestOptionList(c.settings.requested) : [],
    });
  }

  run(signal: AbortSignal | undefined): Promise<TftpTransferStats> {
    return new Promise<TftpTransferStats>((resolve) => {
      const onAbort = () =>
        this.#abort(new TftpError('ERR_TRANSFER_ABORTED', 'Transfer aborted', { cause: signal?.reason }));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#finish = (result) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(this.#stats(result));
      };
      if (signal?.aborted) {
        onAbort();
        return;
      }
      this.#sendRequest();
    });
  }

  #sendRequest(): void {
    this.#requestRepeated = this.#requestSentAt >= 0;
    this.#requestSentAt = this.#c.clock.now();
    this.#channel.send(this.#request);
    this.#alarm.set(this.#rto.timeoutMs);
  }

  #onRequestTimeout(): void {
    if (this.#machine || this.#result) return;
    if (++this.#expiries > this.#c.settings.retries) {
      this.#end({
        outcome: 'timeout',
        error: new TftpError(
          'ERR_TFTP_TIMEOUT',
          `No answer from ${this.#c.server.address} port ${this.#c.server.port} after ${this.#c.settings.retries} retransmissions`,
        ),
      });
      return;
    }
    this.#rto.backoff();
    this.#sendRequest();
  }

  /** The first datagram from the server's address: decides the TID and the parameters. */
  #onFirstReply(datagram: Buffer, from: Endpoint): boolean {
    if (this.#machine || this.#result) return false;
    let packet: TftpPacket;
    try {
      packet = decodePacket(datagram);
    } catch {
      return true; // garbage from the server's address: ignore, keep waiting
    }
    const reading = this.#c.direction === 'read';
    switch (packet.opcode) {
      case OPCODE.ERROR:
        if (packet.code === TFTP_ERROR.OPTION_REFUSED && this.#withOptions) {
          log.tftp('%s refused our options, retrying without', this.#c.server.address);
          this.#retryPlain();
          return true;
        }
        this.#end({
          outcome: 'peer-error',
          error: new TftpError('ERR_TFTP', `Server sent ERROR ${packet.code}: ${packet.message}`, {
            tftpCode: packet.code,
            details: { peerMessage: packet.message, filename: this.#c.filename },
          }),
        });
        return true;
      case OPCODE.OACK: {
        if (!this.#withOptions) return this.#refuseOack(from, 'no options were requested');
        const checked = acceptOack(this.#c.settings.requested, packet.options);
        if (!checked.ok) return this.#refuseOack(from, checked.reason);
        this.#channel.lock(from);
        this.#params = checked.params;
        this.#negotiated = optionRecord(packet.options);
        if (reading) this.#startReceiver(true);
        else this.#startSender();
        return true;
      }
      case OPCODE.DATA:
        if (!reading || packet.block !== 1) return true;
        this.#channel.lock(from);
        this.#startReceiver(false);
        this.#machine!.receive(datagram);
        return true;
      case OPCODE.ACK:
        if (reading || packet.block !== 0) return true;
        this.#channel.lock(from);
        this.#startSender();
        return true;
      default:
        return true;
    }
  }

  #refuseOack(from: Endpoint, reason: string): boolean {
    const c = this.#c;
    const error = encodeError(TFTP_ERROR.OPTION_REFUSED, `Bad OACK: ${reason}`);
    c.socket.send(error, error.length, from.port, from.address);
    this.#end({
      outcome: 'protocol-error',
      error: new TftpError('ERR_TFTP_PROTOCOL', `Server broke option negotiation: ${reason}`, {
        tftpCode: TFTP_ERROR.OPTION_REFUSED,
      }),
    });
    return true;
  }

  #retryPlain(): void {
    this.#withOptions = false;
    this.#request = this.#encodeRequest();
    this.#expiries = 0;
    this.#requestSentAt = -1;
    this.#sendRequest();
  }

  /**
   * The request's round trip is the first RTT sample (Karn: unless the request went out twice). A
   * receiver that only ever reports gaps gives the sender no other, which would then wait out the
   * 1 s initial timeout for every loss.
   */
  #sampleRequestRtt(): void {
    if (!this.#requestRepeated) this.#rto.sample(this.#c.clock.now() - this.#requestSentAt);
  }

  #startReceiver(afterOack: boolean): void {
    this.#alarm.clear();
    this.#sampleRequestRtt();
    const c = this.#c;
    const local = c.local as Extract<Local, { kind: 'sink' }>;
    const tsize = c.settings.mode === 'octet' ? this.#params.tsize : undefined;
    const receiver = new Receiver({
      params: this.#params,
      sink: tsize === undefined ? local.sink : new SizeCheckedSink(local.sink, tsize),
      io: this.#channel,
      clock: c.clock,
      rto: this.#rto,
      retries: c.settings.retries,
      opening: afterOack ? encodePacket({ opcode: OPCODE.ACK, block: 0 }) : undefined,
      dallyMs: c.settings.dallyMs,
      onProgress: (bytes) => c.progress(bytes, this.#params.tsize),
      onEnd: (result) => {
        // Dally in the background: the transfer is done, the socket lingers for a repeated DATA.
        if (result.outcome === 'ok') c.socket.unref();
        this.#end(result);
      },
      onClose: () => this.#channel.close(),
    });
    this.#machine = receiver;
    this.#channel.onPacket = (datagram) => receiver.receive(datagram);
    receiver.start();
  }

  #startSender(): void {
    this.#alarm.clear();
    this.#sampleRequestRtt();
    const c = this.#c;
    const local = c.local as Extract<Local, { kind: 'source' }>;
    const total = c.settings.requested.tsize;
    const sender = new Sender({
      params: this.#params,
      source: local.source,
      io: this.#channel,
      clock: c.clock,
      rto: this.#rto,
      retries: c.settings.retries,
      onProgress: (bytes) => c.progress(bytes, total),
      onEnd: (result) => {
        this.#channel.close();
        this.#end(result);
      },
    });
    this.#machine = sender;
    this.#channel.onPacket = (datagram, answered) => sender.receive(datagram, answered);
    sender.start();
  }

  #abort(error: TftpError): void {
    if (this.#result) return;
    if (this.#machine) {
      this.#machine.abort(error, { code: TFTP_ERROR.NOT_DEFINED, message: 'Transfer aborted by the client' });
    } else {
      this.#end({ outcome: 'aborted', error });
    }
  }

  #end(result: SessionResult): void {
    if (this.#result) return;
    this.#result = result;
    this.#alarm.clear();
    if (result.outcome !== 'ok' || this.#c.direction === 'write') this.#channel.close();
    this.#finish?.(result);
  }

  #stats(result: SessionResult): TftpTransferStats {
    const c = this.#c;
    const counters = this.#machine?.counters;
    return {
      id: c.id,
      direction: c.direction,
      filename: c.filename,
      mode: c.settings.mode,
      peer: this.#channel.peer,
      local: c.socket.local,
      requestedOptions: optionRecord(this.#withOptions ? requestOptionList(c.settings.requested) : []),
      negotiatedOptions: this.#negotiated,
      blksize: this.#params.blksize,
      windowsize: this.#params.windowsize,
      bytes: counters?.bytes ?? 0,
      blocks: counters?.blocks ?? 0,
      retransmits: counters?.retransmits ?? 0,
      timeouts: (counters?.timeouts ?? 0) + this.#expiries,
      duplicates: counters?.duplicates ?? 0,
      strangers: this.#channel.strangers,
      rttMs: this.#rto.srttMs,
      startedAt: this.#startedAt,
      durationMs: c.clock.now() - this.#t0,
      outcome: result.outcome,
      ...(result.error ? { error: result.error } : {}),
    };
  }
}

/** Fails the end of a get whose size differs from the tsize the server announced. */
class SizeCheckedSink implements BlockSink {
  readonly #inner: BlockSink;
  readonly #expected: number;
  #bytes = 0;

  constructor(inner: BlockSink, expected: number) {
    this.#inner = inner;
    this.#expected = expected;
  }

  write(data: Buffer): void {
    this.#bytes += data.length;
    this.#inner.write(data);
  }

  get ready(): boolean {
    return this.#inner.ready;
  }

  whenDrained(fn: () => void): void {
    this.#inner.whenDrained(fn);
  }

  async end(): Promise<void> {
    if (this.#bytes !== this.#expected) {
      throw new TftpError(
        'ERR_TFTP_PROTOCOL',
        `Received ${this.#bytes} bytes but the server announced ${this.#expected} (tsize)`,
        { tftpCode: TFTP_ERROR.NOT_DEFINED },
      );
    }
    await this.#inner.end();
  }

  abort(error: Error): Promise<void> {
    return this.#inner.abort(error);
  }

  onError(fn: (error: unknown) => void): void {
    this.#inner.onError(fn);
  }
}

function isWritableLike(value: unknown): value is Writable {
  return typeof (value as Writable)?.write === 'function' && typeof (value as Writable)?.end === 'function';
}

async function resolveHost(host: string): Promise<string> {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (net.isIP(bare.replace(/%.*$/, ''))) return bare;
  return (await lookup(bare)).address;
}

function resolveSettings(base: TftpTransferSettings, call: TftpTransferSettings): ResolvedSettings {
  const pick = <K extends keyof TftpTransferSettings>(key: K) => call[key] ?? base[key];
  const fail = (message: string): never => {
    throw new FileServerError('ERR_INVALID_OPTIONS', message);
  };
  const int = (key: keyof TftpTransferSettings, fallback: number, min: number, max: number): number => {
    const value = pick(key) ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      fail(`${key} must be an integer ${min}..${max}, got ${JSON.stringify(value)}`);
    }
    return value as number;
  };
  const blksize = int('blksize', 1468, MIN_BLKSIZE, MAX_BLKSIZE);
  const windowsize = int('windowsize', 16, 1, MAX_WINDOWSIZE);
  const timeout = pick('timeout') === undefined ? undefined : int('timeout', 0, 1, 255);
  const mode = pick('mode') ?? 'octet';
  if (mode !== 'octet' && mode !== 'netascii')
    fail(`mode must be octet or netascii, got ${JSON.stringify(mode)}`);
  const minTimeoutMs = int('minTimeoutMs', 50, 1, 60_000);
  const requested: RequestedOptions = {
    ...(blksize !== 512 ? { blksize } : {}),
    ...(windowsize !== 1 ? { windowsize } : {}),
    ...(timeout !== undefined ? { timeout } : {}),
    ...(pick('tsize') !== false ? { tsize: 0 } : {}),
  };
  const useOptions = pick('noOptions') !== true && Object.keys(requested).length > 0;
  return {
    requested,
    useOptions,
    mode,
    retries: int('retries', 8, 0, 1000),
    timeoutMs: int('timeoutMs', 1000, 1, 600_000),
    minTimeoutMs,
    maxTimeoutMs: int('maxTimeoutMs', 5000, minTimeoutMs, 600_000),
    dallyMs: int('dallyMs', 2000, 0, 600_000),
  };
}
