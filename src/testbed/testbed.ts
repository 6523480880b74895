/**
 * An in-memory testbed: named servers and devices, as in a pyATS testbed file. Running
 * FileServers register themselves under their name and leave on stop, restoring whatever entry
 * the user had written under that name.
 * @module
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { inspect } from 'node:util';
import { FileServerError } from '../errors.js';
import { log, redact } from '../log.js';
import { parseTestbedText } from './load.js';

/**
 * A server in the testbed: written by the user (static, or `dynamic: true` to be started by
 * {@link startDynamicServers}), or registered by a running {@link FileServer}.
 */
export interface ServerEntry {
  /** `tftp`, `ftp`, `http`, `scp` or `sftp`. */
  protocol?: string;
  /** The address devices use; a list when the server is multi-homed. */
  address?: string | string[];
  /**
   * The port devices use; references resolve to the protocol's standard port when absent. In a
   * `dynamic` entry, the port to listen on (as {@link FileServerOptions.port}).
   */
  port?: number;
  /** Served folder on the server host. */
  root?: string;
  /** Login name; ftp, scp and sftp references need it. In a `dynamic` entry, used instead of a generated one. */
  username?: string;
  /** Password, given with `username` (http: both or neither). Shown as `***` when the testbed is logged. */
  password?: string;
  /** `proto://address:port/`, without credentials. */
  url?: string;
  /** Started by startDynamicServers when true. */
  dynamic?: boolean;
  /** Anything else: subnet, interface, host key fingerprints, user fields... */
  [field: string]: unknown;
}

/** Credentials of one kind in a device entry. */
export interface DeviceCredentials {
  /** Login name for the device's CLI. */
  username?: string;
  /** Login password for the device's CLI. */
  password?: string;
  /** Password for privileged mode (`enable`), when the device has one. */
  enable?: string;
}

/** How to reach a device's CLI. */
export interface DeviceConnection {
  /** `ssh` for {@link SshDevice}; other values make {@link SshDevice.fromTestbed} refuse the connection. */
  protocol?: string;
  /** Address of the device's CLI; preferred over `host`. */
  ip?: string;
  /** DNS name or address, used when `ip` is absent. */
  host?: string;
  /** CLI port (default 22 for ssh). */
  port?: number;
  /** Anything else, e.g. connection-specific `credentials`. */
  [field: string]: unknown;
}

/** A device in the testbed, in the pyATS shape. */
export interface DeviceEntry {
  /** Operating system: `linux`, `iosxe`, `nxos`, `iosxr`, `junos`, ... */
  os?: string;
  /** pyATS device type (`router`, `switch`, ...); kept for the user, not read here. */
  type?: string;
  /** Named connections; `cli` (or the first one) is used by default. */
  connections?: Record<string, DeviceConnection>;
  /** Named credentials; `default` is used unless a connection says otherwise. */
  credentials?: Record<string, DeviceCredentials>;
  [field: string]: unknown;
}

/** Initial content of a {@link Testbed}. */
export interface TestbedInit {
  /** The testbed's name ({@link Testbed.name}). */
  name?: string | undefined;
  /** Server entries by name (the collection is copied; the entry objects are shared). */
  servers?: Record<string, ServerEntry> | Map<string, ServerEntry>;
  /** Device entries by name, taken like `servers`. */
  devices?: Record<string, DeviceEntry> | Map<string, DeviceEntry>;
}

interface Registration {
  readonly owner: object;
  readonly previous: ServerEntry | undefined;
  published: boolean;
}

/** Named servers and devices, shared by file servers, copy helpers and tests. */
export class Testbed {
  /** The testbed's name, from `testbed.name` in a file. */
  readonly name: string | undefined;
  /** Servers by name. FileServers add and remove their own entries here. */
  readonly servers: Map<string, ServerEntry>;
  /** Devices by name. */
  readonly devices: Map<string, DeviceEntry>;
  readonly #registrations = new Map<string, Registration>();

  constructor(init: TestbedInit = {}) {
    this.name = init.name;
    this.servers = new Map(init.servers instanceof Map ? init.servers : Object.entries(init.servers ?? {}));
    this.devices = new Map(init.devices instanceof Map ? init.devices : Object.entries(init.devices ?? {}));
  }

  /**
   * Reads a testbed file (YAML or JSON) in the pyATS shape: `testbed.servers` (with
   * `dynamic: true` for servers to start), top-level `devices`, `%ENV{NAME}` substitution, and
   * pyATS field names (`path`, `credentials.default`, `custom.http_auth`) mapped to ours.
   * Throws ERR_TESTBED_INVALID naming the file and the offending key.
   */
  static async load(file: string, options: { signal?: AbortSignal } = {}): Promise<Testbed> {
    let text: string;
    try {
      text = await readFile(file, {
        encoding: 'utf8',
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (error) {
      if ((error as Error).name === 'AbortError') throw error;
      throw new FileServerError(
        'ERR_TESTBED_INVALID',
        `Cannot read testbed file ${file}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    return new Testbed(parseTestbedText(text, file, path.dirname(path.resolve(file))));
  }

  /** Parses testbed text (YAML or JSON); relative dynamic `path`s start from `baseDir` (default: cwd). */
  static parse(text: string, options: { baseDir?: string; source?: string } = {}): Testbed {
    return new Testbed(
      parseTestbedText(text, options.source ?? '<testbed>', options.baseDir ?? process.cwd()),
    );
  }

  /**
   * The server entry of that name. Throws ERR_SERVER_NOT_FOUND, listing the names that exist.
   */
  server(name: string): ServerEntry {
    const entry = this.servers.get(name);
    if (entry) return entry;
    const names = [...this.servers.keys()].join(', ') || 'none';
    throw new FileServerError(
      'ERR_SERVER_NOT_FOUND',
      `No server ${JSON.stringify(name)} in the testbed (servers: ${names})`,
      {
        details: { name, servers: [...this.servers.keys()] },
      },
    );
  }

  /** The device entry of that name, or ERR_INVALID_OPTIONS listing the names that exist. */
  device(name: string): DeviceEntry {
    const entry = this.devices.get(name);
    if (entry) return entry;
    const names = [...this.devices.keys()].join(', ') || 'none';
    throw new FileServerError(
      'ERR_INVALID_OPTIONS',
      `No device ${JSON.stringify(name)} in the testbed (devices: ${names})`,
    );
  }

  /** True while a running FileServer holds this name. */
  isRunning(name: string): boolean {
    return this.#registrations.has(name);
  }

  /**
   * Reserves `name` for `owner` before it starts listening, so that two servers can never run
   * under one name. Throws ERR_NAME_TAKEN when another owner holds it.
   * @internal
   */
  claim(name: string, owner: object): void {
    const held = this.#registrations.get(name);
    if (held && held.owner !== owner) {
      throw new FileServerError(
        'ERR_NAME_TAKEN',
        `A running server is already registered as ${JSON.stringify(name)}`,
        {
          details: { name },
        },
      );
    }
    if (!held) this.#registrations.set(name, { owner, previous: this.servers.get(name), published: false });
  }

  /**
   * Publishes the running server's entry under its claimed name. Fields of a user-written entry
   * of that name are kept unless the server sets them.
   * @internal
   */
  publish(name: string, owner: object, entry: ServerEntry): void {
    const held = this.#registrations.get(name);
    if (!held || held.owner !== owner)
      throw new FileServerError('ERR_INVALID_STATE', `Name ${name} is not claimed`);
    this.servers.set(name, { ...held.previous, ...entry });
    held.published = true;
    log.testbed('registered %s %o', name, redact(entry));
  }

  /**
   * Gives the name back: the user's entry of that name, if there was one, is restored.
   * @internal
   */
  release(name: string, owner: object): void {
    const held = this.#registrations.get(name);
    if (!held || held.owner !== owner) return;
    this.#registrations.delete(name);
    if (!held.published) return;
    if (held.previous) this.servers.set(name, held.previous);
    else this.servers.delete(name);
    log.testbed('unregistered %s%s', name, held.previous ? ' (user entry restored)' : '');
  }

  /** A plain object in the testbed-file shape (credentials included). */
  toJSON(): {
    /** The `testbed:` section. */
    testbed: {
      /** {@link Testbed.name}, left out when undefined. */
      name?: string;
      /** Every server entry, running FileServers' included. */
      servers: Record<string, ServerEntry>;
    };
    /** Every device entry. */
    devices: Record<string, DeviceEntry>;
  } {
    return {
      testbed: {
        ...(this.name === undefined ? {} : { name: this.name }),
        servers: Object.fromEntries(this.servers),
      },
      devices: Object.fromEntries(this.devices),
    };
  }

  /** console.log shows passwords as `***`. */
  [inspect.custom](_depth: number, options: object): string {
    return `Testbed ${inspect(redact({ name: this.name, servers: Object.fromEntries(this.servers), devices: Object.fromEntries(this.devices) }), options)}`;
  }
}
