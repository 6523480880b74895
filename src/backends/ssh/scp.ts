/**
 * Legacy scp: the remote half of the rcp protocol that `scp -O` and most network devices speak
 * over an SSH exec channel. The sink (`scp -t`) receives `C`/`D`/`E`/`T` records and file bodies
 * into temporary files that are renamed into place only once the whole file and the client's
 * trailing status byte arrived; the source (`scp -f`) sends files and folders. Every status byte
 * is `\0` (ok), `\1` + message (this item failed, go on) or `\2` + message (fatal).
 * @internal
 * @module
 */
import { createReadStream } from 'node:fs';
import { chmod, mkdir, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import { FileServerError } from '../../errors.js';
import type { AtomicFile } from '../../files/atomic-file.js';
import { resolveForRead, resolveForWrite } from '../../files/safe-path.js';
import { clientMessage, listFolder, openUpload } from '../../files/tree.js';
import { joinVirtual, virtualBase } from '../../files/virtual-path.js';
import type { Peer } from '../../transfer.js';
import type { BackendContext } from '../backend.js';
import type { ChannelIo } from './channel-io.js';
import type { ScpCommand } from './scp-command.js';

/** What a transfer over SSH needs from the backend. */
export type SshFileContext = Pick<
  BackendContext,
  'root' | 'readOnly' | 'overwrite' | 'maxFileSize' | 'transfers' | 'log'
> & { readonly peer: Peer };

class Fatal extends Error {}

interface Times {
  mtime: number;
  atime: number;
}

/** Runs one scp command on `io`; resolves with the exit status (0 when every item succeeded). */
export async function runScp(io: ChannelIo, command: ScpCommand, ctx: SshFileContext): Promise<number> {
  const run = new ScpRun(io, command, ctx);
  try {
    await (command.mode === 'sink' ? run.sink() : run.source());
  } catch (error) {
    ctx.log('scp %s %s: %s', command.mode, command.path, (error as Error).message);
    if (error instanceof Fatal) await io.write(`\x02scp: ${error.message}\n`).catch(() => {});
    return 1;
  }
  return run.errors > 0 ? 1 : 0;
}

class ScpRun {
  errors = 0;
  readonly #io: ChannelIo;
  readonly #command: ScpCommand;
  readonly #ctx: SshFileContext;

  constructor(io: ChannelIo, command: ScpCommand, ctx: SshFileContext) {
    this.#io = io;
    this.#command = command;
    this.#ctx = ctx;
  }

  /** Reports a failed item to the client and goes on. */
  async #warn(message: string): Promise<void> {
    this.errors++;
    await this.#io.write(`\x01scp: ${message}\n`);
  }

  // --- sink: the client uploads --------------------------------------------------------------

  async sink(): Promise<void> {
    if (this.#ctx.readOnly) throw new Fatal('this server is read-only');
    const target = joinVirtual('/', this.#command.path);
    const isDir = await this.#isFolder(target);
    if (this.#command.targetShouldBeDirectory && !isDir) throw new Fatal(`${target}: not a folder`);
    await this.#io.write('\0');
    await this.#sinkFolder(target, isDir, 0);
  }

  async #isFolder(virtual: string): Promise<boolean> {
    try {
      const found = await resolveForRead(this.#ctx.root, virtual);
      return (await stat(found.absolute)).isDirectory();
    } catch (error) {
      if (error instanceof FileServerError && error.code === 'ERR_NOT_FOUND') return false;
      throw new Fatal(clientMessage(error));
    }
  }

  /** Receives records until `E` (inside a folder) or the end of the channel (at the top). */
  async #sinkFolder(target: string, targetIsFolder: boolean, depth: number): Promise<void> {
    let times: Times | undefined;
    for (;;) {
      const line = await this.#io.readLine();
      if (line === undefined) {
        if (depth > 0) throw new Error('The client left in the middle of a folder');
        return;
      }
      const type = line[0];
      if (type === '\x01' || type === '\x02') {
        this.#ctx.log('scp client reports: %s', line.slice(1));
        this.errors++;
        if (type === '\x02') return;
        continue;
      }
      if (line === 'E') {
        if (depth === 0) throw new Fatal('protocol error: E without D');
        await this.#io.write('\0');
        return;
      }
      if (type === 'T') {
        const m = /^T(\d+) \d+ (\d+) \d+$/.exec(line);
        if (!m) throw new Fatal('protocol error: malformed T record');
        times = { mtime: Number(m[1]), atime: Number(m[2]) };
        await this.#io.write('\0');
        continue;
      }
      const m = /^([CD])([0-7]{4}) (\d{1,19}) (.+)$/.exec(line);
      if (!m) throw new Fatal('protocol error: expected a C, D, E or T record');
      const [, kind, modeText, sizeText, name] = m as unknown as [string, 'C' | 'D', string, string, string];
      if (name === '.' || name === '..' || /[/\\\u0000-\u001f]/.test(name)) {
        throw new Fatal(`unexpected filename: ${JSON.stringify(name)}`);
      }
      const entry = targetIsFolder ? `${target === '/' ? '' : target}/${name}` : target;
      const mode = Number.parseInt(modeText, 8) & 0o777;
      if (kind === 'D') {
        await this.#receiveFolder(entry, mode, times, depth);
      } else {
        await this.#receiveFile(entry, Number(sizeText), mode, times);
      }
      times = undefined;
    }
  }

  async #receiveFolder(entry: string, mode: number, times: Times | undefined, depth: number): Promise<void> {
    if (!this.#command.recursive) throw new Fatal('received a folder without -r');
    try {
      if (!(await this.#isFolder(entry))) {
        const target = await resolveForWrite(this.#ctx.root, entry, { mkdirs: true });
        await mkdir(target.absolute);
      }
    } catch (error) {
      if (error instanceof Fatal) throw error;
      throw new Fatal(`${entry}: ${clientMessage(error)}`);
    }
    await this.#io.write('\0');
    await this.#sinkFolder(entry, true, depth + 1);
    if (this.#command.preserve) {
      const folder = await resolveForRead(this.#ctx.root, entry);
      await chmod(folder.absolute, mode | 0o700).catch(() => {});
      if (times) await utimes(folder.absolute, times.atime, times.mtime).catch(() => {});
    }
  }

  async #receiveFile(entry: string, size: number, mode: number, times: Times | undefined): Promise<void> {
    const { maxFileSize } = this.#ctx;
    if (maxFileSize !== undefined && size > maxFileSize) {
      return this.#warn(`${entry}: larger than the server's ${maxFileSize}-byte limit`);
    }
    let upload: { file: AtomicFile; target: { relative: string } };
    try {
      upload = await openUpload(this.#ctx.root, entry, {
        overwrite: this.#ctx.overwrite,
        maxSize: maxFileSize,
        mkdirs: true,
      });
    } catch (error) {
      // Refused before the body: the client skips this file and goes on.
      return this.#warn(`${entry}: ${clientMessage(error)}`);
    }
    const { file, target } = upload;
    const transfer = this.#ctx.transfers.begin({
      protocol: 'scp',
      peer: this.#ctx.peer,
      path: target.relative,
      direction: 'upload',
    });
    let failure: unknown;
    try {
      await this.#io.write('\0');
      await this.#io.readInto(size, async (chunk) => {
        if (failure !== undefined) return; // keep reading the body so the stream stays in step
        try {
          await file.write(chunk);
          transfer.add(chunk.length);
        } catch (error) {
          failure = error;
        }
      });
      const status = await this.#io.readByte();
      if (status !== 0)
        failure ??= new FileServerError('ERR_TRANSFER_FAILED', 'The client reported an error');
      if (failure === undefined) {
        if (this.#command.preserve) {
          await chmod(file.tempPath, mode);
          if (times) await utimes(file.tempPath, times.atime, times.mtime);
        }
        await file.commit();
        transfer.end();
        await this.#io.write('\0');
        return;
      }
    } catch (error) {
      failure ??= error;
    }
    await file.abort();
    const error = failure instanceof Error ? failure : new Error(String(failure));
    transfer.end(error);
    if (error instanceof FileServerError && error.code === 'ERR_TRANSFER_ABORTED') throw error;
    await this.#warn(`${entry}: ${clientMessage(error)}`);
  }

  // --- source: the client downloads ----------------------------------------------------------

  async source(): Promise<void> {
    if ((await this.#io.readByte()) !== 0) throw new Error('The client did not start the transfer');
    const requested = joinVirtual('/', this.#command.path);
    let absolute: string;
    let relative: string;
    try {
      ({ absolute, relative } = await resolveForRead(this.#ctx.root, requested));
    } catch (error) {
      return this.#warn(`${requested}: ${clientMessage(error)}`);
    }
    const name = virtualBase(requested) || path.basename(this.#ctx.root);
    await this.#send(absolute, relative, name, new Set());
  }

  /** The client's answer to a record: true for ok; false for a reported error; throws when fatal. */
  async #response(): Promise<boolean> {
    const status = await this.#io.readByte();
    if (status === 0) return true;
    if (status === 1 || status === 2) {
      const message = await this.#io.readLine();
      this.#ctx.log('scp client reports: %s', message);
      this.errors++;
      if (status === 2) throw new Error(`The client gave up: ${message}`);
      return false;
    }
    throw new Error(status === undefined ? 'The client left' : 'Protocol error: bad status byte');
  }

  /** Sends a file or (with -r) a folder; `ancestors` stops symlink loops. */
  async #send(absolute: string, relative: string, name: string, ancestors: Set<string>): Promise<void> {
    const stats = await stat(absolute);
    const identity = `${stats.dev}:${stats.ino}`;
    if (ancestors.has(identity)) return this.#warn(`${relative}: symlink loop, skipped`);
    const mode = (stats.mode & 0o7777).toString(8).padStart(4, '0');
    if (!stats.isDirectory() && !stats.isFile()) return this.#warn(`${name}: not a regular file`);
    if (stats.isDirectory() && !this.#command.recursive) return this.#warn(`${name}: is a folder (use -r)`);
    if (this.#command.preserve) {
      await this.#io.write(`T${Math.floor(stats.mtimeMs / 1000)} 0 ${Math.floor(stats.atimeMs / 1000)} 0\n`);
      if (!(await this.#response())) return;
    }
    if (stats.isDirectory()) {
      await this.#io.write(`D${mode} 0 ${name}\n`);
      if (!(await this.#response())) return;
      const inner = new Set(ancestors).add(identity);
      for (const entry of await listFolder(this.#ctx.root, absolute)) {
        const childRelative = relative ? `${relative}/${entry.name}` : entry.name;
        await this.#send(path.join(absolute, entry.name), childRelative, entry.name, inner);
      }
      await this.#io.write('E\n');
      await this.#response();
      return;
    }
    await this.#io.write(`C${mode} ${stats.size} ${name}\n`);
    if (!(await this.#response())) return;
    const transfer = this.#ctx.transfers.begin({
      protocol: 'scp',
      peer: this.#ctx.peer,
      path: relative,
      direction: 'download',
    });
    try {
      let sent = 0;
      // Exactly the announced size: a file that grew is cut, one that shrank is padded and
      // reported as failed, as OpenSSH does.
      if (stats.size > 0) {
        for await (const chunk of createReadStream(absolute, { start: 0, end: stats.size - 1 })) {
          await this.#io.write(chunk as Buffer);
          sent += (chunk as Buffer).length;
          transfer.add((chunk as Buffer).length);
        }
      }
      if (sent < stats.size) {
        await this.#io.write(Buffer.alloc(stats.size - sent));
        await this.#io.write(`\x01scp: ${name}: file shrank while being sent\n`);
        this.errors++;
        throw new FileServerError('ERR_TRANSFER_FAILED', 'The file shrank while being sent');
      }
      await this.#io.write('\0');
      if (!(await this.#response()))
        throw new FileServerError('ERR_TRANSFER_FAILED', 'The client refused the file');
      transfer.end();
    } catch (error) {
      transfer.end(error as Error);
      if (!(error instanceof FileServerError && error.code === 'ERR_TRANSFER_FAILED')) throw error;
    }
  }
}
