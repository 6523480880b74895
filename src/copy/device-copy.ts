/**
 * What copyToDevice and copyFromDevice share: finding the server (named in the testbed, or a
 * temporary one bound to the address the device reaches), running the builder's command with
 * its dialog and configuration, and confirming the result with the server's own transfer event.
 * @internal
 * @module
 */
import diagnostics from 'node:diagnostics_channel';
import { FileServerError } from '../errors.js';
import { FileServer, type FileServerOptions } from '../file-server.js';
import { channels, log } from '../log.js';
import type { Testbed } from '../testbed/testbed.js';
import type { Protocol, TransferDirection, TransferEvent } from '../transfer.js';
import { STANDARD_PORTS } from '../transfer.js';
import { ftpTlsOf, reportedPath } from './builders/common.js';
import type {
  ConfigLine,
  ConfigMode,
  CopyCommandBuilder,
  CopyDirection,
  RemoteFile,
} from './builders/types.js';
import { type Device, type ExecuteOptions, hideSecrets } from './device.js';
import { formatConcreteUrl, resolveReference } from './url.js';

/** Options both device copy helpers take. */
export interface DeviceCopyOptions {
  /**
   * A server of the testbed, by name. Without it a temporary server is started for this copy,
   * bound to the address the device's connection uses, and stopped afterwards.
   */
  server?: string;
  /** Where to look `server` up; default `device.testbed`. */
  testbed?: Testbed;
  /**
   * With `server`: the protocol to use (default: the server's; scp and sftp reach the same SSH
   * server). Without: the temporary server's protocol (default: the OS builder's, `scp`).
   */
  protocol?: Protocol;
  /** VRF (Junos: routing instance). NX-OS defaults to `management`; `false` leaves it out. */
  vrf?: string | false;
  /** Interface the device sends from; configured for the copy and restored afterwards on Cisco. */
  sourceInterface?: string;
  /** Replace an existing destination file (default true). */
  overwrite?: boolean;
  /** Timeout of the device's copy command (default 300 000 ms, as pyATS). */
  timeoutMs?: number;
  /** Aborting interrupts the device command and stops a temporary server. */
  signal?: AbortSignal;
  /** OS-specific builder options, e.g. `{ client: 'busybox' }` on linux, `{ compact: true }` on NX-OS. */
  osOptions?: Record<string, unknown>;
  /**
   * Options for the temporary server (no `server` given): `advertise` behind NAT, `port`, an
   * explicit `address`... By default it binds to the device connection's local address.
   */
  serverOptions?: Partial<Omit<FileServerOptions, 'protocol' | 'root' | 'testbed' | 'name'>>;
  /** How long to wait for our server's transfer event once the device is done (default 10 000 ms). */
  confirmTimeoutMs?: number;
}

/** How a device copy's success was established. */
export type Confirmation = 'server' | 'device' | 'no-error';

/** What a device copy did. */
export interface DeviceCopyResult {
  /** The command sent, passwords hidden. */
  readonly command: string;
  /** The device's output, passwords hidden. */
  readonly output: string;
  /** The file on the device. */
  readonly deviceFile: string;
  /** The server URL the device used, without password. */
  readonly url: string;
  /** The server's name in the testbed (undefined for a temporary server). */
  readonly server: string | undefined;
  /**
   * `server`: our server reported the transfer complete (the strongest proof); `device`: the
   * device printed its success message; `no-error`: a server we do not run, and a platform that
   * prints nothing on success, and no error in the output.
   */
  readonly confirmedBy: Confirmation;
  /** The server's transfer event, when the server is ours. */
  readonly transfer: TransferEvent | undefined;
  /** Bytes moved, from the server's event or the device's output. */
  readonly bytes: number | undefined;
  /** Milliseconds from building the command to the confirmation, configuration changes included. */
  readonly durationMs: number;
}

/** The server side of one device copy. @internal */
export interface ServerSide {
  readonly remote: RemoteFile;
  readonly displayUrl: string;
  readonly server: string | undefined;
  /** Watches our server's transfer events; undefined for a server we do not run. */
  readonly watch: TransferWatch | undefined;
  /** Bytes the transfer must move, when known (the size of a local file served ad hoc). */
  readonly expectedBytes: number | undefined;
}

const DEFAULT_CONFIRM_MS = 10_000;

/** The testbed to look servers up in. @internal */
export function testbedOf(device: Device, options: DeviceCopyOptions): Testbed {
  const testbed = options.testbed ?? device.testbed;
  if (!testbed) {
    throw new FileServerError(
      'ERR_INVALID_OPTIONS',
      `server ${JSON.stringify(options.server)} needs a testbed: pass testbed, or use a device from one`,
    );
  }
  return testbed;
}

/** The side of a named testbed server. @internal */
export function namedServer(
  device: Device,
  options: DeviceCopyOptions & { server: string },
  remotePath: string,
  direction: TransferDirection,
): ServerSide {
  const testbed = testbedOf(device, options);
  const entry = testbed.server(options.server);
  const protocol = (options.protocol ?? entry.protocol) as Protocol | undefined;
  if (protocol === undefined) {
    throw new FileServerError(
      'ERR_INVALID_OPTIONS',
      `Server ${JSON.stringify(options.server)} has no protocol in the testbed: pass protocol`,
    );
  }
  const url = resolveReference(testbed, {
    protocol,
    server: options.server,
    path: remotePath,
    username: undefined,
    password: undefined,
  });
  const reported = reportedPath(remotePath);
  const ours = testbed.isRunning(options.server);
  const pin = url.entry.publicKeyPin;
  return {
    remote: { ...url, publicKeyPin: typeof pin === 'string' ? pin : undefined, ftpTls: ftpTlsOf(url.entry) },
    displayUrl: url.displayUrl,
    server: options.server,
    watch: ours
      ? watchChannel((e) => e.server === options.server && e.path === reported && e.direction === direction)
      : undefined,
    expectedBytes: undefined,
  };
}

/**
 * Starts the temporary server of an ad-hoc copy, bound to the address the device reaches us on.
 * The caller disposes it (`await using`). @internal
 */
export async function startAdHocServer(
  device: Device,
  builder: CopyCommandBuilder,
  options: DeviceCopyOptions,
  fixed: Pick<FileServerOptions, 'readOnly'> & { root?: string },
): Promise<FileServer> {
  const protocol = options.protocol ?? builder.defaultProtocol;
  const extra = options.serverOptions ?? {};
  const chosen = ['address', 'subnet', 'interface', 'reachableFrom', 'via'].some(
    (k) => (extra as Record<string, unknown>)[k] !== undefined,
  );
  if (!chosen && device.localAddress === undefined) await device.connect?.(signalOnly(options));
  if (!chosen && device.localAddress === undefined) {
    throw new FileServerError(
      'ERR_INVALID_OPTIONS',
      `Device ${device.name} has no connection to take the server address from: connect it, or pass serverOptions.address`,
    );
  }
  const serverOptions: FileServerOptions = {
    protocol,
    ...(protocol === 'scp' ? { embedded: true } : {}),
    ...(chosen ? {} : { via: { localAddress: device.localAddress } }),
    ...(builder.standardPortOnly.includes(protocol) ? { port: 'standard' as const } : {}),
    ...extra,
    ...(fixed.root === undefined ? {} : { root: fixed.root }),
    ...(fixed.readOnly === undefined ? {} : { readOnly: fixed.readOnly }),
  };
  const server = await FileServer.start(serverOptions, signalOnly(options));
  log.copy('%s: temporary %s server at %s', device.name, protocol, server.url);
  return server;
}

/** The side of a temporary server. @internal */
export function adHocSide(
  server: FileServer,
  remotePath: string,
  direction: TransferDirection,
  expectedBytes: number | undefined,
): ServerSide {
  const info = server.info;
  const protocol = info.protocol;
  const remote: RemoteFile = {
    protocol,
    host: info.address,
    port: info.port,
    path: remotePath,
    username: info.username,
    password: info.password,
    publicKeyPin: info.publicKeyPin,
    ftpTls: ftpTlsOf(info),
  };
  const reported = reportedPath(remotePath);
  const port = info.port === STANDARD_PORTS[protocol] ? undefined : info.port;
  const url = formatConcreteUrl(protocol, info.address, port, remotePath);
  return {
    remote,
    displayUrl: url,
    server: undefined,
    watch: watchServer(server, (e) => e.path === reported && e.direction === direction),
    expectedBytes,
  };
}

/** Runs the copy on the device and confirms it. @internal */
export async function runDeviceCopy(
  device: Device,
  builder: CopyCommandBuilder,
  direction: CopyDirection,
  deviceFile: string,
  side: ServerSide,
  options: DeviceCopyOptions,
): Promise<DeviceCopyResult> {
  const started = performance.now();
  try {
    const plan = builder.build({
      direction,
      remote: side.remote,
      deviceFile,
      vrf: options.vrf,
      sourceInterface: options.sourceInterface,
      overwrite: options.overwrite,
      options: options.osOptions,
    });
    const base: ExecuteOptions = { secrets: plan.secrets, ...signalOnly(options) };
    const restore =
      plan.config && builder.configMode
        ? await applyConfig(device, builder.configMode, plan.config, base)
        : undefined;
    let output: string;
    try {
      output = await device.execute(plan.command, {
        ...base,
        dialog: plan.dialog,
        timeoutMs: options.timeoutMs ?? plan.timeoutMs,
      });
    } finally {
      // Restoring must not hide why the copy failed; its own failure is only logged then.
      await restore?.().catch((error: unknown) =>
        log.copy('%s: restoring configuration failed: %o', device.name, error),
      );
    }
    const said = plan.check(output);
    let transfer: TransferEvent | undefined;
    if (side.watch) transfer = await confirm(side, options);
    const result: DeviceCopyResult = {
      command: hideSecrets(plan.command, plan.secrets),
      output,
      deviceFile: plan.deviceFile,
      url: side.displayUrl,
      server: side.server,
      confirmedBy: transfer ? 'server' : said.confirmed ? 'device' : 'no-error',
      transfer,
      bytes: transfer?.bytes ?? said.bytes,
      durationMs: performance.now() - started,
    };
    log.copy('%s: %s %s done (%s)', device.name, direction, side.displayUrl, result.confirmedBy);
    return result;
  } finally {
    side.watch?.stop();
  }
}

async function confirm(side: ServerSide, options: DeviceCopyOptions): Promise<TransferEvent> {
  const event = await side.watch!.settle(options.confirmTimeoutMs ?? DEFAULT_CONFIRM_MS, options.signal);
  const where = side.displayUrl;
  if (!event) {
    throw new FileServerError(
      'ERR_TRANSFER_FAILED',
      `The device reported success, but the server saw no transfer of ${where}`,
      { details: { url: where } },
    );
  }
  if (!event.ok) {
    throw new FileServerError(
      'ERR_TRANSFER_FAILED',
      `The server saw the transfer of ${where} fail: ${event.error?.message ?? 'unknown reason'}`,
      { cause: event.error, details: { url: where, bytes: event.bytes } },
    );
  }
  if (side.expectedBytes !== undefined && event.bytes !== side.expectedBytes) {
    throw new FileServerError(
      'ERR_TRANSFER_FAILED',
      `The server sent ${event.bytes} of the ${side.expectedBytes} bytes of ${where}`,
      { details: { url: where, bytes: event.bytes, expected: side.expectedBytes } },
    );
  }
  return event;
}

/** Collects matching transfer events while a copy runs. @internal */
export interface TransferWatch {
  /** The first successful event, waiting up to `timeoutMs`; else the last failed one; else undefined. */
  settle(timeoutMs: number, signal: AbortSignal | undefined): Promise<TransferEvent | undefined>;
  stop(): void;
}

function watch(
  subscribe: (listener: (event: TransferEvent) => void) => () => void,
  filter: (event: TransferEvent) => boolean,
): TransferWatch {
  const seen: TransferEvent[] = [];
  let wake: (() => void) | undefined;
  const unsubscribe = subscribe((event) => {
    if (!filter(event)) return;
    seen.push(event);
    wake?.();
  });
  const success = () => seen.find((e) => e.ok);
  return {
    async settle(timeoutMs, signal) {
      if (!success()) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, timeoutMs);
          signal?.addEventListener('abort', done, { once: true });
          wake = () => {
            if (success()) done();
          };
          function done() {
            clearTimeout(timer);
            signal?.removeEventListener('abort', done);
            wake = undefined;
            resolve();
          }
        });
      }
      signal?.throwIfAborted();
      return success() ?? seen.at(-1);
    },
    stop: unsubscribe,
  };
}

function watchServer(server: FileServer, filter: (event: TransferEvent) => boolean): TransferWatch {
  return watch((listener) => {
    server.on('transfer', listener);
    return () => server.off('transfer', listener);
  }, filter);
}

function watchChannel(filter: (event: TransferEvent) => boolean): TransferWatch {
  return watch((listener) => {
    const handler = (message: unknown) => listener(message as TransferEvent);
    diagnostics.subscribe(channels.transfer, handler);
    return () => diagnostics.unsubscribe(channels.transfer, handler);
  }, filter);
}

/**
 * Configures the lines that are not there yet and returns how to put back what was there
 * before (the earlier value of the setting, or its removal).
 */
async function applyConfig(
  device: Device,
  mode: ConfigMode,
  lines: readonly ConfigLine[],
  options: ExecuteOptions,
): Promise<(() => Promise<void>) | undefined> {
  const apply: string[] = [];
  const restore: string[] = [];
  for (const { line, prefix } of lines) {
    const shown = await device.execute(mode.show(prefix), options);
    const existing = shown
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith(prefix));
    if (existing.includes(line)) continue;
    apply.push(line);
    restore.push(...(existing.length > 0 ? existing : [mode.remove(line)]));
  }
  if (apply.length === 0) return undefined;
  await configure(device, mode, apply, options);
  return () => configure(device, mode, restore, options);
}

async function configure(
  device: Device,
  mode: ConfigMode,
  lines: readonly string[],
  options: ExecuteOptions,
): Promise<void> {
  await device.execute(mode.enter, options);
  try {
    for (const line of lines) {
      const output = await device.execute(line, options);
      if (/%\s*(?:Invalid|Incomplete|Ambiguous|Error)|^\s*Error\b|syntax error/im.test(output)) {
        throw new FileServerError(
          'ERR_DEVICE_COMMAND_FAILED',
          `${device.name} refused ${JSON.stringify(line)}: ${output.trim()}`,
          {
            details: { reason: 'invalid-command', command: line, output },
          },
        );
      }
    }
    if (mode.commit) await device.execute(mode.commit, options);
  } finally {
    await device.execute(mode.exit, options);
  }
}

/** `{ signal }` when there is one (exactOptionalPropertyTypes). @internal */
export function signalOnly(options: { signal?: AbortSignal | undefined }): { signal?: AbortSignal } {
  return options.signal ? { signal: options.signal } : {};
}
