/**
 * OpenSSH's own clients against the embedded SSH server: scp in legacy mode (-O, the rcp
 * protocol over exec) and in its default SFTP mode, and sftp, all with password authentication
 * and the host key pinned in known_hosts.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWith } from '../helpers/env.js';
import { SECRET } from '../helpers/ftp.js';
import { type SshFixture, sshFixture } from '../helpers/ssh.js';

const payload = Buffer.from(Array.from({ length: 900_001 }, (_, i) => (i * 37 + 11) & 255));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describeWith({ tools: ['sshpass', 'scp', 'sftp', 'ssh'] }, 'OpenSSH scp and sftp', () => {
  let f: SshFixture;
  let local: string;
  beforeAll(async () => {
    f = await sshFixture();
    local = path.join(f.dir, 'local');
    await mkdir(path.join(local, 'tree', 'inner'), { recursive: true });
    await writeFile(path.join(local, 'payload.bin'), payload);
    await writeFile(path.join(local, 'tree', 'a.txt'), 'a\n');
    await writeFile(path.join(local, 'tree', 'inner', 'b.bin'), payload.subarray(0, 1000));
  });
  afterAll(async () => {
    await f?.[Symbol.asyncDispose]();
  });

  it.each([
    ['legacy (-O)', ['-O']],
    ['SFTP', []],
  ])('scp %s uploads and downloads byte-exact', async (mode, flags) => {
    const name = mode.startsWith('legacy') ? 'legacy' : 'sftp';
    const up = await f.openssh('scp', [
      ...flags,
      path.join(local, 'payload.bin'),
      f.remote(`up/${name}.bin`),
    ]);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(sha(await readFile(path.join(f.root, 'up', `${name}.bin`)))).toBe(sha(payload));
    const back = path.join(f.dir, `back-${name}.bin`);
    const down = await f.openssh('scp', [...flags, f.remote(`up/${name}.bin`), back]);
    expect(down.code).toBe(0);
    expect(sha(await readFile(back))).toBe(sha(payload));
    // Replacing a larger file with a smaller one leaves exactly the smaller one (OpenSSH's scp
    // opens without truncating and truncates at the end).
    const small = await f.openssh('scp', [
      ...flags,
      path.join(local, 'tree', 'a.txt'),
      f.remote(`up/${name}.bin`),
    ]);
    expect(small.code).toBe(0);
    expect(await readFile(path.join(f.root, 'up', `${name}.bin`), 'utf8')).toBe('a\n');
    const hello = await f.openssh('scp', [
      ...flags,
      f.remote('/hello.txt'),
      path.join(f.dir, `hello-${name}.txt`),
    ]);
    expect(hello.code).toBe(0);
    expect(await readFile(path.join(f.dir, `hello-${name}.txt`), 'utf8')).toBe('hello world\n');
    const events = f.events
      .filter((e) => e.path === `up/${name}.bin`)
      .map((e) => [e.protocol, e.direction, e.ok, e.bytes]);
    const protocol = name === 'legacy' ? 'scp' : 'sftp';
    expect(events).toEqual([
      [protocol, 'upload', true, payload.length],
      [protocol, 'download', true, payload.length],
      [protocol, 'upload', true, 2],
    ]);
  });

  it.each([
    ['legacy (-O)', ['-O']],
    ['SFTP', []],
  ])('scp %s copies folders recursively, both ways', async (mode, flags) => {
    const name = mode.startsWith('legacy') ? 'legacy' : 'sftp';
    const up = await f.openssh('scp', [
      ...flags,
      '-r',
      '-p',
      path.join(local, 'tree'),
      f.remote(`rec-${name}`),
    ]);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(await readFile(path.join(f.root, `rec-${name}`, 'a.txt'), 'utf8')).toBe('a\n');
    expect(sha(await readFile(path.join(f.root, `rec-${name}`, 'inner', 'b.bin')))).toBe(
      sha(payload.subarray(0, 1000)),
    );
    const back = path.join(f.dir, `rec-back-${name}`);
    const down = await f.openssh('scp', [...flags, '-r', f.remote(`rec-${name}`), back]);
    expect(down.stderr).toBe('');
    expect(down.code).toBe(0);
    expect((await readdir(back, { recursive: true })).sort()).toEqual(['a.txt', 'inner', 'inner/b.bin']);
  });

  it.each([
    ['legacy (-O)', ['-O']],
    ['SFTP', []],
  ])('scp %s cannot leave the root', async (_mode, flags) => {
    for (const remote of [
      '../secret.txt',
      '/../secret.txt',
      'escape.txt',
      'escape-dir/secret.txt',
      'sub/../../secret.txt',
    ]) {
      const out = path.join(f.dir, 'stolen.txt');
      const r = await f.openssh('scp', [...flags, f.remote(remote), out]);
      expect(r.code, remote).not.toBe(0);
      await expect(readFile(out, 'utf8')).rejects.toThrow();
    }
    for (const remote of ['../planted.txt', 'escape-dir/planted.txt']) {
      const r = await f.openssh('scp', [...flags, path.join(local, 'tree', 'a.txt'), f.remote(remote)]);
      expect(r.code, remote).not.toBe(0);
    }
    expect(await readdir(f.dir)).not.toContain('planted.txt');
    expect(await readFile(path.join(f.dir, 'secret.txt'), 'utf8')).toBe(SECRET);
  });

  it('sftp puts, gets, lists, renames and removes; cd .. stops at the root', async () => {
    const batch = path.join(f.dir, 'batch.txt');
    await writeFile(
      batch,
      [
        `lcd ${local}`,
        'mkdir work',
        'cd work',
        'put payload.bin',
        'rename payload.bin moved.bin',
        `get moved.bin ${path.join(f.dir, 'sftp-back.bin')}`,
        'ls -l',
        'pwd',
        'cd ..',
        'pwd',
        '-cd ..',
        '-get ../secret.txt',
        'rm work/moved.bin',
        'rmdir work',
      ].join('\n'),
    );
    const r = await f.openssh('sftp', ['-b', batch, `${f.user}@${f.host}`]);
    expect(r.code).toBe(0);
    expect(sha(await readFile(path.join(f.dir, 'sftp-back.bin')))).toBe(sha(payload));
    expect(r.stdout).toMatch(/-rw-r--r-- .* moved\.bin/);
    expect(r.stdout).toContain('Remote working directory: /work');
    expect(r.stdout).toContain('Remote working directory: /');
    expect(r.stderr).toContain('Path refused (climbs above the root): "/.."');
    expect(await readdir(f.root)).not.toContain('work');
  });

  it('pins the host key: a known_hosts holding another key is refused', async () => {
    const wrong = path.join(f.dir, 'wrong_known_hosts');
    const other = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
    await writeFile(wrong, `[${f.host}]:${f.port} ${other}\n`);
    const r = await f.openssh('scp', [f.remote('hello.txt'), path.join(f.dir, 'x.txt')], {
      knownHosts: wrong,
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);
    // The pinned file holds both host keys: each one, offered alone, is accepted (the command is
    // then refused by our server, which shows that the connection got that far).
    for (const algorithm of ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256']) {
      const ok = await f.openssh('ssh', [
        '-n',
        '-o',
        `HostKeyAlgorithms=${algorithm}`,
        `${f.user}@${f.host}`,
        'true',
      ]);
      expect(ok.stderr, algorithm).toContain('only runs scp');
      expect(ok.code, algorithm).toBe(1);
    }
  });

  it('refuses a wrong password, a shell and other commands', async () => {
    const wrong = await f.openssh('scp', [f.remote('hello.txt'), path.join(f.dir, 'y.txt')], {
      password: 'wrong',
    });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/Permission denied/);
    const shell = await f.openssh('ssh', ['-T', `${f.user}@${f.host}`]);
    expect(shell.code).not.toBe(0);
    const command = await f.openssh('ssh', [`${f.user}@${f.host}`, 'cat /etc/passwd']);
    expect(command.code).toBe(1);
    expect(command.stdout).toBe('');
    expect(command.stderr).toContain('only runs scp');
    const forward = await f.openssh('ssh', [
      '-N',
      '-o',
      'ExitOnForwardFailure=yes',
      '-L',
      '0:127.0.0.1:9',
      `${f.user}@${f.host}`,
    ]);
    expect(forward.code).not.toBe(0);
  });
});
