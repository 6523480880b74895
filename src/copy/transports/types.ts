/**
 * The host-side client of one protocol, as {@link copy} uses it.
 * @internal
 * @module
 */
import type { Readable, Writable } from 'node:stream';
import type { ResolvedUrl } from '../url.js';

/** @internal */
export interface DownloadHooks {
  readonly signal: AbortSignal;
  /** Called once, before the first byte, with the size when the protocol tells it. */
  onSize(size: number | undefined): void;
}

/** @internal */
export interface UploadHooks {
  readonly signal: AbortSignal;
  /** The size, when the source told it (always for local files). */
  readonly size: number | undefined;
  /** Called just before the remote file is created or truncated. */
  onWriteStart(): void;
}

/** @internal */
export interface Transport {
  /** Streams the remote file into `sink` and ends it (pipeline semantics). */
  download(target: ResolvedUrl, sink: Writable, hooks: DownloadHooks): Promise<void>;
  /** Streams `source` to the remote file. */
  upload(target: ResolvedUrl, source: Readable, hooks: UploadHooks): Promise<void>;
  /** Best-effort removal of a partly written remote file, where the protocol can delete. */
  remove?(target: ResolvedUrl, signal: AbortSignal): Promise<void>;
}
