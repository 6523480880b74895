/**
 * Host-side copy() for every protocol, both directions, against our servers and against real
 * servers written by others (vsftpd, OpenSSH, tftpd-hpa): byte-exact, progress, verification,
 * cancellation without partial files, and the errors a user meets.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CopyProgress, copy } from '../../src/copy/copy.js';
import { FileServer } from '../../src/file-server.js';
import { Testbed } from '../../src/testbed/testbed.js';
import { describeWith } from '../helpers/env.js';
import { type Sshd, startSshd } from '../helpers/sshd.js';
import { startTftpd, type Tftpd } from '../helpers/tftpd.js';
import { tmpDir } from '../helpers/tmp.js';
import { startVsftpd, type Vsftpd } from '../helpers/vsftpd.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

interface Peer {
  /** Test name. */
  readonly name: string;
  /** `proto://server` prefix. */
  readonly ref: string;
  /** Where the peer keeps its files on this host. */
  root(): string;
  /** Folders in paths work (scp cannot create them, tftpd-hpa has none). */
  readonly folders: boolean;
  /** The peer or our client removes what a cancelled upload left (TFTP has no delete). */
  readonly cleanUpload: boolean;
}

describeWith(
  { tools: ['sshd', 'ssh-keygen', 'useradd', 'vsftpd', 'in.tftpd'], root: true },
  'copy() on this host',
  () => {
    let work: Awaited<ReturnType<typeof tmpDir>>;
    let ourRoot: Awaited<ReturnType<typeof tmpDir>>;
    let tftpRoot: Awaited<ReturnType<typeof tmpDir>>;
    let testbed: Testbed;
    let sshd: Sshd;
    let vsftpd: Vsftpd;
    let tftpd: Tftpd;
    const servers: FileServer[] = [];
    let small: Buffer;
    let smallPath: string;
    let big: Buffer;
    let bigPath: string;

    beforeAll(async () => {
      work = await tmpDir();
      ourRoot = await tmpDir();
      tftpRoot = await tmpDir();
      sshd = await startSshd();
      vsftpd = await startVsftpd();
      tftpd = await startTftpd(tftpRoot.path);
      testbed = new Testbed({
        servers: {
          openssh: {
            protocol: 'scp',
            address: sshd.address,
            port: sshd.port,
            username: sshd.username,
            password: sshd.password,
            hostKeyFingerprint: sshd.fingerprint,
          },
          vsftpd: {
            protocol: 'ftp',
            address: vsftpd.address,
            port: vsftpd.port,
            username: vsftpd.user.username,
            password: vsftpd.user.password,
          },
          tftpd: { protocol: 'tftp', address: tftpd.address, port: tftpd.port },
        },
      });
      for (const protocol of ['http', 'ftp', 'tftp', 'sftp'] as const) {
        servers.push(
          await FileServer.start({
            protocol,
            name: `our-${protocol}`,
            testbed,
            root: ourRoot.path,
            address: '127.0.0.1',
            // A client that aborts before the server's first packet cannot tell the session:
            // it gives up (and drops the partial upload) after its retries, kept short here.
            tftp: { retries: 2, maxTimeoutMs: 500 },
          }),
        );
      }
      small = randomBytes(1_000_000 + 17);
      smallPath = path.join(work.path, 'small.bin');
      await writeFile(smallPath, small);
      big = randomBytes(24 << 20);
      bigPath = path.join(work.path, 'big.bin');
      await writeFile(bigPath, big);
    });

    afterAll(async () => {
      for (const s of servers) await s.stop();
      await tftpd?.[Symbol.asyncDispose]();
      await vsftpd?.[Symbol.asyncDispose]();
      await sshd?.[Symbol.asyncDispose]();
      for (const d of [work, ourRoot, tftpRoot]) await d?.[Symbol.asyncDispose]();
    });

    const peers: Peer[] = [
      {
        name: 'http, our server',
        ref: 'http://our-http',
        root: () => ourRoot.path,
        folders: true,
        cleanUpload: true,
      },
      {
        name: 'ftp, our server',
        ref: 'ftp://our-ftp',
        root: () => ourRoot.path,
        folders: true,
        cleanUpload: true,
      },
      {
        name: 'tftp, our server',
        ref: 'tftp://our-tftp',
        root: () => ourRoot.path,
        folders: true,
        cleanUpload: true,
      },
      {
        name: 'sftp, our server',
        ref: 'sftp://our-sftp',
        root: () => ourRoot.path,
        folders: true,
        cleanUpload: true,
      },
      {
        name: 'scp, our server',
        ref: 'scp://our-sftp',
        root: () => ourRoot.path,
        folders: false,
        cleanUpload: true,
      },
      {
        name: 'ftp, vsftpd',
        ref: 'ftp://vsftpd',
        root: () => vsftpd.user.home,
        folders: true,
        cleanUpload: true,
      },
      {
        name: 'sftp, OpenSSH',
        ref: 'sftp://openssh',
        root: () => sshd.home,
        folders: true,
        cleanUpload: true,
      },
      {
        name: 'scp, OpenSSH',
        ref: 'scp://openssh',
        root: () => sshd.home,
        folders: false,
        cleanUpload: true,
      },
      {
        name: 'tftp, tftpd-hpa',
        ref: 'tftp://tftpd',
        root: () => tftpRoot.path,
        folders: false,
        cleanUpload: false,
      },
    ];

    for (const peer of peers) {
      describe(peer.name, () => {
        it('uploads and downloads byte-exact, with progress and verification', async () => {
          const remote = peer.folders
            ? `${peer.ref}/up/${peer.ref.split(':')[0]}.bin`
            : `${peer.ref}/up-${peer.name.replace(/\W+/g, '-')}.bin`;
          const progress: CopyProgress[] = [];
          const up = await copy(testbed, smallPath, remote, {
            verify: true,
            onProgress: (p) => progress.push(p),
          });
          expect(up).toMatchObject({ bytes: small.length, sha256: sha256(small), verified: true });
          const onServer = path.join(peer.root(), remote.slice(peer.ref.length + 1));
          expect((await readFile(onServer)).equals(small)).toBe(true);
          expect(progress.at(-1)).toEqual({ bytes: small.length, total: small.length });
          expect(progress.map((p) => p.bytes)).toEqual(
            [...progress.map((p) => p.bytes)].sort((a, b) => a - b),
          );

          await using out = await tmpDir();
          const local = path.join(out.path, 'nested', 'back.bin');
          const down = await copy(testbed, remote, local, {
            verify: { sha256: sha256(small), size: small.length },
          });
          expect(down).toMatchObject({ bytes: small.length, verified: true });
          expect((await readFile(local)).equals(small)).toBe(true);
        });

        it('a cancelled download leaves no file, partial or temporary', async () => {
          const name = `${peer.name.replace(/\W+/g, '-')}-big.bin`;
          await writeFile(path.join(peer.root(), name), big);
          await using out = await tmpDir();
          const controller = new AbortController();
          const error = await copy(testbed, `${peer.ref}/${name}`, path.join(out.path, 'big.bin'), {
            signal: controller.signal,
            onProgress: (p) => {
              if (p.bytes > 0) controller.abort();
            },
          }).catch((e: unknown) => e);
          expect(error).toMatchObject({ name: 'AbortError' });
          expect(await readdir(out.path)).toEqual([]);
        });

        if (peer.cleanUpload)
          it('a cancelled upload leaves no file on the server', async () => {
            const name = `cancel-${peer.name.replace(/\W+/g, '-')}.bin`;
            const controller = new AbortController();
            let moved = 0;
            const error = await copy(testbed, bigPath, `${peer.ref}/${name}`, {
              signal: controller.signal,
              onProgress: (p) => {
                moved = p.bytes;
                controller.abort();
              },
            }).catch((e: unknown) => e);
            expect(error).toMatchObject({ name: 'AbortError' });
            expect(moved).toBeLessThan(big.length);
            // The request may still be on its way to the server (TFTP: a datagram not read yet),
            // and servers drop the temporary file when the upload breaks off: give them a moment.
            await new Promise((r) => setTimeout(r, 300));
            for (let i = 0; i < 50 && (await readdir(peer.root())).some((f) => f.includes(name)); i++) {
              await new Promise((r) => setTimeout(r, 100));
            }
            expect((await readdir(peer.root())).filter((f) => f.includes(name))).toEqual([]);
          });

        it('a missing remote file is ERR_NOT_FOUND and leaves nothing locally', async () => {
          await using out = await tmpDir();
          const error = await copy(
            testbed,
            `${peer.ref}/no-such-file.bin`,
            path.join(out.path, 'x.bin'),
          ).catch((e: unknown) => e);
          expect(error).toMatchObject({ code: 'ERR_NOT_FOUND' });
          expect(await readdir(out.path)).toEqual([]);
        });
      });
    }

    it('streams from one server to another without a local file', async () => {
      await writeFile(path.join(vsftpd.user.home, 'relay.bin'), small);
      const result = await copy(testbed, 'ftp://vsftpd/relay.bin', 'http://our-http/relayed/relay.bin', {
        verify: true,
      });
      expect(result).toMatchObject({ bytes: small.length, verified: true });
      expect((await readFile(path.join(ourRoot.path, 'relayed', 'relay.bin'))).equals(small)).toBe(true);
      // scp needs the size up front: the source's announced size serves.
      await copy(testbed, 'http://our-http/relayed/relay.bin', 'scp://openssh/relayed.bin');
      expect((await stat(path.join(sshd.home, 'relayed.bin'))).size).toBe(small.length);
    });

    it('works over IPv6 (::1) for every protocol', async () => {
      const v6 = new Testbed();
      await using out = await tmpDir();
      for (const protocol of ['http', 'ftp', 'tftp', 'sftp'] as const) {
        await using server = await FileServer.start({ protocol, name: 'v6', testbed: v6, address: '::1' });
        expect(v6.servers.get('v6')?.url).toMatch(/^\w+:\/\/\[::1\]:\d+\/$/);
        await copy(v6, smallPath, `${protocol}://v6/six.bin`, { verify: true });
        expect((await readFile(path.join(server.info.root, 'six.bin'))).equals(small)).toBe(true);
        await copy(v6, `${protocol}://v6/six.bin`, path.join(out.path, `${protocol}.bin`), { verify: true });
      }
    });

    it('a destination ending in / or an existing folder keeps the source name', async () => {
      await using out = await tmpDir();
      await mkdir(path.join(out.path, 'existing'));
      await copy(testbed, smallPath, 'http://our-http/drop/');
      expect((await readFile(path.join(ourRoot.path, 'drop', 'small.bin'))).equals(small)).toBe(true);
      await copy(testbed, 'http://our-http/drop/small.bin', `${out.path}/new/`);
      await copy(testbed, 'http://our-http/drop/small.bin', path.join(out.path, 'existing'));
      await copy(testbed, 'http://our-http/drop/small.bin', 'ftp://vsftpd/');
      expect((await readFile(path.join(out.path, 'new', 'small.bin'))).equals(small)).toBe(true);
      expect((await readFile(path.join(out.path, 'existing', 'small.bin'))).equals(small)).toBe(true);
      expect((await readFile(path.join(vsftpd.user.home, 'small.bin'))).equals(small)).toBe(true);
      const odd = path.join(out.path, 'a%20b c.bin');
      await writeFile(odd, 'odd');
      await copy(testbed, odd, 'http://our-http/odd/');
      expect(await readFile(path.join(ourRoot.path, 'odd', 'a%20b c.bin'), 'utf8')).toBe('odd');
      await copy(testbed, 'http://our-http/odd/a%2520b%20c.bin', `${out.path}/back/`);
      expect(await readFile(path.join(out.path, 'back', 'a%20b c.bin'), 'utf8')).toBe('odd');
    });

    it('an expected SHA-256 that does not match fails with ERR_VERIFY_FAILED and keeps nothing', async () => {
      await using out = await tmpDir();
      const local = path.join(out.path, 'wrong.bin');
      const error = await copy(testbed, smallPath, local, { verify: { sha256: '0'.repeat(64) } }).catch(
        (e: unknown) => e,
      );
      expect(error).toMatchObject({
        code: 'ERR_VERIFY_FAILED',
        details: { actual: { sha256: sha256(small) } },
      });
      expect(await readdir(out.path)).toEqual([]);
      const remote = await copy(testbed, smallPath, 'ftp://vsftpd/wrong.bin', { verify: { size: 5 } }).catch(
        (e: unknown) => e,
      );
      expect(remote).toMatchObject({ code: 'ERR_VERIFY_FAILED' });
      expect((await readdir(vsftpd.user.home)).includes('wrong.bin')).toBe(false);
    });

    it('overwrite: false keeps an existing local file', async () => {
      await using out = await tmpDir();
      const local = path.join(out.path, 'keep.bin');
      await writeFile(local, 'keep');
      const error = await copy(testbed, smallPath, local, { overwrite: false }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_FILE_EXISTS' });
      expect(await readFile(local, 'utf8')).toBe('keep');
    });

    it('names what is wrong: unknown server, protocol mismatch, missing credentials, missing local file', async () => {
      await using out = await tmpDir();
      const to = path.join(out.path, 'x');
      await expect(copy(testbed, 'ftp://nope/x', to)).rejects.toMatchObject({
        code: 'ERR_SERVER_NOT_FOUND',
        details: { name: 'nope' },
      });
      await expect(copy(testbed, 'http://vsftpd/x', to)).rejects.toMatchObject({
        code: 'ERR_PROTOCOL_MISMATCH',
      });
      testbed.servers.set('anon', { protocol: 'ftp', address: '127.0.0.1', port: vsftpd.port });
      await expect(copy(testbed, 'ftp://anon/x', to)).rejects.toMatchObject({
        code: 'ERR_CREDENTIALS_MISSING',
        details: { missing: ['username', 'password'] },
      });
      testbed.servers.delete('anon');
      await expect(copy(testbed, path.join(out.path, 'absent.bin'), 'ftp://vsftpd/x')).rejects.toMatchObject({
        code: 'ERR_NOT_FOUND',
      });
      await expect(copy(testbed, 'ftp://vsftpd/', to)).rejects.toMatchObject({
        code: 'ERR_INVALID_OPTIONS',
        message: expect.stringContaining('names a folder'),
      });
      await mkdir(path.join(out.path, 'dir'));
      await expect(copy(testbed, path.join(out.path, 'dir'), 'ftp://vsftpd/x')).rejects.toMatchObject({
        code: 'ERR_NOT_FOUND',
        message: expect.stringContaining('Not a file'),
      });
    });

    it('a refused login is ERR_TRANSFER_FAILED that says so, without the password', async () => {
      testbed.servers.set('badpw', { ...testbed.servers.get('vsftpd'), password: 'Bad-Password-7' });
      testbed.servers.set('badssh', { ...testbed.servers.get('openssh'), password: 'Bad-Password-7' });
      try {
        for (const ref of ['ftp://badpw/x.bin', 'sftp://badssh/x.bin', 'scp://badssh/x.bin']) {
          const error = await copy(testbed, smallPath, ref).catch((e: unknown) => e);
          expect(error, ref).toMatchObject({ code: 'ERR_TRANSFER_FAILED' });
          expect((error as Error).message, ref).toMatch(/login refused|authentication failed/);
          expect(JSON.stringify(error) + (error as Error).message).not.toContain('Bad-Password-7');
        }
      } finally {
        testbed.servers.delete('badpw');
        testbed.servers.delete('badssh');
      }
    });
  },
);
