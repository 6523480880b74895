/**
 * The server's virtual file system seam. A {@link TftpHandler} opens what a request names:
 * `openRead` returns a Buffer, a Readable or random access (`{ read(position, length), size? }`),
 * `openWrite` returns a Writable. Errors it throws become ERROR packets ({@link TftpError} picks
 * the number; ERR_NOT_FOUND is 1, ERR_PATH_OUTSIDE_ROOT 2, ERR_FILE_EXISTS 6, ...).
 * {@link rootHandler} serves a folder through the package's path policy and atomic uploads.
 * @module
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { AtomicFile } from '../files/atomic-file.js';
import { resolveForRead, resolveForWrite } from '../files/safe-path.js';
import { TFTP_ERROR, TftpError } from './errors.js';
import { fileContent, type TftpRandomAccess } from './source.js';
import type { Endpoint } from './transport.js';

export type { TftpRandomAccess } from './source.js';

/** One read or write request, as a handler sees it. */
export interface TftpRequest {
  /** `read` for RRQ (the peer downloads), `write` for WRQ (the peer uploads). */
  readonly direction: 'read' | 'write';
  /** The file name exactly as sent. */
  readonly filename: string;
  /** Transfer mode, lower-case. */
  readonly mode: 'octet' | 'netascii';
  /** Options as requested, names lower-case (`{ blksize: '1468', tsize: '0' }`). */
  readonly options: Readonly<Record<string, string>>;
  /** The peer's address and port (its TID). */
  readonly peer: Endpoint & {
    /** Address family of the peer. */
    readonly family: 'IPv4' | 'IPv6';
  };
  /** The address and port the request arrived on. */
  readonly local: Endpoint;
  /** WRQ: the size the peer announced with tsize, if it did. */
  readonly size: number | undefined;
  /** Aborted when the transfer ends early (peer gone, server stopping). */
  readonly signal: AbortSignal;
}

/** What `openRead` may return. */
export type TftpReadContent = Uint8Array | Readable | TftpRandomAccess;

/** The virtual file system of a {@link TftpServer}. A missing method refuses that direction. */
export interface TftpHandler {
  /** Opens content for a read request. Throw to refuse (see the module notes for the numbers). */
  openRead?(request: TftpRequest): TftpReadContent | Promise<TftpReadContent>;
  /**
   * Opens a sink for a write request. The transfer succeeds once the Writable has finished
   * (`'finish'`), so commit in `final()`; on failure it is destroyed with the error.
   */
  openWrite?(request: TftpRequest): Writable | Promise<Writable>;
}

/** Options of {@link rootHandler}. */
export interface RootHandlerOptions {
  /** Accept write requests (default true). */
  writable?: boolean;
  /** Replace existing files (default true); false answers ERROR 6. */
  overwrite?: boolean;
  /** Largest upload in bytes; beyond it ERROR 3. */
  maxFileSize?: number | undefined;
  /** Create missing folders of an upload's path (default true). */
  createFolders?: boolean;
}

/**
 * Serves the folder `root` (an absolute realpath): reads resolve inside it (`..`, absolute paths,
 * backslashes and symlinks leading out are refused with ERROR 2 before any byte is read), only
 * regular files are served, and uploads go to a temporary file renamed into place once complete.
 */
export function rootHandler(root: string, options: RootHandlerOptions = {}): TftpHandler {
  const handler: TftpHandler = {
    async openRead(request) {
      const target = await resolveForRead(root, request.filename);
      // O_NOFOLLOW: the checked path cannot be swapped for a symlink; O_NONBLOCK: a FIFO cannot hang us.
      const handle = await open(
        target.absolute,
        constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
      );
      try {
        const stat = await handle.stat();
        if (!stat.isFile()) {
          throw new TftpError('ERR_TFTP', `Not a regular file: ${request.filename}`, {
            tftpCode: TFTP_ERROR.ACCESS_VIOLATION,
          });
        }
        return fileContent(handle, stat.size);
      } catch (error) {
        await handle.close();
        throw error;
      }
    },
  };
  if (options.writable ?? true) {
    handler.openWrite = async (request) => {
      const target = await resolveForWrite(root, request.filename, { mkdirs: options.createFolders ?? true });
      const file = await AtomicFile.create(target.absolute, {
        overwrite: options.overwrite ?? true,
        maxSize: options.maxFileSize,
      });
      return file.writable({ commit: true });
    };
  }
  return handler;
}
