/**
 * Throw-away system users for real servers that log in local accounts (OpenSSH, vsftpd).
 * Needs root. Dispose to delete the user and its home folder.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestUser extends AsyncDisposable {
  readonly username: string;
  readonly password: string;
  /** Home folder, owned by the user, under a world-traversable temporary folder. */
  readonly home: string;
  readonly uid: number;
  readonly gid: number;
}

/** Creates a user `tbfs<hex>` with a random password, bash as shell and a fresh home. */
export async function createTestUser(): Promise<TestUser> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tbfs-user-'));
  await chmod(dir, 0o755);
  const username = `tbfs${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('base64url');
  const home = path.join(dir, 'home');
  let added = false;
  const remove = async () => {
    if (added) await run('userdel', ['-f', username]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await run('useradd', ['-M', '-d', home, '-s', '/bin/bash', username]);
    added = true;
    await mkdir(home);
    const { stdout } = await run('id', [username]);
    const uid = Number(/uid=(\d+)/.exec(stdout)![1]);
    const gid = Number(/gid=(\d+)/.exec(stdout)![1]);
    await chown(home, uid, gid);
    await new Promise<void>((resolve, reject) => {
      const child = execFile('chpasswd', (error) => (error ? reject(error) : resolve()));
      child.stdin!.end(`${username}:${password}\n`);
    });
    return { username, password, home, uid, gid, [Symbol.asyncDispose]: remove };
  } catch (error) {
    await remove();
    throw error;
  }
}
