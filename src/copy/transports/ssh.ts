/**
 * SFTP and legacy SCP over an ssh2 client connection. SFTP: stat for the size, read and write
 * streams, parent folders created on upload, unlink to clean up. SCP: the rcp protocol on an
 * `scp -f` / `scp -t` exec channel (what network devices and OpenSSH's `scp -O` speak).
 * @internal
 * @module
 */
import { addAbortListener, once } from 'node:events';
import type { Writable } from 'node:stream';
import type { ClientChannel, SFTPWrapper } from 'ssh2';
import { FileServerError } from '../../errors.js';
import { connectSsh, type SshConnection } from '../ssh-connect.js';
import type { ResolvedUrl } from '../url.js';
import { sftpReadFile, sftpWriteFile } from './sftp-stream.js';
import { endSink, writeChunk } from './streams.js';
import type { Transport } from './types.js';

const CONNECT_TIMEOUT_MS = 20_000;
/** SFTP status code for "no such file". */
const NO_SUCH_FILE = 2;

async function withConnection<T>(
  target: ResolvedUrl,
  signal: AbortSignal,
  action: string,
  body: (connection: SshConnection) => Promise<T>,
): Promise<T> {
  const connection = await connectSsh(
    {
      host: target.host,
      port: target.port,
      username: target.username ?? '',
      password: target.password,
      hostKeyFingerprint: fingerprints(target.entry),
    },
    { code: 'ERR_TRANSFER_FAILED', timeoutMs: CONNECT_TIMEOUT_MS, signal, what: target.displayUrl },
  );
  const listener = addAbortListener(signal, () => connection.client.end());
  try {
    return await body(connection);
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    if (error instanceof FileServerError) throw error;
    const missing = (error as { code?: unknown }).code === NO_SUCH_FILE;
    throw new FileServerError(
      missing && action !== 'upload to' ? 'ERR_NOT_FOUND' : 'ERR_TRANSFER_FAILED',
      `${target.protocol.toUpperCase()} ${action} ${target.displayUrl} failed: ${(error as Error).message}`,
      { cause: error, details: { url: target.displayUrl } },
    );
  } finally {
    listener[Symbol.dispose]();
    connection.client.end();
    connection.socket.destroy();
  }
}

/**
 * Host key fingerprints the testbed entry vouches for: our SSH server publishes
 * `hostKeyFingerprints` ({ type: fingerprint }); a user may write `hostKeyFingerprint`.
 */
function fingerprints(entry: ResolvedUrl['entry']): string[] | undefined {
  const found = [
    entry.hostKeyFingerprint,
    ...Object.values((entry.hostKeyFingerprints as Record<string, unknown> | undefined) ?? {}),
  ].filter((f): f is string => typeof f === 'string');
  return found.length > 0 ? found : undefined;
}

function openSftp(connection: SshConnection): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) =>
    connection.client.sftp((error, sftp) => (error ? reject(error) : resolve(sftp))),
  );
}

function call<T = void>(fn: (cb: (error: Error | undefined | null, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) =>
    fn((error, value) => (error ? reject(error) : resolve(value as T))),
  );
}

async function mkdirs(sftp: SFTPWrapper, path: string): Promise<void> {
  const parts = path.split('/');
  parts.pop();
  let current = path.startsWith('/') ? '' : '.';
  for (const part of parts) {
    if (part === '' || part === '.') continue;
    current = `${current}/${part}`;
    const exists = await call((cb) => sftp.stat(current, (e) => cb(e))).then(
      () => true,
      () => false,
    );
    if (!exists) await call((cb) => sftp.mkdir(current, (e) => cb(e)));
  }
}

/** @internal */
export const sftpTransport: Transport = {
  download(target, sink, { signal, onSize }) {
    return withConnection(target, signal, 'download of', async (connection) => {
      const sftp = await openSftp(connection);
      const stats = await call<{ size: number }>((cb) => sftp.stat(target.path, cb));
      onSize(stats.size);
      await sftpReadFile(sftp, target.path, stats.size, sink);
    });
  },
  upload(target, source, { signal, onWriteStart }) {
    return withConnection(target, signal, 'upload to', async (connection) => {
      const sftp = await openSftp(connection);
      await mkdirs(sftp, target.path);
      onWriteStart();
      await sftpWriteFile(sftp, target.path, source);
    });
  },
  async remove(target, signal) {
    await withConnection(target, signal, 'removal of', async (connection) => {
      const sftp = await openSftp(connection);
      await call((cb) => sftp.unlink(target.path, (e) => cb(e)));
    });
  },
};

/** Quotes a path for the remote shell that runs `scp`. */
function quote(path: string): string {
  return /^[\w./:@%+=,-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs `command` and reads its channel. The reader listens from inside the callback: a remote scp
 * that fails at once sends its exit status in the same read as the reply to exec.
 */
function execScp(connection: SshConnection, command: string): Promise<ScpReader> {
  return new Promise((resolve, reject) =>
    connection.client.exec(command, (error, channel) =>
      error ? reject(error) : resolve(new ScpReader(channel)),
    ),
  );
}

/**
 * Reads the rcp protocol from a channel: acknowledgement bytes, `C` records, file bytes.
 * A tiny state machine so that file bytes go to the sink with backpressure.
 */
class ScpReader {
  /** The channel, for what goes the other way. */
  readonly channel: ClientChannel;
  #pending: Buffer = Buffer.alloc(0);
  #waiter: (() => void) | undefined;
  #ended = false;
  #stderr = '';
  #exitCode: number | undefined;

  constructor(channel: ClientChannel) {
    this.channel = channel;
    channel.on('exit', (status: number | null) => {
      this.#exitCode = status ?? undefined;
    });
    channel.on('data', (chunk: Buffer) => {
      this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
      channel.pause();
      this.#waiter?.();
    });
    channel.on('close', () => {
      this.#ended = true;
      this.#waiter?.();
    });
    channel.stderr.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-2000);
    });
  }

  /** Ends our side and waits for the channel to close; resolves with the exit status when sent. */
  async finish(): Promise<number | undefined> {
    this.channel.end();
    this.channel.resume();
    if (!this.#ended) await once(this.channel, 'close');
    return this.#exitCode;
  }

  get stderr(): string {
    return this.#stderr.trim();
  }

  async #more(): Promise<void> {
    if (this.#ended) throw new Error(`the remote scp ended early${this.stderr ? `: ${this.stderr}` : ''}`);
    await new Promise<void>((resolve) => {
      this.#waiter = resolve;
      this.channel.resume();
    });
    this.#waiter = undefined;
  }

  /** One acknowledgement: 0 is fine; 1 and 2 carry an error message line. */
  async ack(): Promise<void> {
    while (this.#pending.length === 0) await this.#more();
    const status = this.#pending[0]!;
    if (status === 0) {
      this.#pending = this.#pending.subarray(1);
      return;
    }
    if (status !== 1 && status !== 2) throw new Error(`unexpected scp reply byte ${status}`);
    const line = await this.line();
    throw new Error(line.slice(1) || 'scp error');
  }

  /** One line up to `\n`, without it. */
  async line(): Promise<string> {
    for (let i = 0; i < 1000; i++) {
      const eol = this.#pending.indexOf(10);
      if (eol >= 0) {
        const text = this.#pending.subarray(0, eol).toString('utf8');
        this.#pending = this.#pending.subarray(eol + 1);
        return text;
      }
      if (this.#pending.length > 4096) throw new Error('scp header line too long');
      await this.#more();
    }
    throw new Error('scp header line never ended');
  }

  /** Exactly `size` bytes into `sink`, honouring its backpressure; ends the sink. */
  async body(size: number, sink: Writable): Promise<void> {
    let left = size;
    while (left > 0) {
      if (this.#pending.length === 0) await this.#more();
      const piece = this.#pending.subarray(0, Math.min(left, this.#pending.length));
      this.#pending = this.#pending.subarray(piece.length);
      left -= piece.length;
      await writeChunk(sink, piece);
    }
    await endSink(sink);
  }
}

/** @internal */
export const scpTransport: Transport = {
  // SCP cannot delete; SSH servers that speak scp nearly always speak SFTP as well.
  remove: (target, signal) => sftpTransport.remove!(target, signal),
  download(target, sink, { signal, onSize }) {
    return withConnection(target, signal, 'download of', async (connection) => {
      const reader = await execScp(connection, `scp -f ${quote(target.path)}`);
      const { channel } = reader;
      try {
        channel.write(Buffer.from([0]));
        let header = await reader.line();
        // T (times) records come before C when the sender preserves times; skip them.
        for (let i = 0; header.startsWith('T') && i < 3; i++) {
          channel.write(Buffer.from([0]));
          header = await reader.line();
        }
        const status = header.charCodeAt(0);
        if (status === 1 || status === 2) throw new Error(header.slice(1) || 'scp error');
        const record = /^C[0-7]{4} (\d+) (.+)$/.exec(header);
        if (!record) throw new Error(`unexpected scp record ${JSON.stringify(header.slice(0, 80))}`);
        const size = Number(record[1]);
        onSize(size);
        channel.write(Buffer.from([0]));
        await reader.body(size, sink);
        await reader.ack();
        channel.write(Buffer.from([0]));
        await reader.finish();
      } catch (error) {
        sink.destroy(error as Error);
        throw scpError(error, target, reader, 'download of');
      }
    });
  },
  upload(target, source, { size, signal, onWriteStart }) {
    if (size === undefined) {
      throw new FileServerError(
        'ERR_INVALID_OPTIONS',
        `SCP needs the size before sending: copy to ${target.displayUrl} from a local file`,
      );
    }
    return withConnection(target, signal, 'upload to', async (connection) => {
      const reader = await execScp(connection, `scp -t ${quote(target.path)}`);
      const { channel } = reader;
      try {
        await reader.ack();
        const name = target.path.split('/').pop() || 'file';
        channel.write(`C0644 ${size} ${name.replace(/\n/g, '')}\n`);
        await reader.ack();
        onWriteStart();
        let sent = 0;
        for await (const chunk of source as AsyncIterable<Buffer>) {
          sent += chunk.length;
          await writeChunk(channel, chunk);
        }
        if (sent !== size) throw new Error(`the source gave ${sent} bytes, not the ${size} announced`);
        channel.write(Buffer.from([0]));
        await reader.ack();
        const status = await reader.finish();
        if (status !== undefined && status !== 0) throw new Error(`remote scp exited with ${status}`);
      } catch (error) {
        throw scpError(error, target, reader, 'upload to');
      }
    });
  },
};

function scpError(error: unknown, target: ResolvedUrl, reader: ScpReader, action: string): FileServerError {
  if (error instanceof FileServerError) return error;
  const message = (error as Error).message;
  const missing = /no such file|not found/i.test(message);
  return new FileServerError(
    missing && action === 'download of' ? 'ERR_NOT_FOUND' : 'ERR_TRANSFER_FAILED',
    `SCP ${action} ${target.displayUrl} failed: ${message}${reader.stderr && !message.includes(reader.stderr) ? ` (${reader.stderr})` : ''}`,
    { cause: error },
  );
}
