import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileServer } from '../src/file-server.js';
import type { TransferEvent } from '../src/transfer.js';
import { expectSameBytes } from './helpers/bytes.js';
import { describeWith } from './helpers/env.js';
import { basicAuth, curl } from './helpers/http.js';
import { tmpDir } from './helpers/tmp.js';

const secret = 'TOP-SECRET-OUTSIDE-ROOT';

interface Fixture {
  dir: string;
  root: string;
  server: FileServer;
  base: string;
  auth: string;
  user: string;
  events: TransferEvent[];
}

async function fixture(
  options: Partial<ConstructorParameters<typeof FileServer>[0]> = {},
): Promise<Fixture & AsyncDisposable> {
  const tmp = await tmpDir();
  const root = path.join(tmp.path, 'root');
  await mkdir(path.join(root, 'sub'), { recursive: true });
  await writeFile(path.join(root, 'hello.txt'), 'hello world\n');
  await writeFile(path.join(root, 'sub', 'data.bin'), Buffer.from([...Array(256).keys()]));
  await writeFile(path.join(tmp.path, 'secret.txt'), secret);
  await symlink(path.join(tmp.path, 'secret.txt'), path.join(root, 'escape.txt'));
  await symlink(tmp.path, path.join(root, 'escape-dir'));
  await symlink('hello.txt', path.join(root, 'inside-link.txt'));
  const server = await FileServer.start({ protocol: 'http', root, address: '127.0.0.1', ...options });
  const events: TransferEvent[] = [];
  server.on('transfer', (e) => events.push(e));
  const { username = '', password = '' } = server.info;
  return {
    dir: tmp.path,
    root,
    server,
    base: server.url.slice(0, -1),
    auth: basicAuth(username, password),
    user: `${username}:${password}`,
    events,
    async [Symbol.asyncDispose]() {
      await server.stop();
      await tmp[Symbol.asyncDispose]();
    },
  };
}

describe('HTTP with fetch', () => {
  let f: Fixture & AsyncDisposable;
  beforeAll(async () => {
    f = await fixture();
  });
  afterAll(() => f[Symbol.asyncDispose]());

  it('GET serves the file with length, type, last-modified and validators', async () => {
    const res = await fetch(`${f.base}/hello.txt`, { headers: { authorization: f.auth } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello world\n');
    expect(res.headers.get('content-length')).toBe('12');
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    const mtime = (await stat(path.join(f.root, 'hello.txt'))).mtime;
    expect(res.headers.get('last-modified')).toBe(mtime.toUTCString());
    const etag = res.headers.get('etag')!;
    const again = await fetch(`${f.base}/hello.txt`, {
      headers: { authorization: f.auth, 'if-none-match': etag },
    });
    expect(again.status).toBe(304);
  });

  it('HEAD answers the headers without a body and without a transfer event', async () => {
    const before = f.events.length;
    const res = await fetch(`${f.base}/sub/data.bin`, { method: 'HEAD', headers: { authorization: f.auth } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('256');
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect((await res.arrayBuffer()).byteLength).toBe(0);
    expect(f.events.length).toBe(before);
  });

  it.each([
    ['bytes=0-9', 206, 0, 10, 'bytes 0-9/256'],
    ['bytes=250-', 206, 250, 6, 'bytes 250-255/256'],
    ['bytes=-4', 206, 252, 4, 'bytes 252-255/256'],
    ['bytes=10-5000', 206, 10, 246, 'bytes 10-255/256'],
  ])('Range %s', async (range, status, start, length, contentRange) => {
    const res = await fetch(`${f.base}/sub/data.bin`, { headers: { authorization: f.auth, range } });
    expect(res.status).toBe(status);
    expect(res.headers.get('content-range')).toBe(contentRange);
    const body = Buffer.from(await res.arrayBuffer());
    expect(body).toEqual(Buffer.from([...Array(length).keys()].map((i) => i + start)));
  });

  it('an unsatisfiable range is 416 with the size; a stale If-Range gets the whole file', async () => {
    const res = await fetch(`${f.base}/sub/data.bin`, {
      headers: { authorization: f.auth, range: 'bytes=300-' },
    });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe('bytes */256');
    const full = await fetch(`${f.base}/sub/data.bin`, {
      headers: { authorization: f.auth, range: 'bytes=0-1', 'if-range': 'W/"stale"' },
    });
    expect(full.status).toBe(200);
    expect((await full.arrayBuffer()).byteLength).toBe(256);
  });

  it.each(['GET', 'HEAD', 'PUT', 'POST', 'DELETE'])(
    '%s without or with wrong credentials is 401',
    async (method) => {
      const body = method === 'PUT' || method === 'POST' ? 'x' : undefined;
      for (const authorization of [
        undefined,
        basicAuth('nobody', 'wrong'),
        basicAuth(f.user.split(':')[0]!, 'wrong'),
      ]) {
        const res = await fetch(`${f.base}/hello.txt`, {
          method,
          ...(body === undefined ? {} : { body }),
          headers: authorization ? { authorization } : {},
        });
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
      }
      expect(await readFile(path.join(f.root, 'hello.txt'), 'utf8')).toBe('hello world\n');
    },
  );

  it('PUT creates parent folders, answers 201, then 200 when replacing', async () => {
    const put = (body: string) =>
      fetch(`${f.base}/new/deep/file.cfg`, { method: 'PUT', body, headers: { authorization: f.auth } });
    const created = await put('hostname R1\n');
    expect(created.status).toBe(201);
    expect(await created.json()).toEqual({ path: 'new/deep/file.cfg', size: 12, replaced: false });
    expect(await readFile(path.join(f.root, 'new/deep/file.cfg'), 'utf8')).toBe('hostname R1\n');
    const replaced = await put('hostname R2\n');
    expect(replaced.status).toBe(200);
    expect(await readFile(path.join(f.root, 'new/deep/file.cfg'), 'utf8')).toBe('hostname R2\n');
    const event = f.events.findLast((e) => e.direction === 'upload')!;
    expect(event).toMatchObject({ ok: true, bytes: 12, path: 'new/deep/file.cfg', protocol: 'http' });
    expect(event.peer.address).toBe('127.0.0.1');
  });

  it('lists folders as HTML and JSON without temporary upload files', async () => {
    await writeFile(path.join(f.root, 'sub', '.x.bin.abcdef.tbfs-part'), 'partial');
    const json = await fetch(`${f.base}/sub/?format=json`, { headers: { authorization: f.auth } });
    expect(await json.json()).toMatchObject({
      path: '/sub',
      entries: [{ name: 'data.bin', type: 'file', size: 256 }],
    });
    const viaAccept = await fetch(`${f.base}/sub/`, {
      headers: { authorization: f.auth, accept: 'application/json' },
    });
    expect(((await viaAccept.json()) as { entries: unknown[] }).entries).toHaveLength(1);
    const html = await (await fetch(`${f.base}/`, { headers: { authorization: f.auth } })).text();
    expect(html).toContain('<a href="hello.txt">hello.txt</a>');
    expect(html).toContain('<a href="sub/">sub/</a>');
    const redirect = await fetch(`${f.base}/sub`, { headers: { authorization: f.auth }, redirect: 'manual' });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe('/sub/');
  });

  it('answers unknown methods with 405 and a body', async () => {
    const res = await fetch(`${f.base}/hello.txt`, { method: 'DELETE', headers: { authorization: f.auth } });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD, PUT, POST');
    expect(await res.text()).toContain('405');
  });

  it('follows a symlink that stays inside the root', async () => {
    const res = await fetch(`${f.base}/inside-link.txt`, { headers: { authorization: f.auth } });
    expect(await res.text()).toBe('hello world\n');
  });
});

describeWith({ tools: ['curl'] }, 'HTTP with curl', () => {
  let f: Fixture & AsyncDisposable;
  beforeAll(async () => {
    f = await fixture();
  });
  afterAll(() => f[Symbol.asyncDispose]());

  it('downloads, with a range, and uploads with -T (100-continue) and -F (multipart)', async () => {
    const get = await curl(['-f', '-u', f.user, `${f.base}/sub/data.bin`]);
    expect(get.code).toBe(0);
    expect(get.stdout).toEqual(await readFile(path.join(f.root, 'sub/data.bin')));
    const ranged = await curl(['-f', '-u', f.user, '-r', '16-31', `${f.base}/sub/data.bin`]);
    expect([...ranged.stdout]).toEqual([...Array(16).keys()].map((i) => i + 16));

    const payload = randomBytes(3 << 20);
    await writeFile(path.join(f.dir, 'up.bin'), payload);
    const put = await curl([
      '-f',
      '-u',
      f.user,
      '-T',
      path.join(f.dir, 'up.bin'),
      `${f.base}/uploads/up.bin`,
    ]);
    expect(put.code).toBe(0);
    expectSameBytes(await readFile(path.join(f.root, 'uploads/up.bin')), payload);

    const form = await curl([
      '-f',
      '-u',
      f.user,
      '-F',
      `file=@${path.join(f.dir, 'up.bin')}`,
      `${f.base}/forms/core.bin`,
    ]);
    expect(form.code).toBe(0);
    expectSameBytes(await readFile(path.join(f.root, 'forms/core.bin')), payload);
  });

  it('multipart with several parts: URL name, then stem_N; a folder URL keeps part names', async () => {
    await writeFile(path.join(f.dir, 'a.txt'), 'A');
    await writeFile(path.join(f.dir, 'b.txt'), 'B');
    const files = ['-F', `x=@${path.join(f.dir, 'a.txt')}`, '-F', `y=@${path.join(f.dir, 'b.txt')}`];
    expect((await curl(['-f', '-u', f.user, ...files, `${f.base}/multi/show.tech`])).code).toBe(0);
    expect(await readFile(path.join(f.root, 'multi/show.tech'), 'utf8')).toBe('A');
    expect(await readFile(path.join(f.root, 'multi/show_1.tech'), 'utf8')).toBe('B');
    expect((await curl(['-f', '-u', f.user, ...files, `${f.base}/byname/`])).code).toBe(0);
    expect((await readdir(path.join(f.root, 'byname'))).sort()).toEqual(['a.txt', 'b.txt']);
  });

  it('a chunked upload from stdin lands whole', async () => {
    const payload = randomBytes(1 << 20);
    const res = await curl(['-f', '-u', f.user, '-T', '-', `${f.base}/chunked.bin`], { input: payload });
    expect(res.code).toBe(0);
    expectSameBytes(await readFile(path.join(f.root, 'chunked.bin')), payload);
  });

  it.each([
    ['/../secret.txt'],
    ['/%2e%2e/secret.txt'],
    ['/sub/%2e%2e/%2e%2e/secret.txt'],
    ['/..%2fsecret.txt'],
    ['/..%5csecret.txt'],
    ['/sub\\..\\..\\secret.txt'],
    ['//etc/passwd'],
    ['/escape.txt'],
    ['/escape-dir/secret.txt'],
  ])('refuses %s with 403/404 and never sends a byte of the file', async (urlPath) => {
    const res = await curl(['--path-as-is', '-u', f.user, '-w', '\n%{http_code}', `${f.base}${urlPath}`]);
    const text = res.stdout.toString();
    const status = Number(text.slice(text.lastIndexOf('\n') + 1));
    expect([403, 404]).toContain(status);
    expect(text).not.toContain(secret);
    expect(text).not.toContain('root:');
  });

  it('refuses uploads that escape the root', async () => {
    for (const urlPath of ['/../evil.txt', '/%2e%2e/evil.txt', '/escape-dir/evil.txt', '/..%5cevil.txt']) {
      const res = await curl(
        ['--path-as-is', '-u', f.user, '-T', '-', '-w', '%{http_code}', `${f.base}${urlPath}`],
        {
          input: Buffer.from('evil'),
        },
      );
      expect(res.stdout.toString()).toMatch(/40[34]$/);
    }
    expect((await readdir(f.dir)).sort()).not.toContain('evil.txt');
  });
});

describe('HTTP uploads that fail leave nothing behind', () => {
  it('an aborted upload leaves no file under the final name and no temporary file', async () => {
    await using f = await fixture();
    const { port } = new URL(f.server.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write(
      `PUT /aborted/core.bin HTTP/1.1\r\nhost: x\r\nauthorization: ${f.auth}\r\ncontent-length: 10000000\r\n\r\n`,
    );
    socket.write(Buffer.alloc(1 << 20));
    await expect.poll(() => f.server.activeTransfers).toBe(1);
    const done = f.server.waitForTransfer();
    socket.destroy();
    const event = await done;
    expect(event).toMatchObject({ ok: false, direction: 'upload', path: 'aborted/core.bin' });
    expect(await readdir(path.join(f.root, 'aborted'))).toEqual([]);
  });

  it('maxFileSize: a declared size is refused up front (413) and an undeclared one when it grows too big', async () => {
    await using f = await fixture({ maxFileSize: 1000 });
    const declared = await fetch(`${f.base}/big.bin`, {
      method: 'PUT',
      body: Buffer.alloc(2000),
      headers: { authorization: f.auth },
    });
    expect(declared.status).toBe(413);
    const streamed = await curl(['-u', f.user, '-T', '-', '-w', '%{http_code}', `${f.base}/big2.bin`], {
      input: Buffer.alloc(5000),
    });
    expect(streamed.stdout.toString()).toMatch(/413$/);
    const ok = await fetch(`${f.base}/small.bin`, {
      method: 'PUT',
      body: Buffer.alloc(1000),
      headers: { authorization: f.auth },
    });
    expect(ok.status).toBe(201);
    expect((await readdir(f.root)).filter((n) => n.startsWith('big') || n.includes('tbfs-part'))).toEqual([]);
  });

  it('readOnly refuses PUT and POST with 403 and a body', async () => {
    await using f = await fixture({ readOnly: true });
    const res = await fetch(`${f.base}/x.txt`, {
      method: 'PUT',
      body: 'x',
      headers: { authorization: f.auth },
    });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('read-only');
    expect(await readdir(f.root)).not.toContain('x.txt');
  });

  it('overwrite: false answers 409 and keeps the existing file', async () => {
    await using f = await fixture({ overwrite: false });
    const res = await fetch(`${f.base}/hello.txt`, {
      method: 'PUT',
      body: 'new',
      headers: { authorization: f.auth },
    });
    expect(res.status).toBe(409);
    expect(await readFile(path.join(f.root, 'hello.txt'), 'utf8')).toBe('hello world\n');
  });

  it('a multipart upload with one part too big stores none of its parts', async () => {
    await using f = await fixture({ maxFileSize: 100 });
    const form = new FormData();
    form.append('a', new Blob(['small']), 'a.txt');
    form.append('b', new Blob([Buffer.alloc(500)]), 'b.txt');
    const res = await fetch(`${f.base}/parts/`, {
      method: 'POST',
      body: form,
      headers: { authorization: f.auth },
    });
    expect(res.status).toBe(413);
    expect(await readdir(path.join(f.root, 'parts'))).toEqual([]);
  });
});

describe('HTTP options', () => {
  it('auth: false serves without credentials and publishes none', async () => {
    await using server = await FileServer.start({ protocol: 'http', auth: false, address: '127.0.0.1' });
    expect(server.info.username).toBeUndefined();
    expect(server.info.password).toBeUndefined();
    await writeFile(path.join(server.info.root, 'open.txt'), 'open');
    expect(await (await fetch(`${server.url}open.txt`)).text()).toBe('open');
  });

  it('uses the credentials given', async () => {
    await using server = await FileServer.start({
      protocol: 'http',
      username: 'lab',
      password: 'p@ss:word/ü',
      address: '127.0.0.1',
    });
    const res = await fetch(`${server.url}`, { headers: { authorization: basicAuth('lab', 'p@ss:word/ü') } });
    expect(res.status).toBe(200);
  });

  it('closes a connection that stays silent longer than idleTimeoutMs', async () => {
    await using server = await FileServer.start({
      protocol: 'http',
      address: '127.0.0.1',
      http: { idleTimeoutMs: 300 },
    });
    const socket = net.connect(server.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET / HTTP/1.1\r\n'); // and then nothing
    const t0 = performance.now();
    await once(socket, 'close');
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('serves IPv6 on ::1', async () => {
    await using server = await FileServer.start({ protocol: 'http', address: '::1', auth: false });
    expect(server.url).toBe(`http://[::1]:${server.port}/`);
    expect((await fetch(server.url)).status).toBe(200);
  });

  it('listings: false refuses folder listings', async () => {
    await using server = await FileServer.start({
      protocol: 'http',
      address: '127.0.0.1',
      auth: false,
      http: { listings: false },
    });
    expect((await fetch(server.url)).status).toBe(403);
  });
});

describeWith({ tools: ['curl', 'head'] }, 'HTTP 1 GiB upload', () => {
  it('streams a 1 GiB upload to disk with flat memory', async () => {
    await using f = await fixture();
    const size = 1 << 30;
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }, 50);
    try {
      // curl reads from a pipe, so the body is chunked and never exists whole anywhere.
      const child = spawn('sh', ['-c', `head -c ${size} /dev/zero | curl -sS -f -u "$AUTH" -T - "$URL"`], {
        env: { ...process.env, AUTH: f.user, URL: `${f.base}/huge.bin` },
        stdio: 'ignore',
      });
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
    } finally {
      clearInterval(sampler);
    }
    expect((await stat(path.join(f.root, 'huge.bin'))).size).toBe(size);
    expect(rssPeak - rssBefore).toBeLessThan(96 << 20);
  });
});
