/**
 * ftp-srv 4.6.3 as we use it: loaded through `require` (it is CommonJS and its typings do not
 * match the runtime, so only `FtpSrv` and `FileSystem` are taken and typed here by hand), and
 * constructed without the process-wide signal handlers it installs. ftp-srv is pinned exactly in
 * package.json because the backend relies on the internals typed below.
 * @internal
 * @module
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Server, Socket } from 'node:net';

/** A parsed FTP command line. */
export interface FtpCommand {
  directive: string;
  arg: string | null;
  flags: string[];
  raw: string;
}

/** The part of ftp-srv's per-client connection the backend touches. */
export interface FtpConnection extends EventEmitter {
  readonly id: string;
  /** The control socket; replaced by a TLSSocket after AUTH TLS. */
  commandSocket: Socket;
  /** The data-connection strategy ftp-srv's RETR/STOR/LIST call into. */
  connector: unknown;
  authenticated?: boolean;
  /** True once the control connection is protected by TLS. */
  secure: boolean;
  commands: {
    handle(command: string | FtpCommand): unknown;
    parse(message: string): FtpCommand;
  };
  reply(options: number | { code?: number; socket?: Socket }, ...letters: unknown[]): PromiseLike<unknown>;
  close(code?: number, message?: string): PromiseLike<unknown>;
}

/** The part of ftp-srv's server object the backend touches. */
export interface FtpServer extends EventEmitter {
  /** The underlying net.Server (or tls.Server for implicit FTPS, which we never use). */
  readonly server: Server;
  /** Live connections by id; ftp-srv arms a stray timer for every entry it finds on disconnect. */
  readonly connections: Record<string, FtpConnection>;
  listen(): PromiseLike<unknown>;
}

/** Options of ftp-srv's constructor that the backend sets. */
export interface FtpServerOptions {
  url: string;
  anonymous: false;
  greeting: string;
  log: unknown;
  tls: false | { key: string | Buffer; cert: string | Buffer };
  timeout: 0;
  blacklist: string[];
}

/** ftp-srv's FileSystem base class, as far as our subclass relies on it. */
export interface FtpFileSystemBase {
  readonly connection: FtpConnection;
  cwd: string;
}

/** Bluebird, the promise flavour ftp-srv's command handlers chain on (they call `.tap`). */
export interface BluebirdStatic {
  new <T>(executor: (resolve: (value: T) => void, reject: (reason: unknown) => void) => void): PromiseLike<T>;
  reject(reason: unknown): PromiseLike<never>;
  /** Rejecting with this makes ftp-srv answer 425 "No connection established". */
  TimeoutError: new (
    message?: string,
  ) => Error;
}

interface FtpSrvModule {
  FtpSrv: new (options: FtpServerOptions & { endOnProcessSignal: false }) => FtpServer;
  FileSystem: new (connection: FtpConnection, options: { root: string; cwd: string }) => FtpFileSystemBase;
}

const require = createRequire(import.meta.url);
const ftpSrv = require('ftp-srv') as FtpSrvModule;

/** ftp-srv's FileSystem class, to subclass. */
export const FileSystemBase = ftpSrv.FileSystem;

/** The Bluebird instance ftp-srv itself uses (its `TimeoutError` must be this one). */
export const Bluebird = createRequire(require.resolve('ftp-srv'))('bluebird') as BluebirdStatic;

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const;

/**
 * Constructs an ftp-srv server and removes the SIGTERM/SIGINT/SIGQUIT listeners its constructor
 * adds (they call `process.exit(0)`, which would end the user's test runner). The listeners are
 * anonymous closures, so whatever appeared during construction is removed.
 * `endOnProcessSignal: false` does the same on ftp-srv releases that know it.
 */
export function createFtpServer(options: FtpServerOptions): FtpServer {
  const before = new Map(SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  try {
    return new ftpSrv.FtpSrv({ ...options, endOnProcessSignal: false });
  } finally {
    for (const signal of SIGNALS) {
      for (const listener of process.listeners(signal)) {
        if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
      }
    }
  }
}
