/**
 * GET and HEAD: files with Range, validators and content types; folders as HTML or JSON listings.
 * @internal
 * @module
 */
import { createReadStream, type Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { isTempName } from '../../files/atomic-file.js';
import { resolveForRead } from '../../files/safe-path.js';
import type { BackendContext } from '../backend.js';
import { contentType } from './mime.js';
import { peerOf, sendError } from './respond.js';

/** A single byte range, inclusive. */
interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a Range header against `size`. Returns undefined to serve the whole file (no header,
 * another unit, several ranges), 'unsatisfiable' for 416, or the one range.
 * @internal
 */
export function parseRange(
  header: string | undefined,
  size: number,
): ByteRange | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

function etagOf(st: Stats): string {
  return `W/"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
}

function notModified(req: IncomingMessage, st: Stats, etag: string): boolean {
  const inm = req.headers['if-none-match'];
  if (inm) return inm.split(',').some((tag) => tag.trim() === etag || tag.trim() === '*');
  const ims = req.headers['if-modified-since'];
  return ims !== undefined && Math.floor(st.mtimeMs / 1000) <= Math.floor(Date.parse(ims) / 1000);
}

/** Serves GET or HEAD for `requested`. @internal */
export async function serveDownload(
  ctx: BackendContext,
  req: IncomingMessage,
  res: ServerResponse,
  requested: string,
  query: URLSearchParams,
): Promise<void> {
  const target = await resolveForRead(ctx.root, requested);
  const st = await stat(target.absolute);
  if (st.isDirectory()) {
    if (!requested.endsWith('/')) {
      // Relative links in the listing need the trailing slash.
      const location = `${req.url?.split('?')[0] ?? ''}/${query.size > 0 ? `?${query}` : ''}`;
      res.writeHead(301, { location, 'content-length': 0 });
      res.end();
      return;
    }
    await serveListing(req, res, target.absolute, target.relative, query);
    return;
  }
  if (!st.isFile()) {
    sendError(res, 403, 'Not a regular file');
    return;
  }
  const etag = etagOf(st);
  const headers: Record<string, string | number> = {
    'content-type': contentType(target.absolute),
    'last-modified': st.mtime.toUTCString(),
    etag,
    'accept-ranges': 'bytes',
  };
  if (notModified(req, st, etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const ifRange = req.headers['if-range'];
  const rangeAllowed = ifRange === undefined || ifRange === etag || ifRange === headers['last-modified'];
  const range = rangeAllowed ? parseRange(req.headers.range, st.size) : undefined;
  if (range === 'unsatisfiable') {
    sendError(res, 416, 'Range not satisfiable', { 'content-range': `bytes */${st.size}` });
    return;
  }
  const { start, end } = range ?? { start: 0, end: st.size - 1 };
  const length = end - start + 1;
  if (range) headers['content-range'] = `bytes ${start}-${end}/${st.size}`;
  headers['content-length'] = length;
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const transfer = ctx.transfers.begin({
    protocol: ctx.protocol,
    peer: peerOf(req),
    path: target.relative,
    direction: 'download',
  });
  const details = range
    ? { status: 206, range: `${start}-${end}`, size: st.size }
    : { status: 200, size: st.size };
  if (length === 0) {
    res.end();
    transfer.end(undefined, details);
    return;
  }
  const stream = createReadStream(target.absolute, { start, end, highWaterMark: 1 << 20 });
  stream.on('data', (chunk) => transfer.add(chunk.length));
  try {
    await pipeline(stream, res);
    transfer.end(undefined, details);
  } catch (error) {
    transfer.end(error as Error, details);
    res.destroy();
  }
}

interface ListingItem {
  name: string;
  type: 'file' | 'directory' | 'other';
  size: number;
  modified: string;
}

async function serveListing(
  req: IncomingMessage,
  res: ServerResponse,
  folder: string,
  relative: string,
  query: URLSearchParams,
): Promise<void> {
  const entries = await readdir(folder, { withFileTypes: true });
  const items: ListingItem[] = [];
  for (const entry of entries) {
    if (isTempName(entry.name)) continue;
    const st = await stat(path.join(folder, entry.name)).catch(() => undefined);
    if (!st) continue; // a dangling symlink or a file that just went away
    items.push({
      name: entry.name,
      type: st.isDirectory() ? 'directory' : st.isFile() ? 'file' : 'other',
      size: st.isFile() ? st.size : 0,
      modified: st.mtime.toISOString(),
    });
  }
  items.sort((a, b) => a.name.localeCompare(b.name));
  const wantsJson = query.get('format') === 'json' || /^application\/json/i.test(req.headers.accept ?? '');
  const body = wantsJson
    ? `${JSON.stringify({ path: `/${relative}`, entries: items }, null, 2)}\n`
    : listingHtml(relative, items);
  res.writeHead(200, {
    'content-type': wantsJson ? 'application/json' : 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function listingHtml(relative: string, items: ListingItem[]): string {
  const title = escapeHtml(`Index of /${relative}`);
  const rows = items.map((item) => {
    const href = encodeURIComponent(item.name) + (item.type === 'directory' ? '/' : '');
    const label = escapeHtml(item.name) + (item.type === 'directory' ? '/' : '');
    return `<tr><td><a href="${href}">${label}</a></td><td>${item.type === 'file' ? item.size : '-'}</td><td>${item.modified}</td></tr>`;
  });
  const parent = relative === '' ? '' : '<tr><td><a href="../">../</a></td><td></td><td></td></tr>';
  return `<!doctype html>\n<html><head><meta charset="utf-8"><title>${title}</title></head><body>\n<h1>${title}</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n${parent}${rows.join('\n')}\n</table>\n</body></html>\n`;
}
