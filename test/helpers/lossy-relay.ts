/**
 * A UDP relay that damages traffic on purpose: it drops, duplicates, reorders and delays
 * datagrams at configurable rates, each direction on its own, from a seeded random source so a
 * failing run can be replayed. It understands TFTP's port change (the server answers from a new
 * port per transfer): for every server port it opens a matching relay port towards the client.
 *
 *   client ⇄ relay.port (requests) / per-transfer relay ports ⇄ server
 *
 * Bounded: at most `maxHeld` datagrams wait in delay or reorder queues; beyond that they are
 * dropped. close() clears every timer and socket.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';

/** Damage applied to one direction. Rates are probabilities 0..1. */
export interface Impairment {
  drop?: number;
  duplicate?: number;
  /** Hold a datagram back and send it after the next one. */
  reorder?: number;
  /** Fixed delay in ms. */
  delayMs?: number;
  /** Extra random delay, 0..jitterMs. */
  jitterMs?: number;
  /** Drops the datagrams this returns true for (a deterministic loss, e.g. the first ACK 0). */
  dropIf?: (datagram: Buffer) => boolean;
}

export interface RelayOptions {
  /** Where the real server listens. */
  target: { address: string; port: number };
  /** Damage to datagrams going to the server. */
  toServer?: Impairment;
  /** Damage to datagrams going to the client. */
  toClient?: Impairment;
  /** Seed of the random source (default 1). */
  seed?: number;
  /** Datagrams allowed in delay and reorder queues at once (default 10 000). */
  maxHeld?: number;
}

export interface RelayCounters {
  forwarded: number;
  dropped: number;
  duplicated: number;
  reordered: number;
}

/** mulberry32: small, fast, good enough to pick which datagrams to damage. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function bound(address: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  socket.bind(0, address);
  await once(socket, 'listening');
  return socket;
}

type Send = (data: Buffer) => void;

/** One direction's damage, with its own reorder slot. */
class Lane {
  readonly #impairment: Impairment;
  readonly #relay: LossyRelay;
  #held: { data: Buffer; send: Send } | undefined;

  constructor(impairment: Impairment | undefined, relay: LossyRelay) {
    this.#impairment = impairment ?? {};
    this.#relay = relay;
  }

  pass(data: Buffer, send: Send): void {
    const i = this.#impairment;
    const r = this.#relay;
    if (i.dropIf?.(data) || r.chance(i.drop)) {
      r.counters.dropped++;
      return;
    }
    const copies = r.chance(i.duplicate) ? 2 : 1;
    if (copies === 2) r.counters.duplicated++;
    for (let c = 0; c < copies; c++) {
      if (!this.#held && r.chance(i.reorder) && r.hold()) {
        r.counters.reordered++;
        const held = { data, send };
        this.#held = held;
        // Overtaken by the next datagram, or sent late anyway if none comes: reordered, not lost.
        r.schedule(() => {
          if (this.#held !== held) return;
          this.#held = undefined;
          r.release();
          this.#later(held.data, held.send);
        }, 20);
        continue;
      }
      this.#later(data, send);
      const held = this.#held;
      if (held) {
        this.#held = undefined;
        r.release();
        this.#later(held.data, held.send);
      }
    }
  }

  #later(data: Buffer, send: Send): void {
    const i = this.#impairment;
    const r = this.#relay;
    const delay = (i.delayMs ?? 0) + (i.jitterMs ? r.next() * i.jitterMs : 0);
    if (delay <= 0) {
      r.counters.forwarded++;
      send(data);
      return;
    }
    if (!r.hold()) {
      r.counters.dropped++;
      return;
    }
    r.schedule(() => {
      r.release();
      r.counters.forwarded++;
      send(data);
    }, delay);
  }

  /** Forgets what is held back (at close). */
  forget(): void {
    this.#held = undefined;
  }
}

export class LossyRelay implements AsyncDisposable {
  readonly counters: RelayCounters = { forwarded: 0, dropped: 0, duplicated: 0, reordered: 0 };
  readonly #options: RelayOptions;
  readonly #front: dgram.Socket;
  readonly #rand: () => number;
  readonly #toServer: Lane;
  readonly #toClient: Lane;
  readonly #upstreams = new Map<string, Promise<dgram.Socket>>();
  readonly #sockets = new Set<dgram.Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #held = 0;
  #closed = false;

  private constructor(front: dgram.Socket, options: RelayOptions) {
    this.#front = front;
    this.#options = options;
    this.#rand = random(options.seed ?? 1);
    this.#toServer = new Lane(options.toServer, this);
    this.#toClient = new Lane(options.toClient, this);
    this.#sockets.add(front);
    front.on('message', (data, from) => {
      // Requests: to the server's listening port, through this client's upstream socket.
      void this.#upstream(from).then((up) =>
        this.#toServer.pass(data, (d) => up.send(d, options.target.port, options.target.address)),
      );
    });
  }

  static async start(options: RelayOptions): Promise<LossyRelay> {
    return new LossyRelay(await bound(options.target.address), options);
  }

  /** The port clients send their requests to. */
  get port(): number {
    return this.#front.address().port;
  }

  /** @internal */
  chance(rate: number | undefined): boolean {
    return rate !== undefined && rate > 0 && this.#rand() < rate;
  }

  /** @internal */
  next(): number {
    return this.#rand();
  }

  /** @internal Reserves a place in the bounded queues. */
  hold(): boolean {
    if (this.#held >= (this.#options.maxHeld ?? 10_000)) return false;
    this.#held++;
    return true;
  }

  /** @internal */
  release(): void {
    this.#held--;
  }

  /** @internal */
  schedule(fn: () => void, ms: number): void {
    if (this.#closed) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#closed) fn();
    }, ms);
    this.#timers.add(timer);
  }

  /** The socket that speaks to the server for one client endpoint, with its per-TID front ports. */
  #upstream(client: dgram.RemoteInfo): Promise<dgram.Socket> {
    const key = `${client.address}|${client.port}`;
    let up = this.#upstreams.get(key);
    if (up) return up;
    up = bound(this.#options.target.address).then((socket) => {
      this.#sockets.add(socket);
      const fronts = new Map<number, Promise<dgram.Socket>>();
      socket.on('message', (data, from) => {
        if (from.address !== this.#options.target.address) return;
        let front = fronts.get(from.port);
        if (!front) {
          // The server's new TID gets its own relay port, so the client sees a TID change too.
          front =
            from.port === this.#options.target.port
              ? Promise.resolve(this.#front)
              : this.#transferFront(socket, client, from.port);
          fronts.set(from.port, front);
        }
        void front.then((f) => this.#toClient.pass(data, (d) => f.send(d, client.port, client.address)));
      });
      return socket;
    });
    this.#upstreams.set(key, up);
    return up;
  }

  async #transferFront(
    up: dgram.Socket,
    client: dgram.RemoteInfo,
    serverPort: number,
  ): Promise<dgram.Socket> {
    const front = await bound(this.#options.target.address);
    this.#sockets.add(front);
    front.on('message', (data, from) => {
      if (from.port !== client.port || from.address !== client.address) return;
      this.#toServer.pass(data, (d) => up.send(d, serverPort, this.#options.target.address));
    });
    return front;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#toServer.forget();
    this.#toClient.forget();
    for (const socket of this.#sockets) {
      try {
        socket.close();
      } catch {
        // already closed
      }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
