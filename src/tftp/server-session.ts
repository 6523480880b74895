/**
 * One transfer on the server, from request to last packet: open the content through the handler
 * (before any OACK, so open errors go out as ERROR), negotiate, bind a fresh socket (new TID),
 * run the {@link Sender} or {@link Receiver}, report, and release everything.
 * @module
 */
import { Readable } from 'node:stream';
import { log } from '../log.js';
import { encodeAck, encodePacket, OPCODE, type TftpOptionList } from './codec.js';
import { TFTP_ERROR, TftpError, toWireError } from './errors.js';
import type { TftpHandler, TftpReadContent, TftpRequest } from './handler.js';
import { type NegotiationLimits, negotiate, optionRecord, type TransferParams } from './options.js';
import { Receiver } from './receiver.js';
import { type RetransmitTimeout, transferRto } from './rto.js';
import { Sender } from './sender.js';
import { Alarm, type SessionClock, type SessionCounters, type SessionResult } from './session.js';
import { type BlockSink, WritableSink } from './sink.js';
import {
  type BlockSource,
  BufferSource,
  NetasciiSource,
  RandomAccessSource,
  StreamSource,
} from './source.js';
import type { TftpTransferInfo, TftpTransferStats } from './stats.js';
import {
  type DatagramSocket,
  type Endpoint,
  type TftpPacketHook,
  TransferChannel,
  UdpSocket,
} from './transport.js';

/** Server settings every session reads. @internal */
export interface SessionSettings {
  readonly handler: TftpHandler;
  readonly limits: NegotiationLimits;
  readonly maxFileSize: number | undefined;
  readonly timeoutMs: number;
  readonly minTimeoutMs: number;
  readonly maxTimeoutMs: number;
  readonly strictTimeoutOption: boolean;
  readonly retries: number;
  readonly idleTimeoutMs: number;
  readonly dallyMs: number;
  readonly portRange: readonly [number, number] | undefined;
  readonly hook: TftpPacketHook | undefined;
  readonly clock: SessionClock;
}

/** What a session tells its server. @internal */
export interface SessionEvents {
  /** Data starts to flow. */
  dataStart(session: ServerSession): void;
  /** The outcome is known. */
  end(session: ServerSession, stats: TftpTransferStats): void;
  /** Everything is released. */
  closed(session: ServerSession): void;
  /** Sends an ERROR from the listening port (before the transfer has a socket of its own). */
  refuse(peer: Endpoint, code: number, message: string): void;
  /** Single-port mode: the transfer's view of the listening socket, instead of a port of its own. */
  shareListener?(): DatagramSocket;
}

/**
 * How long a client waits before repeating a packet when it negotiated no timeout: 5 s in atftp,
 * tftp-hpa's client and U-Boot.
 */
const CLIENT_TIMER_MS = 5000;

/** Largest staging chunk for reads ahead of the sender. */
const MAX_CHUNK = 1 << 20;
const MIN_CHUNK = 128 * 1024;

/** @internal */
export class ServerSession {
  readonly id: number;
  readonly request: TftpRequest;
  /** The raw request, to recognise a retransmitted one. */
  readonly datagram: Buffer;
  readonly #settings: SessionSettings;
  readonly #events: SessionEvents;
  readonly #abort = new AbortController();
  readonly #requested: TftpOptionList;
  readonly #startedAt = new Date();
  readonly #t0: number;
  readonly #idle: Alarm;
  #channel: TransferChannel | undefined;
  #machine: Sender | Receiver | undefined;
  #source: BlockSource | undefined;
  #sink: BlockSink | undefined;
  #params: TransferParams | undefined;
  #negotiated: Readonly<Record<string, string>> = {};
  #rto: RetransmitTimeout | undefined;
  #ended = false;
  #closed = false;
  #released: Promise<void> | undefined;

  constructor(
    id: number,
    request: Omit<TftpRequest, 'signal'>,
    requested: TftpOptionList,
    datagram: Buffer,
    settings: SessionSettings,
    events: SessionEvents,
  ) {
    this.id = id;
    this.request = { ...request, signal: this.#abort.signal };
    this.#requested = requested;
    this.datagram = datagram;
    this.#settings = settings;
    this.#events = events;
    this.#t0 = settings.clock.now();
    this.#idle = new Alarm(settings.clock, () =>
      this.abort(
        new TftpError('ERR_TFTP_TIMEOUT', `Transfer idle for ${settings.idleTimeoutMs} ms`),
        'timeout',
      ),
    );
  }

  /** Data moved: the idle timeout counts from here (packets alone do not count: a peer repeating
   * its ACK to a stalled handler must not keep a session alive forever). */
  #progressed = (): void => {
    this.#idle.set(this.#settings.idleTimeoutMs);
  };

  /** True once the outcome is known (the session may still be dallying). */
  get ended(): boolean {
    return this.#ended;
  }

  /** Opens, negotiates and starts the transfer; never rejects. */
  async start(): Promise<void> {
    this.#idle.set(this.#settings.idleTimeoutMs);
    try {
      if (this.request.direction === 'read') await this.#startRead();
      else await this.#startWrite();
    } catch (error) {
      if (this.#ended) return;
      const wire = toWireError(error);
      if (this.#machine) this.#machine.abort(asTftpError(error, wire.code), wire);
      else {
        this.#events.refuse(this.request.peer, wire.code, wire.message);
        this.#end({ outcome: 'local-error', error: asTftpError(error, wire.code) });
        this.#close();
      }
    }
  }

  async #startRead(): Promise<void> {
    const { handler } = this.#settings;
    if (!handler.openRead) {
      throw new TftpError('ERR_TFTP', 'Reading is not allowed', { tftpCode: TFTP_ERROR.ACCESS_VIOLATION });
    }
    const content = await this.#opened(handler.openRead(this.request), closeContent);
    const raw = contentSource(content, this.#chunkSize());
    this.#source = this.request.mode === 'netascii' ? new NetasciiSource(raw) : raw;
    const negotiation = negotiate(
      this.#requested,
      { direction: 'read', mode: this.request.mode, size: raw.size },
      this.#settings.limits,
    );
    if (!negotiation.ok) throw new TftpError('ERR_TFTP', negotiation.message, { tftpCode: negotiation.code });
    const channel = await this.#bind(negotiation.params);
    const oack =
      negotiation.oack.length > 0
        ? encodePacket({ opcode: OPCODE.OACK, options: negotiation.oack })
        : undefined;
    this.#negotiated = optionRecord(negotiation.oack);
    const sender = new Sender({
      params: negotiation.params,
      source: this.#source,
      io: channel,
      clock: this.#settings.clock,
      rto: this.#rto!,
      retries: this.#settings.retries,
      oack,
      patienceMs: clientPatienceMs(negotiation.params),
      onDataStart: () => this.#events.dataStart(this),
      onProgress: this.#progressed,
      onEnd: (result) => {
        this.#end(result);
        this.#close();
      },
    });
    this.#machine = sender;
    channel.onPacket = (datagram, answered) => sender.receive(datagram, answered);
    sender.start();
  }

  async #startWrite(): Promise<void> {
    const { handler, maxFileSize } = this.#settings;
    if (!handler.openWrite) {
      throw new TftpError('ERR_TFTP', 'Uploads are not allowed on this server', {
        tftpCode: TFTP_ERROR.ACCESS_VIOLATION,
      });
    }
    // Negotiate first: a tsize over the quota is refused before anything is opened.
    const negotiation = negotiate(
      this.#requested,
      { direction: 'write', mode: this.request.mode, maxFileSize },
      this.#settings.limits,
    );
    if (!negotiation.ok) throw new TftpError('ERR_TFTP', negotiation.message, { tftpCode: negotiation.code });
    const writable = await this.#opened(handler.openWrite(this.request), (w) => {
      w.destroy(new Error('transfer ended'));
    });
    this.#sink = new WritableSink(writable, { netascii: this.request.mode === 'netascii' });
    const channel = await this.#bind(negotiation.params);
    const oack =
      negotiation.oack.length > 0
        ? encodePacket({ opcode: OPCODE.OACK, options: negotiation.oack })
        : undefined;
    this.#negotiated = optionRecord(negotiation.oack);
    const receiver = new Receiver({
      params: negotiation.params,
      rolloverNegotiated: 'rollover' in this.#negotiated,
      sink: this.#sink,
      io: channel,
      clock: this.#settings.clock,
      rto: this.#rto!,
      retries: this.#settings.retries,
      opening: oack ?? encodeAck(0),
      openingIsOack: oack !== undefined,
      maxBytes: maxFileSize,
      dallyMs: this.#dallyMs(negotiation.params),
      onDataStart: () => this.#events.dataStart(this),
      onProgress: this.#progressed,
      onEnd: (result) => this.#end(result),
      onClose: () => this.#close(),
    });
    this.#machine = receiver;
    channel.onPacket = (datagram) => receiver.receive(datagram);
    receiver.start();
  }

  /** Waits for a handler's result; if the session ended meanwhile, disposes of it and stops. */
  async #opened<T>(pending: T | Promise<T>, dispose: (value: T) => void | Promise<void>): Promise<T> {
    const value = await pending;
    if (this.#ended) {
      await Promise.resolve(dispose(value)).catch(() => {});
      throw new TftpError('ERR_TRANSFER_ABORTED', 'Transfer ended while opening');
    }
    return value;
  }

  async #bind(params: TransferParams): Promise<TransferChannel> {
    const s = this.#settings;
    const socket =
      this.#events.shareListener?.() ??
      (await UdpSocket.bind(this.request.local.address, 0, {
        bufferBytes: socketBufferBytes(params),
        portRange: s.portRange,
        transient: true, // the state machines copy what they keep
      }));
    if (this.#ended) {
      socket.close();
      throw new TftpError('ERR_TRANSFER_ABORTED', 'Transfer ended while binding');
    }
    this.#params = params;
    this.#channel = new TransferChannel(socket, this.request.peer, { locked: true, hook: s.hook });
    this.#rto = transferRto(s, params.timeoutMs, s.strictTimeoutOption);
    return this.#channel;
  }

  #chunkSize(): number {
    const asked = Number(this.request.options.blksize ?? 512) * Number(this.request.options.windowsize ?? 1);
    return Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, Number.isFinite(asked) ? asked : MIN_CHUNK));
  }

  /** The peer sent its request again (the same datagram): answer it if still unanswered. */
  repeatedRequest(): void {
    if (!this.#ended) this.#machine?.repeatOpening();
  }

  /** Long enough to answer a final DATA the peer repeats after its own timeout. */
  #dallyMs(params: TransferParams): number {
    return Math.min(60_000, Math.max(this.#settings.dallyMs, (params.timeoutMs ?? 0) * 1.5));
  }

  /** Ends the transfer now (ERROR 0 to the peer unless it is only dallying). */
  abort(error: TftpError, outcome: 'aborted' | 'timeout' = 'aborted'): void {
    if (this.#closed) return;
    if (this.#ended) {
      this.#close();
      return;
    }
    this.#abort.abort(error);
    if (this.#machine) {
      this.#machine.abort(error, { code: TFTP_ERROR.NOT_DEFINED, message: error.message });
    } else {
      this.#events.refuse(this.request.peer, TFTP_ERROR.NOT_DEFINED, error.message);
      this.#end({ outcome, error });
      this.#close();
    }
  }

  /** Stops without a word: the peer has moved on (a new request from its port) or we are stopping. */
  close(): void {
    if (this.#closed) return;
    if (this.#machine instanceof Receiver) this.#machine.close();
    else if (!this.#ended) {
      this.#end({
        outcome: 'aborted',
        error: new TftpError('ERR_TRANSFER_ABORTED', 'Transfer replaced or closed'),
      });
    }
    this.#close();
  }

  /** Resolves once sockets, files and streams are released. */
  released(): Promise<void> {
    return this.#released ?? Promise.resolve();
  }

  #end(result: SessionResult): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#idle.clear();
    if (!this.#abort.signal.aborted && result.outcome !== 'ok') this.#abort.abort(result.error);
    this.#events.end(this, this.#stats(result));
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#idle.clear();
    this.#channel?.close();
    this.#released = this.#release().finally(() => this.#events.closed(this));
  }

  async #release(): Promise<void> {
    const failure = this.request.signal.aborted ? (this.request.signal.reason as Error) : undefined;
    try {
      await this.#source?.close();
    } catch (error) {
      log.tftp('session %d: closing the source failed: %s', this.id, (error as Error).message);
    }
    // A finished upload's sink has committed already; anything else is discarded.
    if (this.#sink && failure) await this.#sink.abort(failure).catch(() => {});
  }

  /** What is known about the transfer so far. */
  info(): TftpTransferInfo {
    const params = this.#params;
    return {
      id: this.id,
      direction: this.request.direction,
      filename: this.request.filename,
      mode: this.request.mode,
      peer: { address: this.request.peer.address, port: this.request.peer.port },
      local: this.#channel?.socket.local,
      requestedOptions: this.request.options,
      negotiatedOptions: this.#negotiated,
      blksize: params?.blksize ?? 512,
      windowsize: params?.windowsize ?? 1,
    };
  }

  #stats(result: SessionResult): TftpTransferStats {
    const counters: SessionCounters | undefined = this.#machine?.counters;
    return {
      ...this.info(),
      bytes: counters?.bytes ?? 0,
      blocks: counters?.blocks ?? 0,
      retransmits: counters?.retransmits ?? 0,
      timeouts: counters?.timeouts ?? 0,
      duplicates: counters?.duplicates ?? 0,
      strangers: this.#channel?.strangers ?? 0,
      rttMs: this.#rto?.srttMs,
      startedAt: this.#startedAt,
      durationMs: this.#settings.clock.now() - this.#t0,
      outcome: result.outcome,
      ...(result.error ? { error: result.error } : {}),
    };
  }
}

function asTftpError(error: unknown, tftpCode: number): TftpError {
  if (error instanceof TftpError) return error;
  return new TftpError('ERR_TFTP', (error as Error)?.message ?? String(error), { tftpCode, cause: error });
}

/**
 * Past the client's own timer (the negotiated timeout, else the usual 5 s): how long to wait for
 * ACK 0 before repeating an OACK unasked, so that the client repeats a lost ACK 0 itself (atftp
 * aborts on a second OACK), and between resends of a window that went unanswered three times.
 */
export function clientPatienceMs(params: Pick<TransferParams, 'timeoutMs'>): number {
  const clientTimer = params.timeoutMs ?? CLIENT_TIMER_MS;
  return clientTimer + Math.max(1000, clientTimer / 2);
}

/** Kernel buffers for one window of full packets (plus headroom), within sane bounds. */
export function socketBufferBytes(params: Pick<TransferParams, 'blksize' | 'windowsize'>): number {
  const window = params.windowsize * (params.blksize + 64) * 2;
  return Math.min(8 << 20, Math.max(256 * 1024, window));
}

function contentSource(content: TftpReadContent, chunkSize: number): BlockSource {
  if (content instanceof Uint8Array) return new BufferSource(content);
  if (content instanceof Readable) return new StreamSource(content);
  if (content && typeof (content as { read?: unknown }).read === 'function') {
    return new RandomAccessSource(content, chunkSize);
  }
  throw new TftpError(
    'ERR_TFTP',
    'openRead returned neither a Buffer, a Readable nor { read(position, length) }',
    {
      tftpCode: TFTP_ERROR.NOT_DEFINED,
    },
  );
}

async function closeContent(content: TftpReadContent): Promise<void> {
  if (content instanceof Readable) content.destroy();
  else if (!(content instanceof Uint8Array)) await content.close?.();
}
