/** A scriptable UDP peer for sending hand-made TFTP packets and reading the answers. */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { decodePacket, encodePacket, type TftpPacket } from '../../src/tftp/codec.js';

export interface Received {
  packet: TftpPacket;
  raw: Buffer;
  from: { address: string; port: number };
}

export class RawPeer implements AsyncDisposable {
  readonly socket: dgram.Socket;
  readonly #queue: Received[] = [];
  #waiter: (() => void) | undefined;

  private constructor(socket: dgram.Socket) {
    this.socket = socket;
    socket.on('message', (raw, from) => {
      let packet: TftpPacket;
      try {
        packet = decodePacket(raw);
      } catch {
        packet = { opcode: 0 } as unknown as TftpPacket;
      }
      this.#queue.push({ packet, raw, from: { address: from.address, port: from.port } });
      this.#waiter?.();
    });
  }

  static async open(address = '127.0.0.1'): Promise<RawPeer> {
    const socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
    socket.bind(0, address);
    await once(socket, 'listening');
    return new RawPeer(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(packet: TftpPacket | Uint8Array, port: number, address = '127.0.0.1'): void {
    const bytes = packet instanceof Uint8Array ? packet : encodePacket(packet);
    this.socket.send(bytes, port, address);
  }

  /** The next datagram, or a rejection after `timeoutMs`. */
  async next(timeoutMs = 3000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    while (this.#queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no datagram within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#waiter = undefined;
    }
    return this.#queue.shift()!;
  }

  /** Everything that arrives within `ms`. */
  async collect(ms: number): Promise<Received[]> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return this.#queue.splice(0);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.socket.close();
  }
}
