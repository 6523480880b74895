/**
 * {@link copy}: host-side copies between local files and named servers, in any direction, over
 * tftp, ftp, http, scp or sftp. Bytes stream through (never a whole file in memory), are
 * counted and hashed on the way, and land atomically.
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type TransformCallback, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { FileServerError } from '../errors.js';
import { AtomicFile } from '../files/atomic-file.js';
import { log } from '../log.js';
import type { Testbed } from '../testbed/testbed.js';
import type { Protocol } from '../transfer.js';
import { abortSignalAfter } from '../util/abort.js';
import type { Transport } from './transports/types.js';
import { isServerReference, type ResolvedUrl, resolveUrl } from './url.js';

/** Progress of a {@link copy}, reported at most every 100 ms and once at the end. */
export interface CopyProgress {
  /** Bytes moved so far. */
  readonly bytes: number;
  /** Size of the file, when the source tells it. */
  readonly total: number | undefined;
}

/** What {@link copy} can check after the transfer. */
export interface VerifyOptions {
  /** Expected size in bytes. */
  size?: number;
  /** Expected SHA-256, hex. */
  sha256?: string;
}

/** Options of {@link copy}. */
export interface CopyOptions {
  /** Aborting stops the transfer; no partial file is left at a local destination, nor (where the protocol can delete) at a remote one. */
  signal?: AbortSignal;
  /** Called with progress at most every 100 ms, and once at the end. */
  onProgress?: (progress: CopyProgress) => void;
  /**
   * `true`: read the destination back and compare its size and SHA-256 with what was sent.
   * An object: also compare with the expected size and/or SHA-256. Mismatch: ERR_VERIFY_FAILED.
   */
  verify?: boolean | VerifyOptions;
  /** Replace an existing local destination (default true). */
  overwrite?: boolean;
}

/** What a finished {@link copy} moved. */
export interface CopyResult {
  /** Bytes moved from source to destination. */
  readonly bytes: number;
  /** SHA-256 (hex) of the bytes moved. */
  readonly sha256: string;
  /** Milliseconds from the call to the end, read-back verification included. */
  readonly durationMs: number;
  /** True when the destination was read back and matched. */
  readonly verified: boolean;
  /** Source and destination as given, passwords hidden. */
  readonly from: string;
  /** The destination as given (a folder completed with the source's file name), password hidden. */
  readonly to: string;
}

type Endpoint =
  | { readonly kind: 'local'; readonly path: string; readonly shown: string }
  | { readonly kind: 'remote'; readonly url: ResolvedUrl; readonly shown: string };

const PROGRESS_INTERVAL_MS = 100;
const REMOVE_ATTEMPTS = 4;
const REMOVE_PAUSE_MS = 250;

/**
 * Copies `from` to `to`, each a local path or a `protocol://server-name/path` reference to a
 * server of the testbed (see {@link resolveUrl}). Both sides may be remote (the bytes stream
 * through this host). A destination ending in `/`, or an existing local folder, keeps the
 * source's file name. Resolves with the byte count and SHA-256; throws FileServerErrors
 * (ERR_SERVER_NOT_FOUND, ERR_NOT_FOUND, ERR_TRANSFER_FAILED, ERR_VERIFY_FAILED, ...) or the
 * signal's reason when aborted.
 *
 * ```ts
 * await copy(testbed, './ios.bin', 'ftp://images/ios.bin', { verify: true });
 * await copy(testbed, 'http://images/ios.bin', '/tmp/back.bin', { onProgress: (p) => console.log(p.bytes) });
 * ```
 */
export async function copy(
  testbed: Testbed,
  from: string,
  to: string,
  options: CopyOptions = {},
): Promise<CopyResult> {
  const started = performance.now();
  const source = endpoint(testbed, from);
  const target = await intoFolder(endpoint(testbed, into(to, from)), source);
  const transports = await Promise.all([source, target].map(transportOf));
  const [readVia, writeVia] = transports;
  const abort = new AbortController();
  using guard = abortSignalAfter(undefined, [options.signal, abort.signal]);
  const signal = guard.signal;
  signal.throwIfAborted();
  log.copy('copy %s -> %s', source.shown, target.shown);

  let total: number | undefined;
  let announceSize: (size: number | undefined) => void = () => {};
  const sizeKnown = new Promise<number | undefined>((resolve) => {
    announceSize = (size) => {
      total = size;
      resolve(size);
    };
  });
  const meter = new Meter((bytes) => options.onProgress?.({ bytes, total }));
  let atomic: AtomicFile | undefined;
  let remoteTouched = false;
  let committed = false;
  let sha256 = '';
  const failed = (error: unknown) => {
    abort.abort(error);
    throw error;
  };

  const produce = async () => {
    if (source.kind === 'local') {
      const info = await stat(source.path).catch((error: unknown) => {
        throw localError(error, source.path, 'read');
      });
      if (!info.isFile()) throw new FileServerError('ERR_NOT_FOUND', `Not a file: ${source.path}`);
      announceSize(info.size);
      await pipeline(createReadStream(source.path), meter, { signal });
    } else {
      await readVia!.download(source.url, meter, { signal, onSize: announceSize });
    }
  };
  const consume = async () => {
    if (target.kind === 'local') {
      await mkdir(path.dirname(target.path), { recursive: true });
      atomic = await AtomicFile.create(target.path, { overwrite: options.overwrite ?? true });
      await pipeline(meter, atomic.writable(), { signal });
    } else {
      const size = await raceAbort(sizeKnown, signal);
      await writeVia!.upload(target.url, meter, {
        size,
        signal,
        onWriteStart: () => {
          remoteTouched = true;
        },
      });
    }
  };

  try {
    const sides = await Promise.allSettled([produce().catch(failed), consume().catch(failed)]);
    const failure = rootCause(sides, source.kind === 'remote', target.kind === 'remote', abort.signal);
    if (failure !== undefined) throw failure;
    if (total !== undefined && meter.bytes !== total) {
      throw new FileServerError(
        'ERR_TRANSFER_FAILED',
        `${source.shown} announced ${total} bytes but ${meter.bytes} arrived`,
        {
          details: { expected: total, received: meter.bytes },
        },
      );
    }
    sha256 = meter.digest();
    checkExpected(
      typeof options.verify === 'object' ? options.verify : {},
      meter.bytes,
      sha256,
      'the transferred data',
    );
    await atomic?.commit();
    committed = true;
    if (options.verify) {
      const back = await readBack(target, writeVia, options.signal);
      checkExpected(
        { size: meter.bytes, sha256 },
        back.bytes,
        back.sha256,
        `the destination ${target.shown}`,
      );
    }
  } catch (error) {
    // Nothing unverified or partial stays behind: a local file is never renamed into place (or
    // is removed again when reading it back failed); a remote one this copy wrote is deleted.
    if (committed && target.kind === 'local') await unlink(target.path).catch(() => {});
    else await atomic?.abort().catch(() => {});
    if (target.kind === 'remote' && remoteTouched && writeVia?.remove)
      await removeRemote(writeVia, target.url);
    if (options.signal?.aborted) throw options.signal.reason;
    throw error instanceof FileServerError ? error : wrap(error, source, target);
  }
  meter.report(true);
  const result: CopyResult = {
    bytes: meter.bytes,
    sha256,
    durationMs: performance.now() - started,
    verified: Boolean(options.verify),
    from: source.shown,
    to: target.shown,
  };
  log.copy('copied %d bytes %s -> %s', result.bytes, source.shown, target.shown);
  return result;
}

function endpoint(testbed: Testbed, value: string): Endpoint {
  if (typeof value !== 'string' || value === '') {
    throw new FileServerError('ERR_INVALID_OPTIONS', 'copy needs a source and a destination');
  }
  if (!isServerReference(value)) return { kind: 'local', path: path.resolve(value), shown: value };
  const url = resolveUrl(testbed, value, { credentials: 'separate' });
  if (url.path === '' || url.path.endsWith('/')) {
    throw new FileServerError('ERR_INVALID_OPTIONS', `${url.displayUrl} names a folder, not a file`);
  }
  return { kind: 'remote', url, shown: `${url.protocol}://${url.server}/${url.path}` };
}

/** A destination ending in `/` gets the source's file name (`ftp://images/` → `ftp://images/ios.bin`). */
function into(to: string, from: string): string {
  if (typeof to !== 'string' || typeof from !== 'string' || !/[/\\]$/.test(to)) return to;
  const [fromRef, toRef] = [isServerReference(from), isServerReference(to)];
  const segments = from.split(fromRef ? '/' : /[/\\]/).filter(Boolean);
  const name = segments.at(-1);
  // `proto://server` alone names no file; the source's own check reports it.
  if (name === undefined || (fromRef && segments.length < 3)) return to;
  // References are percent-encoded, local names are not.
  if (fromRef === toRef) return to + name;
  if (toRef) return to + encodeURIComponent(name);
  try {
    return to + decodeURIComponent(name);
  } catch {
    return to;
  }
}

/** A local destination that is an existing folder gets the source's file name. */
async function intoFolder(target: Endpoint, source: Endpoint): Promise<Endpoint> {
  if (target.kind !== 'local') return target;
  const info = await stat(target.path).catch(() => undefined);
  if (!info?.isDirectory()) return target;
  const name = source.kind === 'local' ? path.basename(source.path) : path.posix.basename(source.url.path);
  return { ...target, path: path.join(target.path, name), shown: path.join(target.shown, name) };
}

async function transportOf(end: Endpoint): Promise<Transport | undefined> {
  if (end.kind === 'local') return undefined;
  return loadTransport(end.url.protocol);
}

/** Clients are loaded on first use, like the backends. @internal */
export async function loadTransport(protocol: Protocol): Promise<Transport> {
  switch (protocol) {
    case 'http':
    case 'https':
      return (await import('./transports/http.js')).httpTransport;
    case 'ftp':
      return (await import('./transports/ftp.js')).ftpTransport;
    case 'sftp':
      return (await import('./transports/ssh.js')).sftpTransport;
    case 'scp':
      return (await import('./transports/ssh.js')).scpTransport;
    case 'tftp':
      return (await import('./transports/tftp.js')).tftpTransport;
  }
}

/** Counts, hashes and reports the bytes flowing through. */
class Meter extends Transform {
  bytes = 0;
  readonly #hash = createHash('sha256');
  readonly #onProgress: (bytes: number) => void;
  #last = 0;

  constructor(onProgress: (bytes: number) => void) {
    super({ highWaterMark: 1 << 20 });
    this.#onProgress = onProgress;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.#hash.update(chunk);
    this.report(false);
    callback(null, chunk);
  }

  report(final: boolean): void {
    const now = performance.now();
    if (!final && now - this.#last < PROGRESS_INTERVAL_MS) return;
    this.#last = now;
    this.#onProgress(this.bytes);
  }

  digest(): string {
    return this.#hash.digest('hex');
  }
}

/** A sink that only hashes. */
class HashSink extends Writable {
  bytes = 0;
  readonly hash = createHash('sha256');
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    callback();
  }
}

async function readBack(
  target: Endpoint,
  transport: Transport | undefined,
  signal: AbortSignal | undefined,
): Promise<{ bytes: number; sha256: string }> {
  const sink = new HashSink();
  const readSignal = signal ?? new AbortController().signal;
  if (target.kind === 'local') await pipeline(createReadStream(target.path), sink, { signal: readSignal });
  else await transport!.download(target.url, sink, { signal: readSignal, onSize: () => {} });
  return { bytes: sink.bytes, sha256: sink.hash.digest('hex') };
}

function checkExpected(expected: VerifyOptions, bytes: number, sha256: string, what: string): void {
  const problems: string[] = [];
  if (expected.size !== undefined && expected.size !== bytes)
    problems.push(`size ${bytes}, expected ${expected.size}`);
  if (expected.sha256 !== undefined && expected.sha256.toLowerCase() !== sha256) {
    problems.push(`SHA-256 ${sha256}, expected ${expected.sha256.toLowerCase()}`);
  }
  if (problems.length > 0) {
    throw new FileServerError('ERR_VERIFY_FAILED', `Verification of ${what} failed: ${problems.join('; ')}`, {
      details: { expected, actual: { size: bytes, sha256 } },
    });
  }
}

/**
 * When one side fails the other is stopped, and fails too. The error to report is the one a
 * protocol client raised (it is mapped: ERR_NOT_FOUND, login refused...), not the echo of
 * that failure in the stream on the other side; the source side first.
 */
function rootCause(
  sides: PromiseSettledResult<unknown>[],
  remoteSource: boolean,
  remoteTarget: boolean,
  stopped: AbortSignal,
): unknown {
  const [produced, consumed] = sides as [PromiseSettledResult<unknown>, PromiseSettledResult<unknown>];
  const reason = (side: PromiseSettledResult<unknown>) =>
    side.status === 'rejected' ? side.reason : undefined;
  const echo = (error: unknown) => (error as Error)?.name === 'AbortError' && stopped.aborted;
  const ranked = [
    remoteSource ? reason(produced) : undefined,
    remoteTarget ? reason(consumed) : undefined,
    reason(produced),
    reason(consumed),
  ].filter((e) => e !== undefined);
  return ranked.find((e) => !echo(e)) ?? ranked[0];
}

/**
 * Deletes what a broken upload left on a server, until the server says the file is gone: a
 * server that handles sessions in processes of their own (vsftpd, OpenSSH) may still be
 * creating it from the broken session when the first delete arrives.
 */
async function removeRemote(transport: Transport, url: ResolvedUrl): Promise<void> {
  for (let attempt = 0; attempt < REMOVE_ATTEMPTS; attempt++) {
    const gone = await transport.remove!(url, AbortSignal.timeout(10_000)).then(
      () => false,
      (error: unknown) => error instanceof FileServerError && error.code === 'ERR_NOT_FOUND',
    );
    if (gone) return;
    await delay(REMOVE_PAUSE_MS);
  }
  log.copy('could not make sure %s is gone', url.displayUrl);
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function localError(error: unknown, file: string, action: string): FileServerError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT')
    return new FileServerError('ERR_NOT_FOUND', `No such file: ${file}`, { cause: error });
  return new FileServerError('ERR_TRANSFER_FAILED', `Cannot ${action} ${file}: ${(error as Error).message}`, {
    cause: error,
  });
}

function wrap(error: unknown, source: Endpoint, target: Endpoint): unknown {
  if ((error as Error)?.name === 'AbortError') return error;
  const sys = (error as NodeJS.ErrnoException)?.code;
  if (typeof sys === 'string' && sys.startsWith('E')) {
    return localError(error, target.kind === 'local' ? target.path : source.shown, 'write');
  }
  return new FileServerError(
    'ERR_TRANSFER_FAILED',
    `Copy ${source.shown} -> ${target.shown} failed: ${(error as Error)?.message ?? String(error)}`,
    { cause: error },
  );
}
