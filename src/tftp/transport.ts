/**
 * UDP for the TFTP engine; the only module that imports node:dgram.
 *
 * - Every socket binds to one explicit address (Node cannot read a datagram's destination
 *   address, so a wildcard socket could answer from the wrong source address).
 * - A transfer gets its own socket (a new TID) bound to the listener's address, with buffers
 *   sized to window x blksize so that a whole window fits in the kernel's queue; in single-port
 *   mode it gets a view of the listening socket instead ({@link SharedSocket}).
 * - Sends resolve no names (a synchronous lookup for the IP literals we always pass), and are
 *   counted until the kernel has them, so that buffers are never reused while still queued.
 * - A window goes out as one batch: with the native path (./native.ts), one sendmsg per run of
 *   equal-sized datagrams (UDP segmentation offload), else one send per datagram.
 * - With the native path, its watcher reads the socket instead of node:dgram (all the datagrams
 *   that are ready in one call into JavaScript; a transfer's socket receives them into one reused
 *   buffer, see {@link BindOptions.transient}), and in lockstep
 *   the next block waits there, armed, to leave the moment its ACK arrives; node:dgram still
 *   binds, sizes the buffers, queues sends the kernel cannot take yet, and closes.
 * - A datagram from anyone but the transfer's peer is answered with ERROR 5 (rate-limited, never
 *   in reply to an ERROR) and otherwise ignored: the transfer goes on.
 * @module
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { constants } from 'node:os';
import { log } from '../log.js';
import { encodeError, OPCODE } from './codec.js';
import { TFTP_ERROR } from './errors.js';
import { nativeUdp, type WatchHandle } from './native.js';
import type { SessionIo } from './session.js';

const EMPTY = Buffer.alloc(0);

/** Where a datagram came from. */
export type RemoteInfo = dgram.RemoteInfo;

/** An address and port. */
export interface Endpoint {
  /** IPv4 or IPv6 address, without brackets. */
  readonly address: string;
  /** UDP port. */
  readonly port: number;
}

/** One datagram seen by the per-packet hook. */
export interface TftpPacketEvent {
  /** `in`: received from the peer; `out`: sent to it. */
  readonly direction: 'in' | 'out';
  /** The remote address. */
  readonly address: string;
  /** The remote port. */
  readonly port: number;
  /** The datagram. Valid only during the call: copy it to keep it. */
  readonly packet: Buffer;
}

/** Called for every datagram a transfer sends or receives; absent, it costs nothing. */
export type TftpPacketHook = (event: TftpPacketEvent) => void;

/** Options of {@link UdpSocket.bind}. */
export interface BindOptions {
  /** Kernel send and receive buffer sizes in bytes (capped by net.core.[rw]mem_max). */
  readonly bufferBytes?: number | undefined;
  /** Bind to a port in this inclusive range instead of one the kernel picks. */
  readonly portRange?: readonly [number, number] | undefined;
  /**
   * The datagrams handed to onMessage may live in a buffer that the next one overwrites (with the
   * native watcher; node:dgram's are always fresh): for receivers that copy what they keep, which
   * saves an allocation per datagram.
   */
  readonly transient?: boolean | undefined;
}

/** The receive buffer of transient sockets: callbacks run one at a time, so one serves all. */
let transientBuffer: Buffer | undefined;

/** Node's dgram resolves even IP literals asynchronously; we only ever pass IP literals. */
function literalLookup(
  address: string,
  family: unknown,
  callback: (error: Error | null, address: string, family: number) => void,
): void {
  callback(null, address, typeof family === 'number' ? family : net.isIPv6(address) ? 6 : 4);
}

/**
 * Large blocks still mean large allocations where the receive is not transient or a block is
 * kept (64 KiB per datagram from node:dgram; a copy per block for a handler's Writable), freed in
 * batches by the garbage collector. glibc then returns the freed heap top to the kernel (its trim
 * threshold is 128 KiB) and faults it back in for the next datagrams, page by page: that halved large-block throughput.
 * Freeing one allocation above the mmap threshold makes glibc raise both thresholds (its dynamic
 * threshold, mallopt(3); 16 MiB here, so the heap keeps up to 32 MiB free). Done once per process,
 * when the first socket opens; the allocation is never touched, so it costs no memory. Other
 * allocators, and glibc when MALLOC_* variables fix the thresholds, ignore it.
 */
let allocatorPrimed = false;
function primeAllocator(): void {
  if (allocatorPrimed) return;
  allocatorPrimed = true;
  Buffer.allocUnsafeSlow(16 * 2 ** 20);
}

/** Receives a datagram; `answered` says an armed reply already went out for it. */
export type MessageHandler = (message: Buffer, remote: dgram.RemoteInfo, answered?: boolean) => void;

/** What a transfer needs of its socket: its own {@link UdpSocket}, or a {@link SharedSocket}. */
export interface DatagramSocket {
  readonly local: Endpoint;
  /** Receives every datagram meant for this socket (see {@link BindOptions.transient}). */
  onMessage: MessageHandler;
  send(data: Buffer, length: number, port: number, address: string): void;
  /** Sends `buffers[i][0, lengths[i])` for i < count, in order; the buffers are free on return
   * unless {@link DatagramSocket.pending} > 0. */
  sendMany(
    buffers: readonly Buffer[],
    lengths: readonly number[],
    count: number,
    port: number,
    address: string,
  ): void;
  readonly pending: number;
  whenSent(fn: () => void): void;
  /** See {@link UdpSocket.armReply}; absent where replies cannot be armed. */
  armReply?(ackBlock: number, packet: Buffer, length: number, port: number, address: string): boolean;
  disarmReply?(): void;
  close(): void;
}

/** A bound UDP socket with send accounting. */
export class UdpSocket implements DatagramSocket {
  readonly #socket: dgram.Socket;
  readonly local: Endpoint;
  #drained: Array<() => void> = [];
  #closed = false;
  /** The descriptor for the native path; undefined without it. */
  readonly #fd: number | undefined;
  /** The native receive watcher, when it reads this socket instead of node:dgram. */
  readonly #watch: WatchHandle | undefined;
  /** Segmentation offload works on this socket's route (cleared at its first refusal). */
  #segmenting = true;
  readonly #single: Buffer[] = [EMPTY];
  readonly #singleLength = [0];
  /** Receives every datagram. */
  onMessage: MessageHandler = () => {};

  private constructor(socket: dgram.Socket, local: Endpoint, transient: boolean) {
    this.#socket = socket;
    this.local = local;
    const handle = nativeUdp && udpHandleOf(socket);
    this.#fd = handle?.fd;
    this.#watch = handle && this.#watchNatively(handle, transient);
    socket.on('message', (message, remote) => this.onMessage(message, remote));
    socket.on('error', (error) =>
      log.tftp('socket %s:%d error: %s', local.address, local.port, error.message),
    );
  }

  /** Reads the socket natively, once node:dgram has stopped reading it; undefined if it cannot. */
  #watchNatively(handle: UdpHandle, transient: boolean): WatchHandle | undefined {
    const onDatagram = (buffer: Buffer, address: string, port: number, answered: boolean, length: number) =>
      this.onMessage(
        length === buffer.length ? buffer : buffer.subarray(0, length),
        { address, port, family: address.includes(':') ? 'IPv6' : 'IPv4', size: length },
        answered,
      );
    if (transient) transientBuffer ??= Buffer.allocUnsafeSlow(65536);
    const watch = nativeUdp!.watch(handle.fd, onDatagram, ...(transient ? [transientBuffer!] : []));
    if (typeof watch === 'number') {
      log.tftp('port %d: no native receive (errno %d); node:dgram reads', this.local.port, -watch);
      return undefined;
    }
    handle.recvStop();
    return watch;
  }

  /** Binds a socket to `address` and `port` (0: any free port). Rejects with the system error. */
  static async bind(address: string, port: number, options: BindOptions = {}): Promise<UdpSocket> {
    const range = options.portRange;
    if (port !== 0 || !range) return UdpSocket.#bindOnce(address, port, options);
    const [low, high] = range;
    const span = high - low + 1;
    const first = Math.floor(Math.random() * span);
    let lastError: unknown;
    for (let i = 0; i < Math.min(span, 512); i++) {
      try {
        return await UdpSocket.#bindOnce(address, low + ((first + i) % span), options);
      } catch (error) {
        lastError = error;
        if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      }
    }
    throw lastError;
  }

  static #bindOnce(address: string, port: number, options: BindOptions): Promise<UdpSocket> {
    const bytes = options.bufferBytes;
    primeAllocator();
    const socket = dgram.createSocket({
      type: net.isIPv6(address.replace(/%.*$/, '')) ? 'udp6' : 'udp4',
      lookup: literalLookup as never,
      ...(bytes === undefined ? {} : { recvBufferSize: bytes, sendBufferSize: bytes }),
    });
    return new Promise<UdpSocket>((resolve, reject) => {
      const onError = (error: Error) => {
        socket.close();
        reject(error);
      };
      socket.once('error', onError);
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off('error', onError);
        const bound = socket.address();
        resolve(
          new UdpSocket(socket, { address: bound.address, port: bound.port }, options.transient === true),
        );
      });
    });
  }

  /** Sends not yet handed to the kernel (queued because the socket buffer was full). */
  get pending(): number {
    return this.#closed ? 0 : this.#socket.getSendQueueCount();
  }

  /** Kernel receive buffer size in bytes. */
  get receiveBufferSize(): number {
    return this.#socket.getRecvBufferSize();
  }

  /**
   * Sends `data[0, length)`; the buffer must stay untouched while {@link UdpSocket.pending} > 0.
   * No completion callback unless debugging: it would cost a tick per packet, and a lost
   * datagram is a normal event that the protocol recovers from.
   */
  send(data: Buffer, length: number, port: number, address: string): void {
    if (this.#closed) return;
    if (this.#fd !== undefined) {
      this.#single[0] = data;
      this.#singleLength[0] = length;
      this.#sendNative(this.#single, this.#singleLength, 0, 1, port, address);
      this.#single[0] = EMPTY;
      return;
    }
    this.#sendDgram(data, length, port, address);
  }

  #sendDgram(data: Buffer, length: number, port: number, address: string): void {
    try {
      if (log.tftp.enabled) this.#socket.send(data, 0, length, port, address, this.#logFailure);
      else this.#socket.send(data, 0, length, port, address);
    } catch (error) {
      this.#logFailure(error as Error);
    }
  }

  sendMany(
    buffers: readonly Buffer[],
    lengths: readonly number[],
    count: number,
    port: number,
    address: string,
  ): void {
    if (this.#closed) return;
    if (this.#fd === undefined) {
      for (let i = 0; i < count; i++) this.#sendDgram(buffers[i]!, lengths[i]!, port, address);
      return;
    }
    let first = 0;
    while (first < count) {
      const n = this.#segmenting ? segmentRun(lengths, first, count) : 1;
      this.#sendNative(buffers, lengths, first, n, port, address);
      first += n;
    }
  }

  /** One sendmsg for `n` datagrams from `first`; what the kernel refuses goes through dgram. */
  #sendNative(
    buffers: readonly Buffer[],
    lengths: readonly number[],
    first: number,
    n: number,
    port: number,
    address: string,
  ): void {
    // libuv sends in order from its queue: nothing may overtake what waits there.
    const result =
      this.pending > 0
        ? -EAGAIN
        : nativeUdp!.sendBatch(
            this.#fd!,
            address,
            port,
            n > 1 ? lengths[first]! : 0,
            buffers,
            lengths,
            first,
            n,
          );
    if (result >= 0) return;
    if (n > 1 && SEGMENTATION_REFUSED.has(-result)) {
      // No offload on this route (a device without checksum offload, a segment above the MTU).
      log.tftp(
        'port %d: no segmentation offload (errno %d); one datagram per send',
        this.local.port,
        -result,
      );
      this.#segmenting = false;
    } else if (result !== -EAGAIN && result !== -ENOBUFS) {
      log.tftp('send from port %d failed: errno %d', this.local.port, -result);
      return; // lost, as a failed dgram send: the protocol recovers
    }
    for (let i = first; i < first + n; i++) this.#sendDgram(buffers[i]!, lengths[i]!, port, address);
  }

  #logFailure = (error: Error | null): void => {
    if (error) log.tftp('send from port %d failed: %s', this.local.port, error.message);
  };

  /** Calls `fn` once nothing is queued (at once in the usual case: sends complete synchronously). */
  whenSent(fn: () => void): void {
    if (this.pending === 0) {
      fn();
      return;
    }
    this.#drained.push(fn);
    if (this.#drained.length === 1) this.#pollQueue();
  }

  #pollQueue(): void {
    setImmediate(() => {
      if (this.#closed) return;
      if (this.pending > 0) {
        this.#pollQueue();
        return;
      }
      const waiting = this.#drained;
      this.#drained = [];
      for (const fn of waiting) fn();
    });
  }

  /**
   * Lockstep's shortcut: when the ACK of wire block `ackBlock` arrives from `address`:`port`, the
   * native watcher sends `packet[0, length)` at once and delivers the ACK with `answered` true.
   * False (nothing armed) without the native watcher or while sends wait in node:dgram's queue
   * (the reply would overtake them). The packet must stay untouched until the reply fires or
   * {@link UdpSocket.disarmReply}.
   */
  armReply(ackBlock: number, packet: Buffer, length: number, port: number, address: string): boolean {
    if (!this.#watch || this.#closed || this.pending > 0) return false;
    return nativeUdp!.arm(this.#watch, ackBlock, packet, length, address, port);
  }

  disarmReply(): void {
    if (this.#watch && !this.#closed) nativeUdp!.disarm(this.#watch);
  }

  /** @internal The descriptor the native path sends on. */
  descriptorForTest(): number | undefined {
    return this.#fd;
  }

  /** Lets the process exit while only this socket is open. */
  unref(): void {
    this.#socket.unref();
    if (this.#watch) nativeUdp!.refWatch(this.#watch, false);
  }

  /** Closes the socket; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#drained = [];
    if (this.#watch) nativeUdp!.unwatch(this.#watch);
    try {
      this.#socket.close();
    } catch {
      // already closed
    }
  }
}

const { EAGAIN, ENOBUFS, EINVAL, EIO, EMSGSIZE, EOPNOTSUPP } = constants.errno;
const SEGMENTATION_REFUSED = new Set([EINVAL, EIO, EMSGSIZE, EOPNOTSUPP]);
/** The kernel's limits for one segmented send: 64 segments, one IPv4 datagram's payload. */
const MAX_SEGMENTS = 64;
const MAX_SEGMENTED_BYTES = 65507;

/**
 * How many datagrams from `first` one segmented send can carry: all of one size, the last of the
 * run may be shorter (the end of the file).
 */
export function segmentRun(lengths: readonly number[], first: number, count: number): number {
  const size = lengths[first]!;
  let total = size;
  let n = 1;
  while (first + n < count && n < MAX_SEGMENTS) {
    const next = lengths[first + n]!;
    if (next > size || total + next > MAX_SEGMENTED_BYTES) break;
    total += next;
    n++;
    if (next < size) break;
  }
  return n;
}

/** What the native path needs of Node's handle under a bound dgram socket. */
interface UdpHandle {
  readonly fd: number;
  recvStop(): number;
}

/** The handle under a bound dgram socket: Node keeps it behind a symbol (reading
 * `socket._handle` would print a deprecation warning). Undefined if Node's internals differ. */
function udpHandleOf(socket: dgram.Socket): UdpHandle | undefined {
  const key = Object.getOwnPropertySymbols(socket).find((symbol) => symbol.description === 'state symbol');
  const handle = key && (socket as unknown as Record<symbol, { handle?: Partial<UdpHandle> }>)[key]?.handle;
  const usable = typeof handle?.fd === 'number' && handle.fd >= 0 && typeof handle.recvStop === 'function';
  return usable ? (handle as UdpHandle) : undefined;
}

/**
 * Single-port mode: one transfer's view of the listening socket. It sends from the listening
 * port, and the server hands it the datagrams of its peer; closing it only forgets the transfer.
 */
export class SharedSocket implements DatagramSocket {
  readonly #socket: UdpSocket;
  readonly #onClose: () => void;
  #closed = false;
  onMessage: MessageHandler = () => {};

  constructor(socket: UdpSocket, onClose: () => void) {
    this.#socket = socket;
    this.#onClose = onClose;
  }

  get local(): Endpoint {
    return this.#socket.local;
  }

  get pending(): number {
    return this.#closed ? 0 : this.#socket.pending;
  }

  send(data: Buffer, length: number, port: number, address: string): void {
    if (!this.#closed) this.#socket.send(data, length, port, address);
  }

  sendMany(
    buffers: readonly Buffer[],
    lengths: readonly number[],
    count: number,
    port: number,
    address: string,
  ): void {
    if (!this.#closed) this.#socket.sendMany(buffers, lengths, count, port, address);
  }

  whenSent(fn: () => void): void {
    this.#socket.whenSent(fn);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose();
  }
}

/** Scope ids differ in spelling (`%eth0`, `%2`); ports and addresses must match exactly. */
function sameAddress(a: string, b: string): boolean {
  return a === b || a.replace(/%.*$/, '') === b.replace(/%.*$/, '');
}

/**
 * One transfer's socket, talking to one peer: the {@link SessionIo} of a state machine.
 * Until {@link TransferChannel.lock} is called (client before the first reply), datagrams from
 * `expectFrom`'s address are offered to `onFirstReply`.
 */
export class TransferChannel implements SessionIo {
  readonly socket: DatagramSocket;
  readonly #hook: TftpPacketHook | undefined;
  #peerAddress: string;
  #peerPort: number;
  #locked: boolean;
  #strangerSecond = 0;
  #strangerReplies = 0;
  /** Sends held between cork() and uncork(). */
  #corked = false;
  readonly #batchBuffers: Buffer[] = [];
  readonly #batchLengths: number[] = [];
  #batchCount = 0;
  /** The armed reply (for the packet hook, which sees it when it fires). */
  #armed: Buffer | undefined;
  /** Datagrams from the peer; `answered`: the armed reply went out for this one. */
  onPacket: (datagram: Buffer, answered: boolean) => void = () => {};
  /** Before the lock: a datagram from the expected address; return true to lock onto its port. */
  onFirstReply: ((datagram: Buffer, from: Endpoint) => boolean) | undefined;
  /** Datagrams from strangers seen so far. */
  strangers = 0;

  constructor(
    socket: DatagramSocket,
    peer: Endpoint,
    options: { locked: boolean; hook?: TftpPacketHook | undefined },
  ) {
    this.socket = socket;
    this.#peerAddress = peer.address;
    this.#peerPort = peer.port;
    this.#locked = options.locked;
    this.#hook = options.hook;
    socket.onMessage = (message, remote, answered) => this.#onMessage(message, remote, answered === true);
  }

  /** Where sends go. */
  get peer(): Endpoint {
    return { address: this.#peerAddress, port: this.#peerPort };
  }

  /** Fixes the peer (its TID) from now on. */
  lock(peer: Endpoint): void {
    this.#peerAddress = peer.address;
    this.#peerPort = peer.port;
    this.#locked = true;
  }

  get pending(): number {
    return this.socket.pending;
  }

  whenSent(fn: () => void): void {
    this.socket.whenSent(fn);
  }

  send(packet: Buffer, length = packet.length): void {
    if (this.#hook) {
      this.#hook({
        direction: 'out',
        address: this.#peerAddress,
        port: this.#peerPort,
        packet: packet.subarray(0, length),
      });
    }
    if (!this.#corked) {
      this.socket.send(packet, length, this.#peerPort, this.#peerAddress);
      return;
    }
    this.#batchBuffers[this.#batchCount] = packet;
    this.#batchLengths[this.#batchCount++] = length;
  }

  /** Sends `packet[0, length)` the moment the peer's ACK of wire block `ackBlock` arrives, before
   * JavaScript runs (see {@link UdpSocket.armReply}); false if this socket cannot. */
  armReply(ackBlock: number, packet: Buffer, length: number): boolean {
    const armed =
      !this.#corked &&
      this.socket.armReply?.(ackBlock, packet, length, this.#peerPort, this.#peerAddress) === true;
    this.#armed = armed ? packet.subarray(0, length) : undefined;
    return armed;
  }

  disarmReply(): void {
    if (this.#armed === undefined) return;
    this.#armed = undefined;
    this.socket.disarmReply?.();
  }

  /** Holds sends until {@link TransferChannel.uncork}, which sends them as one batch. */
  cork(): void {
    this.#corked = true;
  }

  uncork(): void {
    this.#corked = false;
    const count = this.#batchCount;
    if (count === 0) return;
    this.#batchCount = 0;
    this.socket.sendMany(this.#batchBuffers, this.#batchLengths, count, this.#peerPort, this.#peerAddress);
    this.#batchBuffers.fill(EMPTY, 0, count); // keep no file data alive
  }

  #onMessage(message: Buffer, remote: dgram.RemoteInfo, answered: boolean): void {
    if (this.#locked) {
      if (remote.port === this.#peerPort && sameAddress(remote.address, this.#peerAddress)) {
        const reply = answered ? this.#armed : undefined;
        if (answered) this.#armed = undefined;
        if (this.#hook) {
          this.#hook({ direction: 'in', address: remote.address, port: remote.port, packet: message });
          if (reply)
            this.#hook({ direction: 'out', address: this.#peerAddress, port: this.#peerPort, packet: reply });
        }
        this.onPacket(message, answered);
        return;
      }
    } else if (sameAddress(remote.address, this.#peerAddress) && this.onFirstReply) {
      const from = { address: remote.address, port: remote.port };
      this.#hook?.({ direction: 'in', address: remote.address, port: remote.port, packet: message });
      if (this.onFirstReply(message, from)) return;
    }
    this.#stranger(message, remote);
  }

  /** ERROR 5 to a stranger, at most 10 a second, never in reply to an ERROR (no ping-pong). */
  #stranger(message: Buffer, remote: dgram.RemoteInfo): void {
    this.strangers++;
    if (message.length >= 2 && message[0] === 0 && message[1] === OPCODE.ERROR) return;
    const second = Math.floor(performance.now() / 1000);
    if (second !== this.#strangerSecond) {
      this.#strangerSecond = second;
      this.#strangerReplies = 0;
    }
    if (++this.#strangerReplies > 10) return;
    const reply = encodeError(TFTP_ERROR.UNKNOWN_TID, 'Unknown transfer ID');
    this.socket.send(reply, reply.length, remote.port, remote.address);
  }

  /** Sends what is corked (a transfer may end, with an ERROR, while a window is being sent). */
  close(): void {
    this.uncork();
    this.socket.close();
  }
}
