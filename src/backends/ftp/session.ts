/**
 * One FTP control connection, taken over from ftp-srv as soon as it connects: our own idle
 * timeout (which does not cut running transfers), our data-connection commands, the TLS and
 * read-only gates, failed-login limits, and a close path that aborts running transfers and
 * releases every socket and timer. ftp-srv's own disconnect path arms a timer it never clears;
 * removing the connection from its table first keeps that path from running.
 * @internal
 * @module
 */
import type { Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import tls from 'node:tls';
import { FileServerError, isFileServerError } from '../../errors.js';
import type { Peer } from '../../transfer.js';
import {
  type DataCommandState,
  type DataSettings,
  handleDataCommand,
  NO_DATA_CONNECTION,
} from './data-channel.js';
import type { SessionState } from './file-system.js';
import type { FtpCommand, FtpConnection, FtpServer } from './ftp-srv.js';

/** What a session needs from the server's options. */
export interface SessionSettings {
  readonly data: DataSettings;
  readonly idleTimeoutMs: number;
  readonly requireTls: boolean;
  readonly readOnly: boolean;
  readonly maxFailedLogins: number;
}

/** Longest command line accepted (RFC 959 has no limit; paths are the long part). */
const MAX_LINE = 8192;
const DATA_COMMANDS = new Set(['PASV', 'EPSV', 'PORT', 'EPRT']);
const UPLOAD_COMMANDS = new Set(['STOR', 'APPE', 'STOU']);
const FEATURES = ['EPRT', 'EPSV', 'MDTM', 'PASV', 'REST STREAM', 'SIZE', 'TVFS', 'UTF8'];
const TLS_FEATURES = ['AUTH TLS', 'PBSZ', 'PROT'];
/** What a client may send before AUTH TLS on a server that requires TLS. */
const BEFORE_TLS = new Set(['AUTH', 'FEAT', 'QUIT', 'NOOP', 'SYST', 'HELP', 'PBSZ', 'PROT']);

/** @internal */
export class FtpSession implements SessionState, DataCommandState {
  readonly connection: FtpConnection;
  readonly peer: Peer;
  epsvAll = false;
  failedLogins = 0;
  readonly #settings: SessionSettings;
  readonly #raw: Socket;
  readonly #aborts = new Set<(reason: Error) => void>();
  readonly #onClose: () => void;
  #closed = false;

  constructor(ftp: FtpServer, connection: FtpConnection, settings: SessionSettings, onClose: () => void) {
    this.connection = connection;
    this.#settings = settings;
    this.#onClose = onClose;
    const raw = connection.commandSocket;
    this.#raw = raw;
    this.peer = { address: raw.remoteAddress ?? '', port: raw.remotePort ?? 0 };
    raw.prependListener('close', () => {
      delete ftp.connections[connection.id];
      this.#closing();
    });
    this.#readLines(raw);
    // ftp-srv's 'timeout' listener closes the connection even mid-transfer; ours does not.
    raw.removeAllListeners('timeout');
    raw.on('timeout', () => this.#idle());
    raw.setTimeout(settings.idleTimeoutMs);
    connection.connector = NO_DATA_CONNECTION;
    this.#storageReplies();
    const original = connection.commands.handle.bind(connection.commands);
    connection.commands.handle = (message) => this.#handle(message, original);
  }

  /**
   * ftp-srv parses every TCP chunk on its own, so a command split across two segments is read as
   * two broken ones, and chunks are processed concurrently. Here complete lines (CRLF or bare LF)
   * are handed over in order, one batch after the other, and a line may not grow without bound.
   * With TLS, ftp-srv forwards the decrypted data to this same socket.
   */
  #readLines(raw: Socket): void {
    raw.removeAllListeners('data');
    const decoder = new StringDecoder('utf8');
    const c = this.connection as FtpConnection & { _handleData(data: Buffer): PromiseLike<unknown> };
    let partial = '';
    let queue: Promise<unknown> = Promise.resolve();
    raw.on('data', (chunk: Buffer) => {
      partial += decoder.write(chunk);
      const end = partial.lastIndexOf('\n');
      if (end < 0) {
        if (partial.length > MAX_LINE) {
          partial = '';
          queue = queue.then(() => c.reply(500, 'Command line too long')).catch(() => {});
        }
        return;
      }
      const lines = partial.slice(0, end + 1).replace(/\r?\n/g, '\r\n');
      partial = partial.slice(end + 1);
      queue = queue.then(() => c._handleData(Buffer.from(lines))).catch(() => {});
    });
  }

  /**
   * ftp-srv answers every failed STOR with 550; an upload over `maxFileSize` gets RFC 959's 552
   * ("exceeded storage allocation"). ftp-srv emits 'STOR' with the error right before replying.
   */
  #storageReplies(): void {
    const c = this.connection;
    const reply = c.reply.bind(c);
    let code: number | undefined;
    c.on('STOR', (error: unknown) => {
      if (isFileServerError(error, 'ERR_FILE_TOO_LARGE')) code = 552;
    });
    c.reply = (options, ...letters) => {
      const replaced = options === 550 && code !== undefined ? code : options;
      code = undefined;
      return reply(replaced, ...letters);
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  track(abort: (reason: Error) => void): () => void {
    this.#aborts.add(abort);
    return () => this.#aborts.delete(abort);
  }

  async #handle(message: string | FtpCommand, original: (command: FtpCommand) => unknown): Promise<void> {
    const command = typeof message === 'string' ? this.connection.commands.parse(message) : message;
    try {
      if (await this.#intercepted(command)) return;
      await original(command);
      if (command.directive === 'PASS' && this.failedLogins >= this.#settings.maxFailedLogins) {
        await this.connection.close(421, 'Too many failed logins');
      }
    } catch (error) {
      this.#settings.data.log('%s failed: %s', command.directive, (error as Error).message);
      await this.connection.reply(451, 'Local error in processing');
    }
  }

  /** Answers the commands we handle or refuse ourselves; true when ftp-srv must not see it. */
  async #intercepted({ directive, arg }: FtpCommand): Promise<boolean> {
    const c = this.connection;
    if (this.#settings.requireTls && !c.secure && !BEFORE_TLS.has(directive)) {
      await c.reply(530, 'This server requires TLS: send AUTH TLS first');
      return true;
    }
    if (directive === 'AUTH') {
      await this.#startTls(arg);
      return true;
    }
    if (directive === 'FEAT') {
      // ftp-srv lists AUTH TLS even without TLS and leaves out EPSV and REST STREAM.
      const features = [...FEATURES, ...(this.#settings.data.secureContext ? TLS_FEATURES : [])].sort();
      await c.reply(
        211,
        'Extensions supported',
        ...features.map((f) => ({ message: ` ${f}`, raw: true })),
        'End',
      );
      return true;
    }
    if (DATA_COMMANDS.has(directive)) {
      if (c.authenticated) await handleDataCommand(directive, arg, c, this.#settings.data, this);
      else await c.reply(530, 'Not logged in');
      return true;
    }
    if (this.#settings.readOnly && c.authenticated && UPLOAD_COMMANDS.has(directive)) {
      await c.reply(550, 'This server is read-only');
      return true;
    }
    return false;
  }

  /**
   * AUTH TLS (RFC 4217). ftp-srv's own handler wraps the socket only after its 234 reply has
   * been written, so a ClientHello arriving in between is read as a command and answered in
   * clear text, which breaks the handshake at random. Here the socket stops emitting data before
   * the reply and is wrapped as soon as the reply is out; bytes that came meanwhile stay
   * buffered and go to TLS. Events of the TLS socket are forwarded to the raw one, where
   * ftp-srv (and this session) listen.
   */
  async #startTls(arg: string | null): Promise<void> {
    const c = this.connection;
    const secureContext = this.#settings.data.secureContext;
    if (!secureContext) return void (await c.reply(502, 'TLS is not enabled on this server'));
    if (!['TLS', 'TLS-C', 'SSL'].includes(arg?.trim().toUpperCase() ?? '')) {
      return void (await c.reply(504, 'Use AUTH TLS'));
    }
    if (c.secure) return void (await c.reply(503, 'TLS is already on'));
    const raw = this.#raw;
    raw.pause();
    await new Promise<void>((resolve, reject) =>
      raw.write('234 AUTH TLS successful\r\n', (error) => (error ? reject(error) : resolve())),
    );
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext });
    for (const event of ['data', 'timeout', 'end', 'close', 'drain', 'error']) {
      secure.on(event, (...args: unknown[]) => raw.emit(event, ...args));
    }
    c.commandSocket = secure;
    c.secure = true;
    // The TLS socket now reads the descriptor: the idle timer moves to it.
    raw.setTimeout(0);
    secure.setTimeout(this.#settings.idleTimeoutMs);
  }

  #idle(): void {
    const socket = this.connection.commandSocket;
    if (this.#aborts.size > 0) {
      socket.setTimeout(this.#settings.idleTimeoutMs); // a transfer is running: check again later
      return;
    }
    this.#settings.data.log('closing idle control connection from %s', this.peer.address);
    void this.connection.close(421, 'Idle timeout, closing control connection');
  }

  /** Counts a failed login; the connection closes after the reply to the last allowed one. */
  loginFailed(): void {
    this.failedLogins++;
  }

  #closing(): void {
    if (this.#closed) return;
    this.#closed = true;
    const reason = new FileServerError('ERR_TRANSFER_ABORTED', 'The control connection closed');
    for (const abort of [...this.#aborts]) abort(reason);
    this.#aborts.clear();
    const connector = this.connection.connector as { destroy?: () => void } | undefined;
    connector?.destroy?.();
    this.#onClose();
  }

  /** Ends the session now: transfers abort, sockets close. */
  destroy(): void {
    this.#closing();
    this.connection.commandSocket.destroy();
    this.#raw.destroy();
  }
}
