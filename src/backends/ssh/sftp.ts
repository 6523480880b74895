/**
 * The SFTP subsystem (version 3, what OpenSSH's sftp and scp speak) over ssh2's server-side SFTP
 * stream. Paths are virtual (`/` is the served root, relative paths start there); files opened
 * for writing are temporary files renamed into place on CLOSE, so an upload that never closes
 * leaves nothing. Requests on one handle run in order; symlinks cannot be created.
 * @internal
 * @module
 */
import type { Stats } from 'node:fs';
import {
  chmod,
  type FileHandle,
  mkdir,
  open,
  rename,
  rmdir,
  stat,
  truncate,
  unlink,
  utimes,
} from 'node:fs/promises';
import ssh2, { type Attributes, type InputAttributes, type SFTPWrapper } from 'ssh2';
import { FileServerError } from '../../errors.js';
import type { AtomicFile } from '../../files/atomic-file.js';
import { resolveForRead, resolveForWrite } from '../../files/safe-path.js';
import { clientMessage, listFolder, openUpload, resolveEntry, type TreeEntry } from '../../files/tree.js';
import { joinVirtual } from '../../files/virtual-path.js';
import type { ActiveTransfer } from '../../transfer.js';
import type { SshFileContext } from './scp.js';

const { OPEN_MODE, STATUS_CODE } = ssh2.utils.sftp;

/** Largest DATA reply; clients ask for 32-256 KiB and accept short reads. */
const MAX_READ = 64 * 1024;
/** Entries per READDIR reply. */
const DIR_BATCH = 128;
/** Open handles per session (each may hold a file descriptor). */
const MAX_HANDLES = 256;

type Handle =
  | { kind: 'read'; file: FileHandle; size: number; end: number; transfer: ActiveTransfer }
  | { kind: 'write'; file: AtomicFile; append: boolean; failed?: unknown; transfer: ActiveTransfer }
  | { kind: 'dir'; absolute: string; entries: TreeEntry[] | undefined };

/** The SFTP status for an error, with a message safe to show the client. */
function statusOf(error: unknown): [number, string] {
  const message = clientMessage(error);
  if (error instanceof FileServerError) {
    switch (error.code) {
      case 'ERR_NOT_FOUND':
        return [STATUS_CODE.NO_SUCH_FILE, message];
      case 'ERR_PATH_OUTSIDE_ROOT':
      case 'ERR_READ_ONLY':
        return [STATUS_CODE.PERMISSION_DENIED, message];
      default:
        return [STATUS_CODE.FAILURE, message];
    }
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return [STATUS_CODE.NO_SUCH_FILE, message];
  if (code === 'EACCES' || code === 'EPERM') return [STATUS_CODE.PERMISSION_DENIED, message];
  return [STATUS_CODE.FAILURE, message];
}

function attrsOf(s: Stats): Attributes {
  return {
    mode: s.mode,
    uid: s.uid,
    gid: s.gid,
    size: s.size,
    atime: Math.floor(s.atimeMs / 1000),
    mtime: Math.floor(s.mtimeMs / 1000),
  };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** An `ls -l` line, which `sftp ls -l` prints as is. */
function longname(name: string, s: Stats): string {
  const type = s.isDirectory() ? 'd' : s.isSymbolicLink() ? 'l' : '-';
  const perms = [0o400, 0o200, 0o100, 0o40, 0o20, 0o10, 0o4, 0o2, 0o1]
    .map((bit, i) => (s.mode & bit ? 'rwx'[i % 3] : '-'))
    .join('');
  const d = s.mtime;
  const recent = Date.now() - d.getTime() < 180 * 86_400_000;
  const when = `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2)} ${
    recent
      ? `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`
      : ` ${d.getFullYear()}`
  }`;
  return `${type}${perms}    1 ${String(s.uid).padEnd(8)} ${String(s.gid).padEnd(8)} ${String(s.size).padStart(8)} ${when} ${name}`;
}

/** Serves one SFTP session on `sftp` until it closes; open uploads are then discarded. */
export function serveSftp(sftp: SFTPWrapper, ctx: SshFileContext): void {
  const handles = new Map<string, Handle>();
  const queues = new Map<string, Promise<void>>();
  let nextId = 0;
  let closed = false;
  let ending = false;
  let pending = 0;

  const reply = (id: number, work: () => Promise<void>) => {
    pending++;
    work()
      .catch((error: unknown) => {
        if (closed) return;
        const [code, message] = statusOf(error);
        if (!(error instanceof FileServerError)) ctx.log('sftp: %s', (error as Error)?.message);
        try {
          sftp.status(id, code, message);
        } catch {
          // the channel went away meanwhile
        }
      })
      .finally(() => {
        pending--;
        if (ending && pending === 0) finish(sftp);
      });
  };
  /** Requests on one handle run one after the other (writes must land in order). */
  const onHandle = (id: number, raw: Buffer, work: (h: Handle, key: string) => Promise<void>) => {
    const key = raw.toString('hex');
    const previous = queues.get(key) ?? Promise.resolve();
    const next = previous.then(() => {
      const h = handles.get(key);
      if (!h) throw new FileServerError('ERR_INVALID_STATE', 'Invalid handle');
      return work(h, key);
    });
    const settled = next.catch(() => {});
    queues.set(key, settled);
    settled.then(() => {
      if (queues.get(key) === settled) queues.delete(key);
    });
    reply(id, () => next);
  };
  const ok = (id: number) => sftp.status(id, STATUS_CODE.OK);
  const writable = () => {
    if (ctx.readOnly) throw new FileServerError('ERR_READ_ONLY', 'This server is read-only');
  };
  const virtual = (p: string) => joinVirtual('/', p);
  const addHandle = (id: number, h: Handle) => {
    if (handles.size >= MAX_HANDLES) throw new FileServerError('ERR_INVALID_STATE', 'Too many open handles');
    const raw = Buffer.alloc(4);
    raw.writeUInt32BE(nextId++);
    handles.set(raw.toString('hex'), h);
    sftp.handle(id, raw);
  };
  const begin = (relative: string, direction: 'upload' | 'download') =>
    ctx.transfers.begin({ protocol: 'sftp', peer: ctx.peer, path: relative, direction });

  sftp.on('OPEN', (id, filename, flags) =>
    reply(id, async () => {
      const wanted = virtual(filename);
      if (flags & OPEN_MODE.WRITE) {
        if (flags & OPEN_MODE.READ)
          throw new FileServerError('ERR_INVALID_OPTIONS', 'Read-write opens are not supported');
        writable();
        const existing = await resolveForRead(ctx.root, wanted).then(
          (found) => stat(found.absolute),
          () => undefined,
        );
        if (existing && flags & OPEN_MODE.EXCL)
          throw new FileServerError('ERR_FILE_EXISTS', `File exists: ${wanted}`);
        if (existing && !ctx.overwrite) {
          throw new FileServerError('ERR_FILE_EXISTS', `File exists and overwrite is off: ${wanted}`);
        }
        if (!existing && !(flags & OPEN_MODE.CREAT))
          throw new FileServerError('ERR_NOT_FOUND', `No such file: ${wanted}`);
        // Without TRUNC the existing bytes stay (writes at offsets patch them), still atomically.
        const keep = flags & OPEN_MODE.TRUNC || !existing ? 0 : 'all';
        const { file, target } = await openUpload(ctx.root, wanted, {
          overwrite: true,
          maxSize: ctx.maxFileSize,
          keep,
        });
        addHandle(id, {
          kind: 'write',
          file,
          append: (flags & OPEN_MODE.APPEND) !== 0,
          transfer: begin(target.relative, 'upload'),
        });
        return;
      }
      const found = await resolveForRead(ctx.root, wanted);
      const file = await open(found.absolute, 'r');
      try {
        const s = await file.stat();
        if (!s.isFile()) throw new FileServerError('ERR_NOT_FOUND', `Not a file: ${wanted}`);
        addHandle(id, {
          kind: 'read',
          file,
          size: s.size,
          end: 0,
          transfer: begin(found.relative, 'download'),
        });
      } catch (error) {
        await file.close();
        throw error;
      }
    }),
  );

  sftp.on('READ', (id, raw, offset, length) =>
    onHandle(id, raw, async (h) => {
      if (h.kind !== 'read') throw new FileServerError('ERR_INVALID_STATE', 'Handle not open for reading');
      const buffer = Buffer.allocUnsafe(Math.min(length, MAX_READ));
      const { bytesRead } = await h.file.read(buffer, 0, buffer.length, offset);
      if (bytesRead === 0) {
        h.end = Math.max(h.end, h.size);
        sftp.status(id, STATUS_CODE.EOF);
        return;
      }
      h.end = Math.max(h.end, offset + bytesRead);
      h.transfer.add(bytesRead);
      sftp.data(id, buffer.subarray(0, bytesRead));
    }),
  );

  sftp.on('WRITE', (id, raw, offset, data) =>
    onHandle(id, raw, async (h) => {
      if (h.kind !== 'write') throw new FileServerError('ERR_INVALID_STATE', 'Handle not open for writing');
      if (h.failed) throw h.failed;
      try {
        await h.file.write(data, h.append ? h.file.size : offset);
      } catch (error) {
        h.failed = error; // the upload can no longer be whole: CLOSE will discard it
        throw error;
      }
      h.transfer.add(data.length);
      ok(id);
    }),
  );

  sftp.on('FSTAT', (id, raw) =>
    onHandle(id, raw, async (h) => {
      const s =
        h.kind === 'read'
          ? await h.file.stat()
          : await stat(h.kind === 'write' ? h.file.tempPath : h.absolute);
      sftp.attrs(id, attrsOf(s));
    }),
  );

  sftp.on('FSETSTAT', (id, raw, attrs) =>
    onHandle(id, raw, async (h) => {
      writable();
      if (h.kind === 'write') await applyAttrs(h.file.tempPath, attrs, ctx.maxFileSize);
      ok(id); // files being read and folders being listed are left alone
    }),
  );

  sftp.on('CLOSE', (id, raw) =>
    onHandle(id, raw, async (h, key) => {
      handles.delete(key);
      if (h.kind === 'dir') return ok(id);
      if (h.kind === 'read') {
        await h.file.close();
        h.transfer.end(
          h.end >= h.size
            ? undefined
            : new FileServerError('ERR_TRANSFER_ABORTED', 'Closed before the end of the file'),
        );
        return ok(id);
      }
      if (h.failed) {
        await h.file.abort();
        h.transfer.end(h.failed as Error);
        throw h.failed;
      }
      try {
        await h.file.commit();
      } catch (error) {
        h.transfer.end(error as Error);
        throw error;
      }
      h.transfer.end();
      ok(id);
    }),
  );

  sftp.on('OPENDIR', (id, p) =>
    reply(id, async () => {
      const found = await resolveForRead(ctx.root, virtual(p));
      if (!(await stat(found.absolute)).isDirectory())
        throw new FileServerError('ERR_NOT_FOUND', `Not a folder: ${p}`);
      addHandle(id, { kind: 'dir', absolute: found.absolute, entries: undefined });
    }),
  );

  sftp.on('READDIR', (id, raw) =>
    onHandle(id, raw, async (h) => {
      if (h.kind !== 'dir') throw new FileServerError('ERR_INVALID_STATE', 'Handle is not a folder');
      h.entries ??= await listFolder(ctx.root, h.absolute);
      const batch = h.entries.splice(0, DIR_BATCH);
      if (batch.length === 0) return void sftp.status(id, STATUS_CODE.EOF);
      sftp.name(
        id,
        batch.map((e) => ({
          filename: e.name,
          longname: longname(e.name, e.stats),
          attrs: attrsOf(e.stats),
        })),
      );
    }),
  );

  const statPath = (id: number, p: string) =>
    reply(id, async () => {
      const found = await resolveForRead(ctx.root, virtual(p));
      sftp.attrs(id, attrsOf(await stat(found.absolute)));
    });
  sftp.on('STAT', statPath);
  sftp.on('LSTAT', statPath); // symlinks are shown as what they point to (inside the root)

  sftp.on('SETSTAT', (id, p, attrs) =>
    reply(id, async () => {
      writable();
      const found = await resolveForRead(ctx.root, virtual(p));
      await applyAttrs(found.absolute, attrs, ctx.maxFileSize);
      ok(id);
    }),
  );

  sftp.on('REMOVE', (id, p) =>
    reply(id, async () => {
      writable();
      const entry = await resolveEntry(ctx.root, virtual(p));
      if (entry.stats.isDirectory()) throw new FileServerError('ERR_FILE_EXISTS', `Is a folder: ${p}`);
      await unlink(entry.absolute);
      ok(id);
    }),
  );

  sftp.on('RMDIR', (id, p) =>
    reply(id, async () => {
      writable();
      const entry = await resolveEntry(ctx.root, virtual(p));
      if (!entry.stats.isDirectory()) throw new FileServerError('ERR_NOT_FOUND', `Not a folder: ${p}`);
      await rmdir(entry.absolute);
      ok(id);
    }),
  );

  sftp.on('MKDIR', (id, p) =>
    reply(id, async () => {
      writable();
      const target = await resolveForWrite(ctx.root, virtual(p));
      await mkdir(target.absolute);
      ok(id);
    }),
  );

  sftp.on('RENAME', (id, from, to) =>
    reply(id, async () => {
      writable();
      const source = await resolveEntry(ctx.root, virtual(from));
      const target = await resolveForWrite(ctx.root, virtual(to));
      // SFTP v3: RENAME never replaces an existing file.
      if (await stat(target.absolute).catch(() => undefined))
        throw new FileServerError('ERR_FILE_EXISTS', `File exists: ${to}`);
      await rename(source.absolute, target.absolute);
      ok(id);
    }),
  );

  sftp.on('REALPATH', (id, p) =>
    reply(id, async () => {
      const resolved = virtual(p);
      sftp.name(id, [{ filename: resolved, longname: resolved, attrs: {} as Attributes }]);
    }),
  );

  const unsupported = (id: number) =>
    sftp.status(id, STATUS_CODE.OP_UNSUPPORTED, 'Not supported by this server');
  sftp.on('READLINK', unsupported);
  sftp.on('SYMLINK', unsupported);

  sftp.on('error', (error: Error) => ctx.log('sftp session: %s', error.message));
  // The client is done (EOF): answer what is still running, then close the channel, as
  // OpenSSH's sftp-server exits at the end of its input.
  sftp.on('end', () => {
    ending = true;
    if (pending === 0) finish(sftp);
  });
  sftp.on('close', () => {
    closed = true;
    const reason = new FileServerError(
      'ERR_TRANSFER_ABORTED',
      'The SFTP session ended with the file still open',
    );
    for (const h of handles.values()) {
      if (h.kind === 'read') {
        void h.file.close().catch(() => {});
        h.transfer.end(h.end >= h.size ? undefined : reason);
      } else if (h.kind === 'write') {
        void h.file.abort();
        h.transfer.end(reason);
      }
    }
    handles.clear();
  });
}

/**
 * Closes the channel with exit status 0, as sftp-server does when it ends. OpenSSH's scp (in
 * SFTP mode) fails a transfer whose ssh ends without an exit status. ssh2 offers `exit()` on
 * exec channels only, so the status is sent through its protocol object.
 */
function finish(sftp: SFTPWrapper): void {
  const internals = sftp as unknown as {
    _protocol?: { exitStatus?: (channel: number, status: number) => void };
    outgoing?: { id: number; state: string };
  };
  try {
    if (internals.outgoing?.state === 'open') internals._protocol?.exitStatus?.(internals.outgoing.id, 0);
    sftp.end();
  } catch {
    // the connection is already gone
  }
}

/**
 * Applies the size (OpenSSH's scp opens without TRUNC and truncates at the end), the mode
 * (permission bits only) and the times of `attrs`; owners are ignored.
 */
async function applyAttrs(file: string, attrs: InputAttributes, maxSize: number | undefined): Promise<void> {
  if (typeof attrs.size === 'number') {
    if (maxSize !== undefined && attrs.size > maxSize) {
      throw new FileServerError('ERR_FILE_TOO_LARGE', `Size exceeds the ${maxSize}-byte limit`);
    }
    await truncate(file, attrs.size);
  }
  if (typeof attrs.mode === 'number') await chmod(file, attrs.mode & 0o777);
  if (attrs.atime !== undefined && attrs.mtime !== undefined) {
    await utimes(file, attrs.atime as number, attrs.mtime as number);
  }
}
