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
