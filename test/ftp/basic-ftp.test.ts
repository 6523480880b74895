import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { enterPassiveModeIPv4 } from 'basic-ftp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSameBytes } from '../helpers/bytes.js';
import { type FtpFixture, ftpFixture, SECRET } from '../helpers/ftp.js';

async function download(client: Awaited<ReturnType<FtpFixture['client']>>, remote: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => chunks.push(c));
  await client.downloadTo(sink, remote);
  return Buffer.concat(chunks);
}

describe('FTP with basic-ftp', () => {
  let f: FtpFixture;
  beforeAll(async () => {
    f = await ftpFixture();
  });
  afterAll(async () => {
    await f?.[Symbol.asyncDispose]();
  });

  it('downloads and uploads over EPSV', async () => {
    const client = await f.client();
    expect((await download(client, 'hello.txt')).toString()).toBe('hello world\n');
    const payload = Buffer.alloc(300_000, 7);
    await client.uploadFrom(Readable.from([payload]), 'up/deep/new.bin');
    expectSameBytes(await readFile(path.join(f.root, 'up/deep/new.bin')), payload);
    expect((await readdir(path.join(f.root, 'up/deep'))).filter((n) => n.startsWith('.'))).toEqual([]);
    client.close();
  });

  it('downloads over PASV with the advertised address', async () => {
    const client = await f.client();
    client.prepareTransfer = enterPassiveModeIPv4;
    expect(await download(client, 'sub/data.bin')).toEqual(Buffer.from([...Array(256).keys()]));
    const pasv = await client.send('PASV');
    expect(pasv.message).toMatch(/^227 Entering Passive Mode \(127,0,0,1,\d+,\d+\)/);
    client.close();
  });

  it('reports transfers', async () => {
    const names = f.events.map((e) => `${e.direction} ${e.path} ${e.ok} ${e.bytes}`);
    expect(names).toContain('download hello.txt true 12');
    expect(names).toContain('upload up/deep/new.bin true 300000');
  });

  it('keeps every path inside the root', async () => {
    const client = await f.client();
    await expect(client.cd('..')).rejects.toThrow(/550/);
    await expect(client.cd('../..')).rejects.toThrow(/550/);
    await expect(download(client, '../secret.txt')).rejects.toThrow(/55\d/);
    await expect(download(client, '/etc/passwd')).rejects.toThrow(/55\d/);
    await expect(download(client, 'escape.txt')).rejects.toThrow(/55\d/);
    await expect(download(client, 'escape-dir/secret.txt')).rejects.toThrow(/55\d/);
    await expect(download(client, '..\\secret.txt')).rejects.toThrow(/55\d/);
    await expect(client.uploadFrom(Readable.from(['x']), '../planted.txt')).rejects.toThrow(/55\d/);
    await expect(client.uploadFrom(Readable.from(['x']), 'escape-dir/planted.txt')).rejects.toThrow(/55\d/);
    expect(await download(client, 'inside-link.txt')).toEqual(Buffer.from('hello world\n'));
    await client.cd('sub');
    expect(await client.pwd()).toBe('/sub');
    expect(await download(client, '../hello.txt')).toEqual(Buffer.from('hello world\n'));
    expect(await download(client, '/hello.txt')).toEqual(Buffer.from('hello world\n'));
    await client.cd('..');
    expect(await client.pwd()).toBe('/');
    const names = (await client.list()).map((e) => e.name).sort();
    expect(names).toEqual(['hello.txt', 'inside-link.txt', 'sub', 'up']);
    const files = await readdir(f.dir);
    expect(files).not.toContain('planted.txt');
    expect(await readFile(path.join(f.dir, 'secret.txt'), 'utf8')).toBe(SECRET);
    client.close();
  });

  it('refuses wrong credentials', async () => {
    await expect(f.client({ password: 'wrong' })).rejects.toThrow(/530/);
    await expect(f.client({ user: 'anonymous', password: 'guest@' })).rejects.toThrow(/530/);
  });
});
