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
/** Command lines read ahead while a transfer runs; beyond this the control socket stops reading. */
const MAX_QUEUED_LINES = 64;
/**
 * ABOR, possibly after Telnet IP and Synch (IAC IP IAC DM) and with its line end cut short: a
 * client that sends it as urgent data (Python's ftplib) loses the urgent last byte, `\n`.
 */
const ABOR_LINE = /^[^A-Za-z]*ABOR *\r?$/i;
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
  /** An ABOR ended a running transfer; its own reply (226) is still to come. */
  #abortedByClient = false;
  /** Stops the control socket now in use from reading (ftp-srv's pause, which we neuter). */
  #pauseReading: () => void = () => {};
  #resumeReading: () => void = () => {};

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
    this.#keepReading(raw);
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
    let queued = 0;
    const enqueue = (work: () => PromiseLike<unknown>) => {
      if (++queued > MAX_QUEUED_LINES) this.#pauseReading();
      queue = queue
        .then(work)
        .catch(() => {})
        .then(() => {
          if (--queued === MAX_QUEUED_LINES) this.#resumeReading();
        });
    };
    raw.on('data', (chunk: Buffer) => {
      partial += decoder.write(chunk);
      if (ABOR_LINE.test(partial.slice(partial.lastIndexOf('\n') + 1))) partial += '\n';
      const end = partial.lastIndexOf('\n');
      if (end < 0) {
        if (partial.length > MAX_LINE) {
          partial = '';
          enqueue(() => c.reply(500, 'Command line too long'));
        }
        return;
      }
      const lines = partial.slice(0, end + 1).split(/\r?\n/);
      partial = partial.slice(end + 1);
      for (const line of lines.slice(0, -1)) {
        if (line === '') continue; // e.g. the LF of an ABOR whose CR ended it already
        // ABOR cannot wait behind the transfer it is meant to stop: end it now, answer in turn.
        const abort = ABOR_LINE.test(line);
        if (abort && this.#aborts.size > 0) this.#abortByClient();
        enqueue(() => c._handleData(Buffer.from(abort ? 'ABOR\r\n' : `${line}\r\n`)));
      }
    });
  }

  /**
   * ftp-srv pauses the control socket for the length of every transfer, which would leave an
   * ABOR unread until the transfer ends. Commands are serialized by #readLines anyway, so its
   * pause is neutered; #readLines stops reading itself when too many lines wait.
   */
  #keepReading(socket: Socket): void {
    const pause = socket.pause.bind(socket);
    const resume = socket.resume.bind(socket);
    socket.pause = () => socket;
    this.#pauseReading = pause;
    this.#resumeReading = resume;
  }

  /**
   * Ends the running transfer for an ABOR: the upload's temporary file goes, and the data
   * connection is destroyed with the reason, which ftp-srv's RETR/STOR handler sees as an error
   * and answers (426, see #storageReplies), as it does for an idle data connection.
   */
  #abortByClient(): void {
    this.#abortedByClient = true;
    const reason = new FileServerError('ERR_TRANSFER_ABORTED', 'The client aborted the transfer (ABOR)');
    for (const abort of [...this.#aborts]) abort(reason);
    (this.connection.connector as { socket?: Socket | null }).socket?.destroy(reason);
  }

  /**
   * ftp-srv answers every failed STOR with 550 and RETR with 551; RFC 959 has 552 ("exceeded
   * storage allocation") for an upload over `maxFileSize` and 426 for a transfer that ABOR (or a
   * stop) cut short. ftp-srv emits 'STOR' or 'RETR' with the error right before replying.
   */
  #storageReplies(): void {
    const c = this.connection;
    const reply = c.reply.bind(c);
    let code: number | undefined;
    const failed = (error: unknown) => {
      if (isFileServerError(error, 'ERR_FILE_TOO_LARGE')) code = 552;
      else if (isFileServerError(error, 'ERR_TRANSFER_ABORTED')) code = 426;
    };
    c.on('STOR', failed);
    c.on('RETR', failed);
    c.reply = (options, ...letters) => {
      const replaced = (options === 550 || options === 551) && code !== undefined ? code : options;
      code = undefined;
      return reply(replaced, ...(replaced === 426 ? ['Connection closed; transfer aborted'] : letters));
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
    if (directive === 'ABOR') {
      // The transfer it ended has had its 426 by now (see #readLines); a pending data connection goes.
      const aborted = this.#abortedByClient;
      this.#abortedByClient = false;
      (c.connector as { end?: () => void }).end?.();
      await c.reply(aborted ? 226 : 225, aborted ? 'ABOR successful' : 'No transfer to abort');
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
    this.#pauseReading();
    await new Promise<void>((resolve, reject) =>
      raw.write('234 AUTH TLS successful\r\n', (error) => (error ? reject(error) : resolve())),
    );
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext });
    for (const event of ['data', 'timeout', 'end', 'close', 'drain', 'error']) {
      secure.on(event, (...args: unknown[]) => raw.emit(event, ...args));
    }
    c.commandSocket = secure;
    c.secure = true;
    this.#keepReading(secure);
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
