/**
 * Paths as a session-based client sees them (FTP, SFTP, SCP): a tree rooted at `/` with a
 * current folder. `..` moves up inside that tree (`cd ..` must work) but can never climb above
 * its root: such a path is refused, never clamped, so a traversal attempt is visible. The result
 * is then mapped onto disk by {@link resolveForRead} / {@link resolveForWrite}, which add the
 * symlink checks.
 * @module
 */
import { FileServerError } from '../errors.js';

/**
 * Joins `requested` onto the session's current folder `cwd` and normalises the result to an
 * absolute virtual path (`/`, `/a/b`). Backslashes count as separators, a leading `/` starts at
 * the root and a leading `~` means the root (the session's home). Throws ERR_PATH_OUTSIDE_ROOT
 * for a path that climbs above the root or holds a control character.
 */
export function joinVirtual(cwd: string, requested: string): string {
  if (/[\u0000-\u001f\u007f]/.test(requested)) {
    throw refused(requested, 'control character in path');
  }
  let path = requested.replace(/\\/g, '/');
  if (path === '~' || path.startsWith('~/')) path = `/${path.slice(1)}`;
  const segments = path.startsWith('/') ? [] : cwd.split('/').filter((s) => s !== '');
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (segments.length === 0) throw refused(requested, 'climbs above the root');
      segments.pop();
    } else {
      segments.push(segment);
    }
  }
  return `/${segments.join('/')}`;
}

/** The last segment of a virtual path (`''` for the root). */
export function virtualBase(virtualPath: string): string {
  return virtualPath.slice(virtualPath.lastIndexOf('/') + 1);
}

function refused(requested: string, reason: string): FileServerError {
  return new FileServerError(
    'ERR_PATH_OUTSIDE_ROOT',
    `Path refused (${reason}): ${JSON.stringify(requested)}`,
    {
      details: { path: requested },
    },
  );
}
