/**
 * {@link SshDevice}: a device CLI over SSH (ssh2 client), in an interactive shell with a pty,
 * the way a person would type: prompt learned at login, paging turned off, prompts answered.
 * @module
 */
import type { ClientChannel } from 'ssh2';
import { FileServerError } from '../errors.js';
import { log } from '../log.js';
import type { DeviceConnection, DeviceCredentials, Testbed } from '../testbed/testbed.js';
import { GENERIC_PROMPT } from './builders/common.js';
import { copyBuilderFor } from './builders/index.js';
import type { SessionProfile } from './builders/types.js';
import { CliSession } from './cli-session.js';
import type { Device, ExecuteOptions } from './device.js';
import { connectSsh, type SshConnection } from './ssh-connect.js';

/** Options of {@link SshDevice}. */
export interface SshDeviceOptions {
  /** Name for messages; default `host`. */
  name?: string;
  /** Operating system (selects paging commands and the copy builder); default `linux`. */
  os?: string;
  /** Address or DNS name of the device's SSH server. */
  host: string;
  /** Default 22. */
  port?: number;
  /** Login name; with {@link SshDevice.fromTestbed}, overrides the testbed's `credentials.default.username`. */
  username: string;
  /**
   * Login password, tried as password and keyboard-interactive authentication; with
   * {@link SshDevice.fromTestbed}, overrides the testbed's.
   */
  password?: string;
  /** Private key (OpenSSH or PEM) instead of or besides the password. */
  privateKey?: string | Buffer;
  /** Passphrase that decrypts an encrypted `privateKey`. */
  passphrase?: string;
  /** Cisco `enable` password, used when the prompt ends with `>`. */
  enablePassword?: string;
  /** Expected host key fingerprint (`SHA256:...`); default: any key is accepted. */
  hostKeyFingerprint?: string;
  /**
   * Local address to connect from, on a host with several: temporary servers for this device
   * then bind to it too. Default: the address the kernel routes from.
   */
  localAddress?: string;
  /** Login and first prompt must complete within this (default 20 000 ms). */
  connectTimeoutMs?: number;
  /** Default timeout of {@link SshDevice.execute} (default 60 000 ms). */
  commandTimeoutMs?: number;
  /** Matches the prompt before it is learned; default per OS. */
  promptPattern?: RegExp;
  /** Commands run after login; default per OS (`terminal length 0`, ...). */
  setupCommands?: readonly string[];
  /** Testbed whose servers the copy helpers use by default. */
  testbed?: Testbed;
}

/** Options of {@link SshDevice.fromTestbed}. */
export interface SshDeviceFromTestbedOptions
  extends Partial<Omit<SshDeviceOptions, 'name' | 'os' | 'host' | 'testbed'>> {
  /** Which connection of the device entry (default `cli`, else the first one). */
  connection?: string;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 60_000;
const PTY = { term: 'vt100', cols: 511, rows: 24, width: 0, height: 0 } as const;

/**
 * A device reached over SSH. The constructor does no I/O; {@link SshDevice.connect} logs in,
 * opens a shell and learns the prompt. Commands run one at a time; a command that times out
 * is interrupted with Ctrl-C, and a shell that does not come back is replaced by a new one on
 * the same connection.
 *
 * ```ts
 * await using r1 = await SshDevice.fromTestbed(testbed, 'R1').connect();
 * const output = await r1.execute('show version');
 * ```
 */
export class SshDevice implements Device, AsyncDisposable {
  readonly name: string;
  readonly os: string;
  readonly testbed: Testbed | undefined;
  readonly #options: SshDeviceOptions;
  readonly #profile: SessionProfile;
  #connection: SshConnection | undefined;
  #session: CliSession | undefined;
  #connecting: Promise<this> | undefined;
  #localAddress: string | undefined;

  constructor(options: SshDeviceOptions) {
    if (!options.host) throw new FileServerError('ERR_INVALID_OPTIONS', 'SshDevice needs a host');
    if (!options.username) throw new FileServerError('ERR_INVALID_OPTIONS', 'SshDevice needs a username');
    this.#options = options;
    this.name = options.name ?? options.host;
    this.os = (options.os ?? 'linux').toLowerCase();
    this.testbed = options.testbed;
    this.#profile = profileFor(this.os);
  }

  /**
   * A device from a testbed entry: address and port from its connection (`cli` by default),
   * username and password from the connection's or the device's `credentials.default`, the
   * enable password from `credentials.enable`. Throws ERR_INVALID_OPTIONS naming what is missing.
   */
  static fromTestbed(testbed: Testbed, name: string, options: SshDeviceFromTestbedOptions = {}): SshDevice {
    const entry = testbed.device(name);
    const connections = entry.connections ?? {};
    const key = options.connection ?? ('cli' in connections ? 'cli' : Object.keys(connections)[0]);
    const conn: DeviceConnection | undefined = key === undefined ? undefined : connections[key];
    const missing = (what: string) =>
      new FileServerError(
        'ERR_INVALID_OPTIONS',
        `Device ${JSON.stringify(name)} has no ${what} in the testbed`,
        {
          details: { device: name, missing: what },
        },
      );
    if (!conn)
      throw missing(options.connection ? `connection ${JSON.stringify(options.connection)}` : 'connection');
    if (conn.protocol !== undefined && String(conn.protocol).toLowerCase() !== 'ssh') {
      throw new FileServerError(
        'ERR_INVALID_OPTIONS',
        `Device ${JSON.stringify(name)} connection ${key} is ${String(conn.protocol)}, not ssh`,
      );
    }
    const host = conn.ip ?? conn.host;
    if (host === undefined) throw missing(`address (connections.${key}.ip)`);
    const own = isCredentials(conn.credentials)
      ? (conn.credentials as Record<string, DeviceCredentials>)
      : undefined;
    const creds = own?.default ?? entry.credentials?.default ?? {};
    const username = options.username ?? creds.username;
    if (username === undefined) throw missing('username (credentials.default.username)');
    const password = options.password ?? creds.password;
    const enable = options.enablePassword ?? entry.credentials?.enable?.password ?? creds.enable;
    const { connection: _c, ...rest } = options;
    return new SshDevice({
      ...rest,
      name,
      os: entry.os ?? 'linux',
      host: String(host),
      port: conn.port ?? options.port ?? 22,
      username,
      ...(password === undefined ? {} : { password: String(password) }),
      ...(enable === undefined ? {} : { enablePassword: String(enable) }),
      testbed,
    });
  }

  /** The local address of the SSH connection: the one the device reaches this host on. */
  get localAddress(): string | undefined {
    return this.#localAddress;
  }

  /** True while connected with a usable shell. */
  get connected(): boolean {
    return this.#session?.usable === true;
  }

  /**
   * Logs in, opens the shell, learns the prompt, runs the setup commands (and `enable` where
   * needed). Resolves with the device itself. Throws ERR_DEVICE_CONNECTION (refused, wrong
   * credentials, host key mismatch) or ERR_DEVICE_TIMEOUT. Calling it while connected is a
   * no-op; after the connection was lost it reconnects.
   */
  connect(options: { signal?: AbortSignal } = {}): Promise<this> {
    if (this.connected) return Promise.resolve(this);
    this.#connecting ??= this.#connect(options.signal).finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #connect(signal: AbortSignal | undefined): Promise<this> {
    const o = this.#options;
    const timeoutMs = o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    if (!this.#connection) {
      const connection = await connectSsh(
        {
          host: o.host,
          port: o.port ?? 22,
          username: o.username,
          password: o.password,
          privateKey: o.privateKey,
          passphrase: o.passphrase,
          hostKeyFingerprint: o.hostKeyFingerprint,
          localAddress: o.localAddress,
        },
        { code: 'ERR_DEVICE_CONNECTION', timeoutMs, signal, what: `device ${this.name} (${o.host})` },
      );
      this.#connection = connection;
      this.#localAddress = connection.socket.localAddress;
      connection.client.on('close', () => {
        if (this.#connection === connection) this.#connection = undefined;
        this.#session?.close();
      });
      connection.client.on('error', (error) =>
        log.device('%s: connection error %s', this.name, error.message),
      );
      log.device('%s: connected from %s', this.name, this.#localAddress);
    }
    const session = await this.#openShell(this.#connection.client, timeoutMs, signal);
    this.#session = session;
    return this;
  }

  async #openShell(
    client: SshConnection['client'],
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<CliSession> {
    const channel = await new Promise<ClientChannel>((resolve, reject) => {
      client.shell(PTY, (error, stream) => (error ? reject(error) : resolve(stream)));
    }).catch((error: unknown) => {
      throw new FileServerError(
        'ERR_DEVICE_CONNECTION',
        `${this.name}: cannot open a shell: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    });
    channel.stderr.resume();
    const o = this.#options;
    const session = new CliSession(channel, {
      promptPattern: o.promptPattern ?? this.#profile.promptPattern,
      timeoutMs: o.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
      log: log.device,
      label: this.name,
    });
    try {
      const prompt = await session.start({ timeoutMs, ...(signal ? { signal } : {}) });
      if (this.#profile.enable && prompt.trimEnd().endsWith('>')) await this.#enable(session, prompt, signal);
      for (const command of o.setupCommands ?? this.#profile.setup) {
        await session.run(command, { timeoutMs, ...(signal ? { signal } : {}) });
      }
      return session;
    } catch (error) {
      session.close();
      throw error;
    }
  }

  async #enable(session: CliSession, prompt: string, signal: AbortSignal | undefined): Promise<void> {
    const secret = this.#options.enablePassword ?? this.#options.password;
    await session.run('enable', {
      dialog:
        secret === undefined
          ? []
          : [
              {
                name: 'enable password',
                pattern: /password[^\n]*:\s*$/i,
                answer: secret,
                secret: true,
                max: 1,
              },
            ],
      secrets: secret === undefined ? [] : [secret],
      ...(signal ? { signal } : {}),
    });
    session.learnPrompt(`${prompt.trimEnd().slice(0, -1)}#`);
  }

  /**
   * Runs a command and resolves with its output. Connects first when not connected. Throws
   * ERR_DEVICE_TIMEOUT, ERR_DEVICE_CONNECTION, ERR_DEVICE_COMMAND_FAILED (a prompt repeated past
   * its `max`), or the signal's reason when aborted.
   */
  async execute(command: string, options: ExecuteOptions = {}): Promise<string> {
    if (!this.connected) await this.connect(options.signal ? { signal: options.signal } : {});
    return this.#session!.run(command, options);
  }

  /** Closes the shell and the connection. Idempotent. */
  async close(): Promise<void> {
    this.#session?.close();
    this.#session = undefined;
    const connection = this.#connection;
    this.#connection = undefined;
    if (!connection) return;
    await new Promise<void>((resolve) => {
      const done = () => resolve();
      connection.client.once('close', done);
      connection.client.end();
      // A peer that never answers the disconnect: drop the socket.
      setTimeout(() => {
        connection.socket.destroy();
        resolve();
      }, 2000).unref();
    });
  }

  /** Same as {@link SshDevice.close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function profileFor(os: string): SessionProfile {
  try {
    return copyBuilderFor(os).session;
  } catch {
    return { setup: [], promptPattern: GENERIC_PROMPT, enable: false };
  }
}

function isCredentials(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
