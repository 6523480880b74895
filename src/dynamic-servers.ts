/**
 * {@link startDynamicServers}: pyATS's per-job file server plugin as a library call.
 * @module
 */
import { FileServerError } from './errors.js';
import { FileServer, type FileServerOptions } from './file-server.js';
import type { ServerEntry, Testbed } from './testbed/testbed.js';
import { PROTOCOLS, type Protocol } from './transfer.js';

/** Running dynamic servers; dispose (or call stop) to stop them all. */
export interface DynamicServers extends AsyncDisposable {
  /** The running servers by testbed name. */
  readonly servers: ReadonlyMap<string, FileServer>;
  /** Stops every server (in reverse start order), even when some fail; then throws the failures. */
  stop(): Promise<void>;
}

/** Options of {@link startDynamicServers}. */
export interface StartDynamicServersOptions {
  /** Aborting interrupts the starts: servers already started are stopped, and the reason is thrown. */
  signal?: AbortSignal;
  /** Protocol for dynamic entries that name none (pyATS's `filetransfer.protocol`). */
  defaultProtocol?: Protocol;
  /** Options applied to every server under the entry's own fields (e.g. `address`, `stopGraceMs`). */
  defaults?: Partial<FileServerOptions>;
}

const passThrough = [
  'address',
  'subnet',
  'interface',
  'reachableFrom',
  'root',
  'readOnly',
  'writable',
  'overwrite',
  'maxFileSize',
  'username',
  'password',
  'auth',
  'embedded',
  'advertise',
  'stopGraceMs',
  'startTimeoutMs',
  'tftp',
  'ftp',
  'http',
  'ssh',
  'scp',
] as const;

/** FileServer options from a testbed entry with `dynamic: true`. @internal */
export function optionsFromEntry(
  name: string,
  entry: ServerEntry,
  testbed: Testbed,
  options: StartDynamicServersOptions,
): FileServerOptions {
  const protocol = (entry.protocol ?? options.defaultProtocol) as Protocol | undefined;
  if (protocol === undefined) {
    throw new FileServerError(
      'ERR_TESTBED_INVALID',
      `Dynamic server ${JSON.stringify(name)} has no protocol`,
    );
  }
  if (!PROTOCOLS.includes(protocol)) {
    throw new FileServerError(
      'ERR_TESTBED_INVALID',
      `Dynamic server ${JSON.stringify(name)} has unknown protocol ${JSON.stringify(protocol)} (use ${PROTOCOLS.join(', ')})`,
    );
  }
  const fromEntry: Record<string, unknown> = {};
  for (const key of passThrough) if (entry[key] !== undefined) fromEntry[key] = entry[key];
  if (entry.port !== undefined) fromEntry.port = entry.port;
  return { ...options.defaults, ...fromEntry, protocol, name, testbed } as FileServerOptions;
}

/**
 * Starts a FileServer for every `dynamic: true` server in the testbed, each registered under
 * its name, and returns one handle that stops them all. If one fails to start, those already
 * started are stopped and the error is thrown.
 *
 * ```ts
 * const testbed = await Testbed.load('testbed.yaml');
 * await using servers = await startDynamicServers(testbed);
 * // testbed.servers.get('images') now holds address, port and credentials
 * ```
 */
export async function startDynamicServers(
  testbed: Testbed,
  options: StartDynamicServersOptions = {},
): Promise<DynamicServers> {
  const dynamic = [...testbed.servers].filter(([, entry]) => entry.dynamic === true);
  // Validate every entry before starting any server.
  const planned = dynamic.map(
    ([name, entry]) => new FileServer(optionsFromEntry(name, entry, testbed, options)),
  );
  const started: FileServer[] = [];
  const stopAll = async () => {
    const failures: unknown[] = [];
    for (const server of [...started].reverse()) {
      await server.stop().catch((error: unknown) => failures.push(error));
    }
    if (failures.length > 0) {
      throw new FileServerError('ERR_STOP_FAILED', `${failures.length} dynamic server(s) failed to stop`, {
        cause: new AggregateError(failures),
      });
    }
  };
  try {
    for (const server of planned) {
      await server.start(options.signal ? { signal: options.signal } : {});
      started.push(server);
    }
  } catch (error) {
    await stopAll().catch(() => {});
    throw error;
  }
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= stopAll();
    return stopping;
  };
  return {
    servers: new Map(started.map((s) => [s.name!, s])),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
