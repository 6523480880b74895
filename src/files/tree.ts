/**
 * File operations inside a served root that session protocols (FTP, SFTP, SCP) share: listing a
 * folder, naming an entry to remove or rename, opening an upload that keeps part of an existing
 * file (append, resume), and turning an error into a message that is safe to send to a client.
 * Every path goes through safe-path first.
 * @module
 */
import { createReadStream, type Stats } from 'node:fs';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { FileServerError } from '../errors.js';
import { AtomicFile, isTempName } from './atomic-file.js';
import { type RootPath, resolveForRead, resolveForWrite, splitRequestPath } from './safe-path.js';

/** One entry of a folder listing. */
export interface TreeEntry {
  readonly name: string;
  /** Stats of the entry, of its target for a symlink that stays inside the root. */
  readonly stats: Stats;
}

function inside(root: string, candidate: string): boolean {
  return candidate === root || candidate.startsWith(root + path.sep);
}

/**
 * The entries of `folder` (an absolute path already resolved inside `root`), sorted by name.
 * Uploads in progress and symlinks that lead outside the root (or nowhere) are left out.
 */
export async function listFolder(root: string, folder: string): Promise<TreeEntry[]> {
  const names = (await readdir(folder)).filter((name) => !isTempName(name)).sort();
  const entries = await Promise.all(
    names.map(async (name): Promise<TreeEntry | undefined> => {
      const absolute = path.join(folder, name);
      try {
        const own = await lstat(absolute);
        if (!own.isSymbolicLink()) return { name, stats: own };
        if (!inside(root, await realpath(absolute))) return undefined;
        return { name, stats: await stat(absolute) };
      } catch {
        return undefined; // vanished meanwhile, or a dangling link
      }
    }),
  );
  return entries.filter((e): e is TreeEntry => e !== undefined);
}

/**
 * Names an existing entry for removal or renaming: its folder must resolve inside the root, the
 * entry itself is not followed (removing a symlink removes the link). The root itself is refused.
 */
export async function resolveEntry(
  root: string,
  requested: string,
): Promise<RootPath & { readonly stats: Stats }> {
  const segments = splitRequestPath(requested);
  const name = segments.pop();
  if (name === undefined) {
    throw new FileServerError('ERR_PATH_OUTSIDE_ROOT', 'The root itself cannot be removed or renamed', {
      details: { path: requested },
    });
  }
  const parent = await resolveForRead(root, segments.join('/'));
  const absolute = path.join(parent.absolute, name);
  try {
    return { absolute, relative: [...segments, name].join('/'), stats: await lstat(absolute) };
  } catch (error) {
    throw new FileServerError('ERR_NOT_FOUND', `No such file: ${requested}`, {
      cause: error,
      details: { path: requested },
    });
  }
}

/** Options of {@link openUpload}. */
export interface UploadOptions {
  readonly overwrite: boolean;
  readonly maxSize: number | undefined;
  /** Create missing parent folders (default true). */
  readonly mkdirs?: boolean;
  /**
   * Bytes of the existing file to keep at the start of the upload: a number (resume at that
   * offset), `'all'` (append) or 0 (default: replace).
   */
  readonly keep?: number | 'all';
}

/**
 * Opens an upload of `requested` under a temporary name. With `keep`, the first bytes of the
 * existing file are copied in first, so appends and resumed uploads still land atomically.
 */
export async function openUpload(
  root: string,
  requested: string,
  options: UploadOptions,
): Promise<{ file: AtomicFile; target: RootPath }> {
  const target = await resolveForWrite(root, requested, { mkdirs: options.mkdirs ?? true });
  const keep = options.keep ?? 0;
  // Keeping part of the file means rewriting it: that needs overwrite even when it exists.
  const file = await AtomicFile.create(target.absolute, {
    overwrite: options.overwrite || keep !== 0,
    maxSize: options.maxSize,
  });
  if (keep === 0) return { file, target };
  try {
    const existing = await stat(target.absolute).catch(() => undefined);
    if (existing?.isFile()) {
      const end = keep === 'all' ? existing.size : Math.min(keep, existing.size);
      if (end > 0) {
        await pipeline(createReadStream(target.absolute, { start: 0, end: end - 1 }), file.writable());
      }
    }
    return { file, target };
  } catch (error) {
    await file.abort();
    throw error;
  }
}

const systemMessages: Readonly<Record<string, string>> = {
  ENOENT: 'No such file or folder',
  ENOTDIR: 'Not a folder',
  EISDIR: 'Is a folder',
  EEXIST: 'File exists',
  ENOTEMPTY: 'Folder not empty',
  EACCES: 'Permission denied',
  EPERM: 'Permission denied',
  ENOSPC: 'No space left on the server',
  EDQUOT: 'Disk quota exceeded',
  EROFS: 'Read-only file system',
};

/**
 * A message to send to the client: ours as is, an operating-system error without its absolute
 * path (which would reveal where the root lives), anything else generic.
 */
export function clientMessage(error: unknown): string {
  if (error instanceof FileServerError) return error.message;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return (code && systemMessages[code]) || 'Operation failed';
}
