/**
 * PUT and POST: a raw body, or multipart/form-data (what NX-OS sends), streamed to a temporary
 * file and renamed into place only once complete.
 * @internal
 * @module
 */
import { lstat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { FileServerError } from '../../errors.js';
import { AtomicFile } from '../../files/atomic-file.js';
import { resolveForWrite } from '../../files/safe-path.js';
import type { BackendContext } from '../backend.js';
import { peerOf } from './respond.js';

/** Refuses an upload before its body is read: read-only server or declared size too large. @internal */
export function precheckUpload(ctx: BackendContext, req: IncomingMessage): void {
  if (ctx.readOnly) throw new FileServerError('ERR_READ_ONLY', 'This server is read-only');
  if (isMultipart(req)) return; // the body's length includes form overhead: each part is checked as it streams
  const declared = Number(req.headers['content-length']);
  if (ctx.maxFileSize !== undefined && Number.isFinite(declared) && declared > ctx.maxFileSize) {
    throw new FileServerError(
      'ERR_FILE_TOO_LARGE',
      `Upload of ${declared} bytes exceeds the ${ctx.maxFileSize}-byte limit`,
    );
  }
}

function isMultipart(req: IncomingMessage): boolean {
  return /^multipart\/form-data/i.test(req.headers['content-type'] ?? '');
}

interface Stored {
  path: string;
  size: number;
  replaced: boolean;
}

/** Handles PUT or POST of `requested`; answers 201 (created) or 200 (replaced) with a JSON body. @internal */
export async function serveUpload(
  ctx: BackendContext,
  req: IncomingMessage,
  res: ServerResponse,
  requested: string,
): Promise<void> {
  precheckUpload(ctx, req);
  const multipart = /^multipart\/form-data/i.test(req.headers['content-type'] ?? '');
  const stored = multipart
    ? await receiveMultipart(ctx, req, requested)
    : [await receiveRaw(ctx, req, requested)];
  const body = `${JSON.stringify(stored.length === 1 ? stored[0] : { files: stored })}\n`;
  res.writeHead(stored.every((s) => s.replaced) ? 200 : 201, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...(stored.length === 1 ? { location: `/${stored[0]!.path}` } : {}),
  });
  res.end(body);
}

/** A file received in full under a temporary name, waiting to be committed or dropped. */
interface Received {
  readonly stored: Stored;
  commit(): Promise<void>;
  abort(error: Error): Promise<void>;
}

/** Streams `source` into a temporary file for `requested`; `check` vets the finished body. */
async function receive(
  ctx: BackendContext,
  req: IncomingMessage,
  requested: string,
  source: Readable,
  check: () => void,
): Promise<Received> {
  const target = await resolveForWrite(ctx.root, requested, { mkdirs: true });
  const replaced = await lstat(target.absolute).then(
    () => true,
    () => false,
  );
  const transfer = ctx.transfers.begin({
    protocol: ctx.protocol,
    peer: peerOf(req),
    path: target.relative,
    direction: 'upload',
  });
  const details = { method: req.method };
  const fail = async (file: AtomicFile | undefined, error: Error) => {
    await file?.abort();
    transfer.add(file?.size ?? 0);
    transfer.end(error, details);
  };
  let file: AtomicFile | undefined;
  try {
    file = await AtomicFile.create(target.absolute, { overwrite: ctx.overwrite, maxSize: ctx.maxFileSize });
    await pipeline(source, file.writable());
    check();
  } catch (error) {
    await fail(file, error as Error);
    throw error;
  }
  const done = file;
  return {
    stored: { path: target.relative, size: done.size, replaced },
    async commit() {
      try {
        await done.commit();
      } catch (error) {
        await fail(undefined, error as Error);
        throw error;
      }
      transfer.add(done.size);
      transfer.end(undefined, details);
    },
    abort: (error) => fail(done, error),
  };
}

async function receiveRaw(ctx: BackendContext, req: IncomingMessage, requested: string): Promise<Stored> {
  if (requested.endsWith('/')) {
    throw new FileServerError('ERR_INVALID_OPTIONS', `${req.method} needs a file name, not a folder`);
  }
  const received = await receive(ctx, req, requested, req, () => {
    if (!req.complete) throw new FileServerError('ERR_TRANSFER_ABORTED', 'The client ended the upload early');
  });
  await received.commit();
  return received.stored;
}

/** Part 0 keeps the URL's name; part N becomes `<stem>_N<ext>` (as pyATS); a URL ending in `/` keeps each part's own file name. */
function partPath(requested: string, index: number, filename: string | undefined): string {
  if (requested.endsWith('/')) {
    const base = (filename ?? '').split(/[\\/]/).pop() ?? '';
    if (base === '' || base === '.' || base === '..') {
      throw new FileServerError('ERR_INVALID_OPTIONS', 'A multipart file part has no usable file name');
    }
    return requested + base;
  }
  if (index === 0) return requested;
  const slash = requested.lastIndexOf('/');
  const dot = requested.lastIndexOf('.');
  const cut = dot > slash + 1 ? dot : requested.length;
  return `${requested.slice(0, cut)}_${index}${requested.slice(cut)}`;
}

async function receiveMultipart(
  ctx: BackendContext,
  req: IncomingMessage,
  requested: string,
): Promise<Stored[]> {
  const parser = busboy({
    headers: req.headers,
    limits: {
      files: 64,
      fields: 64,
      fieldSize: 64 << 10,
      ...(ctx.maxFileSize === undefined ? {} : { fileSize: ctx.maxFileSize }),
    },
  });
  const jobs: Promise<Received>[] = [];
  let limitError: FileServerError | undefined;
  parser.on('file', (_field, stream, info) => {
    let truncated = false;
    stream.on('limit', () => {
      truncated = true;
    });
    const index = jobs.length;
    const job = (async () =>
      receive(ctx, req, partPath(requested, index, info.filename), stream, () => {
        if (truncated) {
          throw new FileServerError(
            'ERR_FILE_TOO_LARGE',
            `A file part exceeds the ${ctx.maxFileSize}-byte limit`,
          );
        }
      }))();
    // A part we cannot store must still be read, or the parser stalls.
    job.catch(() => stream.resume());
    jobs.push(job);
  });
  parser.on('filesLimit', () => {
    limitError = new FileServerError('ERR_FILE_TOO_LARGE', 'Too many file parts (at most 64)');
  });
  let parseError: unknown;
  await pipeline(req, parser).catch((error: unknown) => {
    parseError = error;
  });
  const results = await Promise.allSettled(jobs);
  const received = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const error = parseError ?? limitError ?? failed?.reason;
  if (error !== undefined) {
    // All or nothing: parts that arrived whole are dropped too.
    await Promise.all(received.map((r) => r.abort(error as Error)));
    throw error;
  }
  if (received.length === 0)
    throw new FileServerError('ERR_INVALID_OPTIONS', 'The multipart body holds no file part');
  for (const r of received) await r.commit();
  return received.map((r) => r.stored);
}
