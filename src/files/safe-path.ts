/**
 * Maps a path a client asked for onto a file inside the served root, or refuses it. Every
 * protocol goes through here, so one set of rules holds everywhere:
 * - backslashes count as separators (`..\\..\\x` is `../../x`), leading slashes mean the root;
 * - a `..` segment, a NUL byte or a control character is refused outright;
 * - symlinks are followed only if their target is still inside the root (checked with realpath
 *   on the file, or on its nearest existing ancestor when the file is being created).
 * @module
 */
import { lstat, mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { FileServerError } from '../errors.js';

/** A request path mapped into the root. */
export interface RootPath {
  /** Absolute path on disk. */
  readonly absolute: string;
  /** Path relative to the root with `/` separators and no leading slash; `''` is the root itself. */
  readonly relative: string;
}

/** Normalises a client path to root-relative segments, or throws ERR_PATH_OUTSIDE_ROOT. */
export function splitRequestPath(requested: string): string[] {
  if (/[\u0000-\u001f\u007f]/.test(requested)) {
    throw outside(requested, 'control character in path');
  }
  const segments = requested.split(/[\\/]+/).filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw outside(requested, 'parent-directory segment');
  return segments;
}

function outside(requested: string, reason: string): FileServerError {
  return new FileServerError(
    'ERR_PATH_OUTSIDE_ROOT',
    `Path refused (${reason}): ${JSON.stringify(requested)}`,
    {
      details: { path: requested },
    },
  );
}

function contains(root: string, candidate: string): boolean {
  return candidate === root || candidate.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

/**
 * Resolves `requested` inside `root` (which must already be a realpath) for reading or listing.
 * Throws ERR_NOT_FOUND when nothing is there and ERR_PATH_OUTSIDE_ROOT when a symlink leads out.
 */
export async function resolveForRead(root: string, requested: string): Promise<RootPath> {
  const segments = splitRequestPath(requested);
  const absolute = path.join(root, ...segments);
  let real: string;
  try {
    real = await realpath(absolute);
  } catch (error) {
    throw notFoundOr(error, requested);
  }
  if (!contains(root, real)) throw outside(requested, 'symlink leads outside the root');
  return { absolute: real, relative: segments.join('/') };
}

/**
 * Resolves `requested` inside `root` for creating or replacing a file: the nearest existing
 * ancestor must resolve inside the root, and a folder may not be replaced by a file. With
 * `mkdirs`, missing parent folders are created.
 */
export async function resolveForWrite(
  root: string,
  requested: string,
  options: { mkdirs?: boolean } = {},
): Promise<RootPath> {
  const segments = splitRequestPath(requested);
  if (segments.length === 0) throw outside(requested, 'the root itself is not a file');
  const relative = segments.join('/');
  const parentSegments = segments.slice(0, -1);
  const name = segments[segments.length - 1]!;
  let existing = parentSegments.length;
  let realParent: string | undefined;
  // Walk up to the nearest ancestor that exists and check where it really is.
  for (; existing >= 0; existing--) {
    try {
      realParent = await realpath(path.join(root, ...parentSegments.slice(0, existing)));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  if (realParent === undefined || !contains(root, realParent)) {
    throw outside(requested, 'parent folder leads outside the root');
  }
  const missing = parentSegments.slice(existing);
  if (missing.length > 0 && !options.mkdirs) {
    throw new FileServerError('ERR_NOT_FOUND', `Folder does not exist: ${parentSegments.join('/')}`, {
      details: { path: requested },
    });
  }
  const parent = path.join(realParent, ...missing);
  if (missing.length > 0) await mkdir(parent, { recursive: true });
  const absolute = path.join(parent, name);
  const stat = await lstat(absolute).catch(() => undefined);
  if (stat?.isDirectory()) {
    throw new FileServerError('ERR_FILE_EXISTS', `A folder exists under that name: ${relative}`, {
      details: { path: requested },
    });
  }
  return { absolute, relative };
}

function notFoundOr(error: unknown, requested: string): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') {
    return new FileServerError('ERR_NOT_FOUND', `No such file: ${requested}`, {
      cause: error,
      details: { path: requested },
    });
  }
  return error;
}
