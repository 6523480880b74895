/**
 * TFTP on the in-house engine ({@link TftpServer}): the FileServer's root, read-only, overwrite
 * and size policies, every transfer reported with its TFTP details, and a bounded stop.
 * @internal
 * @module
 */
import { FileServerError } from '../errors.js';
import { splitRequestPath } from '../files/safe-path.js';
import type { TftpHandler } from '../tftp/handler.js';
import { TftpServer, type TftpServerOptions } from '../tftp/server.js';
import type { TftpTransferInfo, TftpTransferStats } from '../tftp/stats.js';
import type { ActiveTransfer } from '../transfer.js';
import type { Backend, BackendContext, RunningBackend } from './backend.js';

/**
 * Options under `tftp` of {@link FileServerOptions}: the engine's knobs. The address, port, root,
 * `readOnly`/`writable`, `overwrite` and `maxFileSize` come from the FileServer options.
 */
export type TftpBackendOptions = Pick<
  TftpServerOptions,
  | 'handler'
  | 'createFolders'
  | 'maxBlksize'
  | 'maxWindowsize'
  | 'refuseOptions'
  | 'timeoutMs'
  | 'minTimeoutMs'
  | 'maxTimeoutMs'
  | 'strictTimeoutOption'
  | 'retries'
  | 'idleTimeoutMs'
  | 'dallyMs'
  | 'maxSessions'
  | 'maxSessionsPerPeer'
  | 'maxRequestSize'
  | 'portRange'
  | 'singlePort'
  | 'onPacket'
>;

const KEYS: ReadonlySet<string> = new Set<keyof TftpBackendOptions>([
  'handler',
  'createFolders',
  'maxBlksize',
  'maxWindowsize',
  'refuseOptions',
  'timeoutMs',
  'minTimeoutMs',
  'maxTimeoutMs',
  'strictTimeoutOption',
  'retries',
  'idleTimeoutMs',
  'dallyMs',
  'maxSessions',
  'maxSessionsPerPeer',
  'maxRequestSize',
  'portRange',
  'singlePort',
  'onPacket',
]);

function readOptions(raw: Readonly<Record<string, unknown>>): TftpBackendOptions {
  const unknown = Object.keys(raw).filter((key) => !KEYS.has(key));
  if (unknown.length > 0) {
    throw new FileServerError(
      'ERR_INVALID_OPTIONS',
      `Unknown tftp option(s) ${unknown.join(', ')}; known: ${[...KEYS].join(', ')}`,
    );
  }
  return raw as TftpBackendOptions;
}

/** The root-relative path of a request for transfer events (the name as sent if it does not parse). */
function displayPath(filename: string): string {
  try {
    return splitRequestPath(filename).join('/');
  } catch {
    return filename;
  }
}

function details(stats: TftpTransferStats): Record<string, unknown> {
  return {
    outcome: stats.outcome,
    mode: stats.mode,
    requestedOptions: stats.requestedOptions,
    negotiatedOptions: stats.negotiatedOptions,
    blksize: stats.blksize,
    windowsize: stats.windowsize,
    blocks: stats.blocks,
    retransmits: stats.retransmits,
    timeouts: stats.timeouts,
    duplicates: stats.duplicates,
    strangers: stats.strangers,
    rttMs: stats.rttMs,
    ...(stats.error?.tftpCode === undefined ? {} : { tftpCode: stats.error.tftpCode }),
  };
}

/** @internal */
export const tftpBackend: Backend = {
  listens: true,
  async start(ctx: BackendContext): Promise<RunningBackend> {
    const options = readOptions(ctx.options);
    let handler: TftpHandler | undefined = options.handler;
    // Read-only holds for a custom handler too: it never sees a write request.
    if (handler && ctx.readOnly)
      handler = { ...(handler.openRead ? { openRead: handler.openRead.bind(handler) } : {}) };
    const server = new TftpServer({
      ...options,
      ...(handler ? { handler } : {}),
      address: ctx.bindAddress,
      port: ctx.port,
      root: ctx.root,
      writable: !ctx.readOnly,
      overwrite: ctx.overwrite,
      ...(ctx.maxFileSize === undefined ? {} : { maxFileSize: ctx.maxFileSize }),
    });
    const running = new Map<number, ActiveTransfer>();
    const begin = (info: TftpTransferInfo): ActiveTransfer =>
      ctx.transfers.begin({
        protocol: 'tftp',
        peer: info.peer,
        path: displayPath(info.filename),
        direction: info.direction === 'read' ? 'download' : 'upload',
      });
    server.on('transferstart', (info) => running.set(info.id, begin(info)));
    server.on('transfer', (stats) => {
      const active = running.get(stats.id);
      running.delete(stats.id);
      // A size probe (OACK answered by ERROR 8, as UEFI firmware does) moved no file: not a transfer.
      if (stats.outcome === 'probe' && !active) return;
      const transfer = active ?? begin(stats);
      transfer.add(stats.bytes);
      transfer.end(stats.outcome === 'ok' ? undefined : stats.error, details(stats));
    });
    await server.start({ signal: ctx.signal });
    return {
      port: server.address.port,
      close: ({ graceMs }) => server.stop({ graceMs }),
    };
  },
};
