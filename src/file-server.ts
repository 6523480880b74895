/**
 * {@link FileServer}: one throw-away file transfer server for the length of a test.
 * @module
 */
import { EventEmitter } from 'node:events';
import { access, constants, mkdir, mkdtemp, realpath, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import type { Backend, RunningBackend } from './backends/backend.js';
import type { FtpBackendOptions } from './backends/ftp.js';
import type { HttpBackendOptions } from './backends/http.js';
import { backendTraits, loadBackend } from './backends/index.js';
import type { ScpInfoOptions } from './backends/scp-info.js';
import type { SshBackendOptions } from './backends/ssh.js';
import type { TftpBackendOptions } from './backends/tftp.js';
import { type Credentials, generateCredentials } from './credentials.js';
import { FileServerError, fromSystemError } from './errors.js';
import { log, redact, serverStartChannel, serverStopChannel, transferChannel } from './log.js';
import {
  type AddressOptions,
  isWildcard,
  type ResolvedAddress,
  resolveAddress,
} from './net/reachable-address.js';
import { formatUrl } from './net/url.js';
import type { ServerEntry, Testbed } from './testbed/testbed.js';
import { PROTOCOLS, type Protocol, STANDARD_PORTS, type TransferEvent, TransferTracker } from './transfer.js';
import { abortSignalAfter, raceSignal } from './util/abort.js';
import { Teardown } from './util/teardown.js';

/** Everything a {@link FileServer} can be told. Only `protocol` is required. */
export interface FileServerOptions extends AddressOptions {
  /** `tftp`, `ftp`, `http`, `https`, `scp` (information only unless `embedded`) or `sftp`. */
  protocol: Protocol;
  /** Name in the testbed; required when `testbed` is given. */
  name?: string;
  /** Register here while running (see {@link Testbed}). */
  testbed?: Testbed;
  /**
   * Folder to serve; created if missing. Default: a fresh temporary folder, removed on stop
   * (only a folder the server created itself is ever removed). The file system root is refused.
   */
  root?: string;
  /** Refuse every upload (default false). */
  readOnly?: boolean;
  /** The opposite of readOnly, in TFTP's words (`writable: false`). Give one or the other. */
  writable?: boolean;
  /** Replace existing files on upload (default true); false answers "file exists". */
  overwrite?: boolean;
  /** Largest upload accepted, in bytes. */
  maxFileSize?: number;
  /**
   * Port to listen on. Default: a free port the kernel picks. A number: exactly that port, or a
   * typed error (ERR_ADDRESS_IN_USE, ERR_PERMISSION_DENIED). `'standard'`: the protocol's
   * well-known port ({@link STANDARD_PORTS}: 69, 21, 80, 443, 22) if it can be bound, else a free one.
   */
  port?: number | 'standard';
  /**
   * What devices are told, when it differs from what is bound (NAT, jump hosts, containers).
   * Used in the info, the testbed entry, URLs, FTP passive replies and TLS certificates.
   */
  advertise?: {
    /** Address devices are told (default: the bound one; for a wildcard bind, the default reachable address). */
    address?: string;
    /** Port devices are told, e.g. a NAT forward (default: the bound port). */
    port?: number;
  };
  /** Username; given with `password`, or both are generated. */
  username?: string;
  /** Password; given with `username`, or both are generated. */
  password?: string;
  /** HTTP only: `false` serves without Basic auth (default true). */
  auth?: boolean;
  /** SCP only: run an embedded SSH server instead of publishing this host's own SSH service. */
  embedded?: boolean;
  /** How long stop() lets running transfers finish before aborting them (default 2000 ms). */
  stopGraceMs?: number;
  /** start() gives up after this long (default 10 000 ms). */
  startTimeoutMs?: number;
  /** TFTP engine options. */
  tftp?: TftpBackendOptions;
  /** FTP options (passive ports, TLS, ...). */
  ftp?: FtpBackendOptions;
  /** HTTP and HTTPS options (timeouts, listings, the HTTPS certificate, ...). */
  http?: HttpBackendOptions;
  /** Embedded SSH (scp/sftp) options (host keys, ...). */
  ssh?: SshBackendOptions;
  /** Information-only SCP options. */
  scp?: ScpInfoOptions;
}

/** Where a running server listens and how to log in; also its testbed entry. */
export interface FileServerInfo {
  /** The `name` option: the server's name in the testbed; undefined when none was given. */
  readonly name: string | undefined;
  /** The protocol served, as given in the options. */
  readonly protocol: Protocol;
  /** The address devices use (the advertised one). */
  readonly address: string;
  /** The port devices use (the advertised one). */
  readonly port: number;
  /** The address actually bound. */
  readonly bindAddress: string;
  /** The port actually bound. */
  readonly bindPort: number;
  /** Why this address was chosen. */
  readonly addressReason: string;
  /** Absolute path of the served folder. */
  readonly root: string;
  /** True when uploads are refused (`readOnly: true` or `writable: false`). */
  readonly readOnly: boolean;
  /** `protocol://address:port/`, without credentials. */
  readonly url: string;
  /** Login name (given or generated); absent for tftp and for http with `auth: false`. */
  readonly username?: string;
  /** Password (given or generated), absent with `username`; hidden when the info is logged or inspected. */
  readonly password?: string;
  /** FTPS and HTTPS: the server's certificate (PEM), e.g. for a device's trustpoint. */
  readonly certificate?: string;
  /** FTPS and HTTPS: SHA-256 fingerprint of the certificate, as `openssl x509 -fingerprint -sha256` shows it. */
  readonly certificateFingerprint256?: string;
  /** FTPS and HTTPS: SHA-256 of the public key in curl's `--pinnedpubkey` form (`sha256//<base64>`). */
  readonly publicKeyPin?: string;
  /** Protocol extras: host key fingerprints, passive ports, ... */
  readonly [extra: string]: unknown;
}

/** Lifecycle states; `failed` is where a start that threw leaves the server. */
export type FileServerState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** Options of {@link FileServer.stop}. */
export interface StopOptions {
  /** Overrides `stopGraceMs` for this call. */
  graceMs?: number;
  /** Aborting skips whatever is left of the grace period. */
  signal?: AbortSignal;
}

/** Events a FileServer emits. It never emits `'error'`. */
export interface FileServerEvents {
  /** A transfer ended (successfully or not). */
  transfer: [event: TransferEvent];
  /** The server is listening. */
  listening: [info: FileServerInfo];
  /** The server has stopped and released everything. */
  close: [];
}

const DEFAULT_GRACE_MS = 2000;
const DEFAULT_START_TIMEOUT_MS = 10_000;

/**
 * A file transfer server that lives for one test: it finds the address devices reach, listens on
 * a free port with fresh credentials, registers in the testbed, and on {@link FileServer.stop}
 * (or leaving an `await using` block) releases every socket and removes its registration.
 *
 * ```ts
 * await using server = await FileServer.start({ protocol: 'http', root: './out', address: '127.0.0.1' });
 * console.log(server.info.url);
 * ```
 */
export class FileServer extends EventEmitter<FileServerEvents> implements AsyncDisposable {
  readonly #options: FileServerOptions;
  #state: FileServerState = 'new';
  #info: FileServerInfo | undefined;
  #running: RunningBackend | undefined;
  #tracker: TransferTracker;
  #teardown = new Teardown();
  #startAbort = new AbortController();
  #starting: Promise<FileServerInfo> | undefined;
  #stopping: Promise<void> | undefined;

  /** Validates the options; does no I/O. Throws ERR_INVALID_OPTIONS or ERR_UNSUPPORTED_PROTOCOL. */
  constructor(options: FileServerOptions) {
    super();
    this.#options = validateOptions(options);
    this.#tracker = new TransferTracker(options.name, (event) => this.#onTransfer(event));
  }

  /** Constructs and starts in one call; a failed start leaves nothing behind. */
  static async start(
    options: FileServerOptions,
    startOptions: { signal?: AbortSignal } = {},
  ): Promise<FileServer> {
    const server = new FileServer(options);
    await server.start(startOptions);
    return server;
  }

  /** The lifecycle state. */
  get state(): FileServerState {
    return this.#state;
  }

  /** The protocol served. */
  get protocol(): Protocol {
    return this.#options.protocol;
  }

  /** The testbed name, if any. */
  get name(): string | undefined {
    return this.#options.name;
  }

  /** Connection info; throws ERR_NOT_RUNNING unless running. */
  get info(): FileServerInfo {
    if (this.#state !== 'running' || !this.#info) {
      throw new FileServerError(
        'ERR_NOT_RUNNING',
        `The ${this.protocol} server is ${this.#state}, not running`,
      );
    }
    return this.#info;
  }

  /** Shorthand for `info.url`. */
  get url(): string {
    return this.info.url;
  }

  /** Shorthand for `info.address`. */
  get address(): string {
    return this.info.address;
  }

  /** Shorthand for `info.port`. */
  get port(): number {
    return this.info.port;
  }

  /** Transfers running right now. */
  get activeTransfers(): number {
    return this.#tracker.active;
  }

  /**
   * Resolves the address, binds the port, starts the protocol and registers in the testbed.
   * Resolves with the connection info once listening. On failure everything half-started is torn
   * down and a FileServerError with the real cause is thrown (ERR_ADDRESS_IN_USE,
   * ERR_PERMISSION_DENIED, ERR_NO_REACHABLE_ADDRESS, ERR_ROOT_INVALID, ...).
   */
  start(options: { signal?: AbortSignal } = {}): Promise<FileServerInfo> {
    if (this.#state !== 'new') {
      return Promise.reject(
        new FileServerError(
          'ERR_INVALID_STATE',
          `start() called on a ${this.#state} server; servers start once`,
        ),
      );
    }
    this.#state = 'starting';
    const startTimeoutMs = this.#options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    const guard = abortSignalAfter(
      startTimeoutMs,
      [options.signal, this.#startAbort.signal],
      () =>
        new FileServerError(
          'ERR_START_TIMEOUT',
          `${this.#label()} did not start within ${startTimeoutMs} ms`,
          {
            details: { startTimeoutMs },
          },
        ),
    );
    this.#starting = this.#start(guard.signal)
      .finally(() => guard[Symbol.dispose]())
      .then(
        (info) => {
          this.#state = 'running';
          this.#info = info;
          log.server('%s listening: %o', this.#label(), redact(info));
          serverStartChannel.publish(redact(info));
          this.emit('listening', info);
          return info;
        },
        async (error: unknown) => {
          await this.#running
            ?.close({ graceMs: 0 })
            .catch((cleanup: unknown) => log.server('close: %o', cleanup));
          await this.#teardown
            .run()
            .catch((cleanup: unknown) => log.server('clean-up after failed start: %o', cleanup));
          this.#state = 'failed';
          throw error;
        },
      );
    return this.#starting;
  }

  async #start(signal: AbortSignal): Promise<FileServerInfo> {
    const o = this.#options;
    const { testbed, name } = o;
    if (testbed && name) {
      testbed.claim(name, this);
      this.#teardown.defer('testbed', () => testbed.release(name, this));
    }
    const embedded = o.embedded === true;
    const preparing = [
      loadBackend(o.protocol, embedded),
      this.#prepareRoot(),
      resolveAddress(o, { signal }),
    ] as const;
    // Every step settles before a failure is thrown: a temporary root created after the clean-up
    // ran would be left behind. Only the address resolution can take long, and it takes the signal.
    await Promise.allSettled(preparing);
    signal.throwIfAborted();
    const [backend, root, bind] = await Promise.all(preparing);
    const advertisedAddress = o.advertise?.address ?? (await this.#advertisable(bind, signal));
    const credentials = this.#credentials();
    const readOnly = o.readOnly ?? (o.writable === undefined ? false : !o.writable);
    const running = await this.#listen(backend, signal, {
      bindAddress: bind.address,
      advertisedAddress,
      root,
      readOnly,
      credentials,
    });
    this.#running = running;
    const port = o.advertise?.port ?? running.port;
    const info: FileServerInfo = {
      ...running.extra,
      name,
      protocol: o.protocol,
      address: advertisedAddress,
      port,
      bindAddress: bind.address,
      bindPort: running.port,
      addressReason: bind.reason,
      root,
      readOnly,
      url: formatUrl(o.protocol, advertisedAddress, port),
      ...(credentials ?? {}),
    };
    if (testbed && name) testbed.publish(name, this, toEntry(info));
    return info;
  }

  async #listen(
    backend: Backend,
    signal: AbortSignal,
    parts: Pick<
      Parameters<Backend['start']>[0],
      'bindAddress' | 'advertisedAddress' | 'root' | 'readOnly' | 'credentials'
    >,
  ): Promise<RunningBackend> {
    const o = this.#options;
    const policy = o.port ?? 0;
    const ports = policy === 'standard' ? [STANDARD_PORTS[o.protocol], 0] : [policy];
    for (const [i, port] of ports.entries()) {
      try {
        signal.throwIfAborted();
        return await raceSignalClosing(
          backend.start({
            ...parts,
            protocol: o.protocol,
            name: o.name,
            port,
            overwrite: o.overwrite ?? true,
            maxFileSize: o.maxFileSize,
            options: (o[optionKey(o.protocol, o.embedded === true)] ?? {}) as Record<string, unknown>,
            transfers: this.#tracker,
            log: log[logKey(o.protocol)],
            signal,
          }),
          signal,
        );
      } catch (error) {
        const mapped = fromSystemError(
          error,
          'ERR_START_FAILED',
          `Cannot start the ${o.protocol} server on ${parts.bindAddress} port ${port === 0 ? '(any)' : port}`,
        );
        const code = (mapped as FileServerError).code;
        const fallBack = code === 'ERR_ADDRESS_IN_USE' || code === 'ERR_PERMISSION_DENIED';
        if (i === ports.length - 1 || !fallBack) throw mapped;
        log.server('%s: standard port %d unavailable (%s), taking a free port', this.#label(), port, code);
      }
    }
    throw new FileServerError('ERR_START_FAILED', 'no port to try');
  }

  async #prepareRoot(): Promise<string> {
    const given = this.#options.root;
    if (given === undefined) {
      const created = await mkdtemp(path.join(os.tmpdir(), `testbed-fileserver-${this.protocol}-`));
      this.#teardown.defer('temporary root', () => rm(created, { recursive: true, force: true }));
      return realpath(created);
    }
    const wanted = path.resolve(given);
    try {
      await mkdir(wanted, { recursive: true });
      const real = await realpath(wanted);
      if (real === path.parse(real).root) {
        throw new FileServerError('ERR_ROOT_INVALID', `Refusing to serve the file system root (${given})`);
      }
      if (!(await stat(real)).isDirectory()) {
        throw new FileServerError('ERR_ROOT_INVALID', `Root is not a folder: ${given}`);
      }
      await access(real, constants.R_OK | constants.X_OK);
      return real;
    } catch (error) {
      if (error instanceof FileServerError) throw error;
      throw new FileServerError(
        'ERR_ROOT_INVALID',
        `Root ${given} is not usable: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }

  /** A wildcard bind is advertised as the default reachable address, never as 0.0.0.0. */
  async #advertisable(bind: ResolvedAddress, signal: AbortSignal): Promise<string> {
    if (!isWildcard(bind.address)) return bind.address;
    return (await resolveAddress({}, { signal })).address;
  }

  #credentials(): Credentials | undefined {
    const o = this.#options;
    const { credentials: policy } = backendTraits(o.protocol, o.embedded === true);
    if (policy === 'none' || o.auth === false) return undefined;
    if (o.username !== undefined && o.password !== undefined)
      return { username: o.username, password: o.password };
    if (policy === 'user') {
      throw new FileServerError(
        'ERR_INVALID_OPTIONS',
        'Information-only SCP publishes an account of this host: give username and password (or embedded: true)',
      );
    }
    return generateCredentials();
  }

  /**
   * Stops accepting, lets running transfers finish for the grace period, aborts the rest,
   * releases every socket and unregisters from the testbed. Idempotent and safe to call
   * concurrently: every caller gets the same promise. A no-op on a server that never started.
   */
  stop(options: StopOptions = {}): Promise<void> {
    switch (this.#state) {
      case 'new':
      case 'stopped':
      case 'failed':
        return Promise.resolve();
      case 'starting':
        this.#startAbort.abort(new FileServerError('ERR_INVALID_STATE', 'stop() was called while starting'));
        return this.#starting!.then(
          () => this.stop(options),
          () => {},
        );
      case 'stopping':
        return this.#stopping!;
      case 'running':
        this.#stopping = this.#stop(options);
        return this.#stopping;
    }
  }

  async #stop({ graceMs, signal }: StopOptions): Promise<void> {
    this.#state = 'stopping';
    const grace = signal?.aborted ? 0 : (graceMs ?? this.#options.stopGraceMs ?? DEFAULT_GRACE_MS);
    const errors: unknown[] = [];
    // Leave the testbed first so that no new copy picks a server that is going away.
    if (this.#options.testbed && this.name) this.#options.testbed.release(this.name, this);
    // Aborting the signal during the grace period cuts it short.
    const cut = () => this.#tracker.cutGrace();
    signal?.addEventListener('abort', cut, { once: true });
    try {
      await this.#running!.close({ graceMs: grace });
    } catch (error) {
      errors.push(error);
    } finally {
      signal?.removeEventListener('abort', cut);
    }
    try {
      await this.#teardown.run();
    } catch (error) {
      errors.push(error);
    }
    this.#state = 'stopped';
    log.server('%s stopped', this.#label());
    serverStopChannel.publish({ name: this.name, protocol: this.protocol });
    this.emit('close');
    if (errors.length > 0) {
      throw new FileServerError('ERR_STOP_FAILED', `Stopping the ${this.protocol} server failed`, {
        cause: new AggregateError(errors),
      });
    }
  }

  /** Same as {@link FileServer.stop}; makes `await using` work. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /**
   * Resolves with the next finished transfer that matches `filter` (all by default). Rejects
   * with the signal's reason when aborted; does not time out by itself.
   */
  waitForTransfer(
    filter: (event: TransferEvent) => boolean = () => true,
    options: { signal?: AbortSignal } = {},
  ): Promise<TransferEvent> {
    return raceSignal(
      new Promise<TransferEvent>((resolve) => {
        const listener = (event: TransferEvent) => {
          if (!filter(event)) return;
          this.off('transfer', listener);
          resolve(event);
        };
        this.on('transfer', listener);
        options.signal?.addEventListener('abort', () => this.off('transfer', listener), { once: true });
      }),
      options.signal,
    );
  }

  #onTransfer(event: TransferEvent): void {
    if (log.server.enabled) {
      log.server(
        '%s %s %s %s %d bytes %s',
        this.#label(),
        event.direction,
        event.path,
        `${event.peer.address}:${event.peer.port}`,
        event.bytes,
        event.ok ? 'ok' : `failed: ${event.error?.message}`,
      );
    }
    transferChannel.publish(event);
    this.emit('transfer', event);
  }

  #label(): string {
    return this.name ? `${this.protocol} server ${this.name}` : `${this.protocol} server`;
  }

  /** Shows state and info with the password hidden. */
  [inspect.custom](_depth: number, options: object): string {
    return `FileServer ${inspect(redact({ state: this.#state, protocol: this.protocol, name: this.name, info: this.#info }), options)}`;
  }
}

/** Rejects as soon as the start is aborted, and closes a backend that finishes starting after that. */
function raceSignalClosing(start: Promise<RunningBackend>, signal: AbortSignal): Promise<RunningBackend> {
  start.then(
    (running) => {
      if (signal.aborted) void running.close({ graceMs: 0 }).catch(() => {});
    },
    () => {},
  );
  return raceSignal(start, signal);
}

function optionKey(protocol: Protocol, embedded: boolean): 'tftp' | 'ftp' | 'http' | 'ssh' | 'scp' {
  if (protocol === 'sftp' || (protocol === 'scp' && embedded)) return 'ssh';
  return protocol === 'https' ? 'http' : protocol;
}

function logKey(protocol: Protocol): 'tftp' | 'ftp' | 'http' | 'ssh' {
  if (protocol === 'https') return 'http';
  return protocol === 'scp' || protocol === 'sftp' ? 'ssh' : protocol;
}

function toEntry(info: FileServerInfo): ServerEntry {
  const { name: _name, bindAddress: _b, bindPort: _p, addressReason: _r, ...entry } = info;
  return { ...entry, protocol: info.protocol };
}

function isPort(value: unknown, min: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= 65535;
}

function validateOptions(options: FileServerOptions): FileServerOptions {
  const fail = (message: string): never => {
    throw new FileServerError('ERR_INVALID_OPTIONS', message);
  };
  if (typeof options !== 'object' || options === null) fail('FileServer needs an options object');
  const protocol = typeof options.protocol === 'string' ? options.protocol.toLowerCase() : options.protocol;
  if (!PROTOCOLS.includes(protocol as Protocol)) {
    throw new FileServerError(
      'ERR_UNSUPPORTED_PROTOCOL',
      `Unknown protocol ${JSON.stringify(options.protocol)}; use one of ${PROTOCOLS.join(', ')}`,
    );
  }
  const o = { ...options, protocol: protocol as Protocol };
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name.trim() === ''))
    fail('name must be a non-empty string');
  if (o.testbed !== undefined && o.name === undefined) fail('a server registered in a testbed needs a name');
  if (o.port !== undefined && o.port !== 'standard' && !isPort(o.port, 0)) {
    fail(`port must be an integer 0..65535 or 'standard', got ${JSON.stringify(o.port)}`);
  }
  if (o.advertise?.port !== undefined && !isPort(o.advertise.port, 1))
    fail('advertise.port must be 1..65535');
  if (
    o.advertise?.address !== undefined &&
    (typeof o.advertise.address !== 'string' || !o.advertise.address)
  ) {
    fail('advertise.address must be a non-empty string');
  }
  if ((o.username === undefined) !== (o.password === undefined)) fail('give username and password together');
  for (const key of ['username', 'password'] as const) {
    const value = o[key];
    if (value !== undefined && (typeof value !== 'string' || value === ''))
      fail(`${key} must be a non-empty string`);
  }
  const traits = backendTraits(o.protocol, o.embedded === true);
  if (traits.credentials === 'none' && o.username !== undefined) fail(`${o.protocol} has no credentials`);
  if (o.auth === false && !traits.optionalAuth)
    fail(`auth: false is only for http; ${o.protocol} always authenticates`);
  if (o.embedded !== undefined && o.protocol !== 'scp') fail('embedded applies to scp only');
  if (o.readOnly !== undefined && o.writable !== undefined && o.readOnly === o.writable) {
    fail('readOnly and writable contradict each other; give one');
  }
  if (o.maxFileSize !== undefined && !(Number.isSafeInteger(o.maxFileSize) && o.maxFileSize >= 0)) {
    fail('maxFileSize must be a non-negative integer');
  }
  for (const key of ['stopGraceMs', 'startTimeoutMs'] as const) {
    const value = o[key];
    if (value !== undefined && !(typeof value === 'number' && value >= 0))
      fail(`${key} must be a number >= 0`);
  }
  return o;
}
