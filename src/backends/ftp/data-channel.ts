/**
 * FTP data connections: our replacement for ftp-srv's passive and active connectors, installed
 * per connection by the PASV, EPSV, PORT and EPRT handlers below. ftp-srv's own connectors leave
 * timers behind (a 30 s idle timer per passive listener that nothing clears, and a polling loop
 * that keeps running after its 5 s timeout), bind passive ports from a range shared by every
 * server, and answer PASV with a configured URL. Ours:
 * - listen in this server's own port window on the bind address and answer with the advertised
 *   address;
 * - accept data connections only from the control connection's peer, and connect actively only
 *   back to that peer on a port of 1024 or more (RFC 2577: no FTP bounce);
 * - speak TLS on the data connection once the control connection does;
 * - hold one timer at a time per connection, cleared on every path.
 * ftp-srv's RETR/STOR/LIST call `waitForConnection()` (a Bluebird promise: they chain `.tap`),
 * read `socket` and call `end()`.
 * @internal
 * @module
 */
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../../log.js';
import { Bluebird, type FtpConnection } from './ftp-srv.js';
import type { PassiveWindow } from './passive-ports.js';

/** What every data connection of one server shares. */
export interface DataSettings {
  readonly bindAddress: string;
  readonly advertisedAddress: string;
  readonly window: PassiveWindow;
  /** How long to wait for the data connection, and how long it may then stay silent. */
  readonly timeoutMs: number;
  readonly activeMode: boolean;
  /** Set when the server offers TLS: data connections of a protected session use it. */
  readonly secureContext: tls.SecureContext | undefined;
  readonly log: Logger;
}

/** The interface ftp-srv's command handlers use. */
export interface Connector {
  readonly socket: Socket | null;
  waitForConnection(): PromiseLike<Socket>;
  end(): void;
}

/** The connector of a connection with no PASV/PORT pending: transfers answer 425. */
export const NO_DATA_CONNECTION: Connector = {
  socket: null,
  waitForConnection: () => Bluebird.reject(new Bluebird.TimeoutError('Use PASV, EPSV, PORT or EPRT first')),
  end: () => {},
};

/** `::ffff:1.2.3.4` and `1.2.3.4` are the same host. */
export function sameHost(a: string | undefined, b: string | undefined): boolean {
  const bare = (s: string | undefined) => s?.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '').toLowerCase();
  return a !== undefined && b !== undefined && bare(a) === bare(b);
}

abstract class DataChannel implements Connector {
  protected readonly connection: FtpConnection;
  protected readonly settings: DataSettings;
  /** The control socket as it was when the channel was set up (the raw socket before AUTH TLS). */
  protected readonly peer: string | undefined;
  #socket: Socket | null = null;
  #timer: NodeJS.Timeout | undefined;
  #waiters: Array<{ resolve: (s: Socket) => void; reject: (e: unknown) => void }> = [];
  #closed = false;

  constructor(connection: FtpConnection, settings: DataSettings) {
    this.connection = connection;
    this.settings = settings;
    this.peer = connection.commandSocket.remoteAddress;
  }

  get socket(): Socket | null {
    return this.#socket;
  }

  protected get closed(): boolean {
    return this.#closed;
  }

  waitForConnection(): PromiseLike<Socket> {
    return new Bluebird<Socket>((resolve, reject) => {
      if (this.#socket) return resolve(this.#socket);
      if (this.#closed) return reject(new Bluebird.TimeoutError('Data connection closed'));
      this.#waiters.push({ resolve, reject });
      this.opening();
      this.#arm(() => this.#fail(new Bluebird.TimeoutError('No data connection')));
    });
  }

  /** Called when a transfer waits for the connection (active mode connects now). */
  protected opening(): void {}

  /**
   * Adopts a connected socket, wrapped in TLS when the session is protected. The handshake is
   * not awaited: clients such as curl start it only after the 150 reply that ftp-srv sends once
   * the connection is ready, and a TLS socket holds writes until the handshake is done.
   */
  protected adopt(raw: Socket): void {
    raw.on('error', (error) => this.settings.log('data connection: %s', error.message));
    if (!this.connection.secure || !this.settings.secureContext) {
      this.#ready(raw);
      return;
    }
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: this.settings.secureContext });
    secure.on('error', (error) => this.settings.log('data connection TLS: %s', error.message));
    this.#ready(secure);
  }

  #ready(socket: Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    this.#clear();
    this.#socket = socket;
    // A stalled peer must not hold the transfer (and stop()) forever.
    socket.setTimeout(this.settings.timeoutMs, () => socket.destroy(new Error('Data connection idle')));
    for (const waiter of this.#waiters.splice(0)) waiter.resolve(socket);
  }

  #fail(error: unknown): void {
    this.#clear();
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
    this.destroy();
  }

  protected arm(onTimeout: () => void): void {
    this.#arm(onTimeout);
  }

  #arm(onTimeout: () => void): void {
    this.#clear();
    this.#timer = setTimeout(onTimeout, this.settings.timeoutMs);
  }

  #clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Ends the data connection gracefully (flushing what was written) and frees the channel. */
  end(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clear();
    for (const waiter of this.#waiters.splice(0))
      waiter.reject(new Bluebird.TimeoutError('Data connection closed'));
    this.closeListener();
    const socket = this.#socket;
    if (socket && !socket.destroyed) {
      // Flush what was written (the end of a download), then let the descriptor go: a data
      // socket nobody reads any more would otherwise wait for the peer's FIN until it idles out.
      socket.end(() => socket.destroy());
    }
    if (this.connection.connector === this) this.connection.connector = NO_DATA_CONNECTION;
  }

  /** Drops the data connection at once. */
  destroy(): void {
    const socket = this.#socket;
    this.end();
    socket?.destroy();
  }

  protected closeListener(): void {}
}

/** PASV/EPSV: we listen, the client connects. */
export class PassiveChannel extends DataChannel {
  readonly #server: net.Server;
  #port = 0;

  private constructor(connection: FtpConnection, settings: DataSettings) {
    super(connection, settings);
    this.#server = net.createServer({ pauseOnConnect: true }, (raw) => this.#accept(raw));
    this.#server.on('error', (error) => settings.log('passive listener: %s', error.message));
  }

  /** Listens on a port of the server's window; the listener closes if nobody comes in time. */
  static async open(connection: FtpConnection, settings: DataSettings): Promise<PassiveChannel> {
    const channel = new PassiveChannel(connection, settings);
    channel.#port = await settings.window.listen(channel.#server, settings.bindAddress);
    channel.arm(() => channel.destroy());
    return channel;
  }

  get port(): number {
    return this.#port;
  }

  #accept(raw: Socket): void {
    if (this.socket || this.closed || !sameHost(raw.remoteAddress, this.peer)) {
      this.settings.log('refused data connection from %s (control peer %s)', raw.remoteAddress, this.peer);
      raw.destroy();
      return;
    }
    this.#server.close(); // one connection per PASV; the port is free again once it closes
    this.adopt(raw);
  }

  protected override closeListener(): void {
    this.#server.close();
  }
}

/** PORT/EPRT: the client listens, we connect (when the transfer starts). */
export class ActiveChannel extends DataChannel {
  readonly #host: string;
  readonly #port: number;
  #raw: Socket | undefined;

  constructor(connection: FtpConnection, settings: DataSettings, host: string, port: number) {
    super(connection, settings);
    this.#host = host;
    this.#port = port;
  }

  protected override opening(): void {
    if (this.#raw) return;
    const local = this.connection.commandSocket.localAddress;
    const localAddress =
      local && net.isIPv4(this.#host) ? local.replace(/^::ffff:/i, '') : (local ?? undefined);
    const raw = net.connect({
      host: this.#host,
      port: this.#port,
      ...(localAddress && net.isIP(localAddress) === net.isIP(this.#host) ? { localAddress } : {}),
    });
    raw.once('connect', () => this.adopt(raw));
    raw.once('error', () => this.destroy());
    // end()/destroy() before the connection completes must not leave it half open.
    raw.once('close', () => {
      if (!this.socket) this.destroy();
    });
    this.#raw = raw;
  }

  protected override closeListener(): void {
    if (this.#raw && !this.socket) this.#raw.destroy();
  }
}

/** Per-connection state the data commands need. */
export interface DataCommandState {
  /** After `EPSV ALL` only EPSV may set up data connections (RFC 2428). */
  epsvAll: boolean;
}

const REFUSED_TARGET =
  'Refused: data connections go only back to your own address, on a port of 1024 or more (RFC 2577)';

function replaceConnector(connection: FtpConnection, next: Connector): void {
  const current = connection.connector as Partial<DataChannel> | undefined;
  if (current && current !== next && typeof current.destroy === 'function') current.destroy();
  connection.connector = next;
}

function parsePort(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/**
 * Handles PASV, EPSV, PORT and EPRT for `connection`; returns false for any other directive.
 * Replies are sent here; nothing throws.
 */
export async function handleDataCommand(
  directive: string,
  arg: string | null,
  connection: FtpConnection,
  settings: DataSettings,
  state: DataCommandState,
): Promise<boolean> {
  switch (directive) {
    case 'PASV':
    case 'EPSV': {
      if (directive === 'EPSV' && arg?.toUpperCase() === 'ALL') {
        state.epsvAll = true;
        await connection.reply(200, 'EPSV ALL ok');
        return true;
      }
      if (directive === 'PASV' && state.epsvAll) {
        await connection.reply(503, 'PASV not allowed after EPSV ALL');
        return true;
      }
      if (directive === 'EPSV' && arg && arg !== '1' && arg !== '2') {
        await connection.reply(522, 'Network protocol not supported, use (1,2)');
        return true;
      }
      if (directive === 'PASV' && !net.isIPv4(settings.advertisedAddress)) {
        await connection.reply(425, 'PASV needs an IPv4 server address; use EPSV');
        return true;
      }
      let channel: PassiveChannel;
      try {
        channel = await PassiveChannel.open(connection, settings);
      } catch (error) {
        settings.log('passive listen failed: %s', (error as Error).message);
        await connection.reply(425, 'Cannot open a passive data port');
        return true;
      }
      replaceConnector(connection, channel);
      const port = channel.port;
      if (directive === 'EPSV') {
        await connection.reply(229, `Entering Extended Passive Mode (|||${port}|)`);
      } else {
        const host = settings.advertisedAddress.replace(/\./g, ',');
        await connection.reply(227, `Entering Passive Mode (${host},${port >> 8},${port & 255})`);
      }
      return true;
    }
    case 'PORT':
    case 'EPRT': {
      if (!settings.activeMode) {
        await connection.reply(502, 'Active mode is turned off on this server; use PASV or EPSV');
        return true;
      }
      if (state.epsvAll) {
        await connection.reply(503, `${directive} not allowed after EPSV ALL`);
        return true;
      }
      const target = directive === 'PORT' ? parsePortArg(arg) : parseEprtArg(arg);
      if (!target) {
        await connection.reply(501, `Malformed ${directive} argument`);
        return true;
      }
      if (!sameHost(target.host, connection.commandSocket.remoteAddress) || target.port < 1024) {
        settings.log('%s to %s:%d refused', directive, target.host, target.port);
        await connection.reply(504, REFUSED_TARGET);
        return true;
      }
      replaceConnector(connection, new ActiveChannel(connection, settings, target.host, target.port));
      await connection.reply(200, `${directive} command successful`);
      return true;
    }
    default:
      return false;
  }
}

/** `h1,h2,h3,h4,p1,p2` (RFC 959). */
function parsePortArg(arg: string | null): { host: string; port: number } | undefined {
  const parts = arg?.trim().split(',');
  if (parts?.length !== 6 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  const n = parts.map(Number);
  return { host: n.slice(0, 4).join('.'), port: n[4]! * 256 + n[5]! };
}

/** `<d>1<d>ip<d>port<d>` or `<d>2<d>ip6<d>port<d>` with any delimiter d (RFC 2428). */
function parseEprtArg(arg: string | null): { host: string; port: number } | undefined {
  const text = arg?.trim() ?? '';
  const d = text[0];
  if (!d || text.length < 7 || text.at(-1) !== d) return undefined;
  const [family, host, portText, ...rest] = text.slice(1, -1).split(d);
  const port = parsePort(portText);
  if (rest.length > 0 || host === undefined || port === undefined) return undefined;
  if ((family === '1' && net.isIPv4(host)) || (family === '2' && net.isIPv6(host))) return { host, port };
  return undefined;
}
