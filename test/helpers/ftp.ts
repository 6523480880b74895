/**
 * FTP test fixtures: a root with files, a symlink leading out and a secret beside it, and an FTP
 * FileServer serving it on loopback.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'basic-ftp';
import { FileServer, type FileServerOptions } from '../../src/file-server.js';
import type { TransferEvent } from '../../src/transfer.js';
import { tmpDir } from './tmp.js';

export const SECRET = 'TOP-SECRET-OUTSIDE-ROOT';

export interface FtpFixture extends AsyncDisposable {
  /** Temporary folder holding `root/` and the secret outside it. */
  dir: string;
  root: string;
  server: FileServer;
  host: string;
  port: number;
  user: string;
  password: string;
  events: TransferEvent[];
  /** A basic-ftp client logged in to the server (closed with the fixture). */
  client(options?: { user?: string; password?: string }): Promise<Client>;
}

/** Writes the standard tree: hello.txt, sub/data.bin, escape links and the secret outside. */
export async function makeTree(dir: string): Promise<string> {
  const root = path.join(dir, 'root');
  await mkdir(path.join(root, 'sub'), { recursive: true });
  await writeFile(path.join(root, 'hello.txt'), 'hello world\n');
  await writeFile(path.join(root, 'sub', 'data.bin'), Buffer.from([...Array(256).keys()]));
  await writeFile(path.join(dir, 'secret.txt'), SECRET);
  await symlink(path.join(dir, 'secret.txt'), path.join(root, 'escape.txt'));
  await symlink(dir, path.join(root, 'escape-dir'));
  await symlink('hello.txt', path.join(root, 'inside-link.txt'));
  return root;
}

export async function ftpFixture(options: Partial<FileServerOptions> = {}): Promise<FtpFixture> {
  const tmp = await tmpDir('tbfs-ftp-');
  const root = await makeTree(tmp.path);
  const server = await FileServer.start({ protocol: 'ftp', root, address: '127.0.0.1', ...options });
  const events: TransferEvent[] = [];
  server.on('transfer', (e) => events.push(e));
  const clients: Client[] = [];
  const info = server.info;
  return {
    dir: tmp.path,
    root,
    server,
    host: info.address,
    port: info.port,
    user: info.username ?? '',
    password: info.password ?? '',
    events,
    async client(login = {}) {
      const client = new Client(10_000);
      clients.push(client);
      await client.access({
        host: info.address,
        port: info.port,
        user: login.user ?? info.username ?? '',
        password: login.password ?? info.password ?? '',
      });
      return client;
    },
    async [Symbol.asyncDispose]() {
      for (const c of clients) c.close();
      await server.stop();
      await tmp[Symbol.asyncDispose]();
    },
  };
}

/** One FTP reply. */
export interface FtpReply {
  code: number;
  text: string;
}

/** A hand-driven FTP control connection, for tests that need exact control over the protocol. */
export class RawFtp {
  readonly socket: import('node:net').Socket;
  #buffer = '';
  #lines: string[] = [];
  #waiting: (() => void) | undefined;
  #closed = false;

  private constructor(socket: import('node:net').Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.#buffer += text;
      let i = this.#buffer.indexOf('\r\n');
      while (i >= 0) {
        this.#lines.push(this.#buffer.slice(0, i));
        this.#buffer = this.#buffer.slice(i + 2);
        i = this.#buffer.indexOf('\r\n');
      }
      this.#waiting?.();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#waiting?.();
    });
    socket.on('error', () => {});
  }

  static async connect(host: string, port: number): Promise<RawFtp> {
    const net = await import('node:net');
    const socket = net.connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const raw = new RawFtp(socket);
    await raw.reply();
    return raw;
  }

  /** Reads the next complete reply (multi-line replies joined); rejects on close or after 10 s. */
  async reply(): Promise<FtpReply> {
    const deadline = Date.now() + 10_000;
    const lines: string[] = [];
    for (;;) {
      const line = this.#lines.shift();
      if (line === undefined) {
        if (this.#closed) throw new Error(`connection closed; got ${JSON.stringify(lines)}`);
        if (Date.now() > deadline) throw new Error('no FTP reply within 10 s');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 200);
          this.#waiting = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        continue;
      }
      lines.push(line);
      const m = /^(\d{3})([ -])/.exec(lines[0]!);
      if (!m) throw new Error(`not an FTP reply: ${line}`);
      if (line.startsWith(`${m[1]} `)) return { code: Number(m[1]), text: lines.join('\n') };
    }
  }

  async send(command: string): Promise<FtpReply> {
    this.socket.write(`${command}\r\n`);
    return this.reply();
  }

  async login(user: string, password: string): Promise<void> {
    await this.send(`USER ${user}`);
    const reply = await this.send(`PASS ${password}`);
    if (reply.code !== 230) throw new Error(`login failed: ${reply.text}`);
  }

  /** EPSV, then a connected data socket. */
  async passive(host: string): Promise<import('node:net').Socket> {
    const reply = await this.send('EPSV');
    const port = Number(/\(\|\|\|(\d+)\|\)/.exec(reply.text)?.[1]);
    if (!port) throw new Error(`EPSV failed: ${reply.text}`);
    const net = await import('node:net');
    const data = net.connect({ host, port });
    data.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      data.once('connect', resolve);
      data.once('error', reject);
    });
    return data;
  }

  close(): void {
    this.socket.destroy();
  }
}
