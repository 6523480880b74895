/**
 * The servers the benchmarks compare, each in its own process on a loopback high port, pinned
 * to the server CPU, started in the foreground with a generated configuration and ended by PID:
 * ours (the CLI, `serve`), nginx, vsftpd, OpenSSH's sshd and tftpd-hpa.
 *
 * Every server serves `root`, accepts uploads, and logs in user `bench` (TFTP: no login). For
 * vsftpd the user is a throw-away system account (root needed); the others take the account
 * from their configuration.
 */
import { execFile, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createTlsIdentity } from '../../dist/backends/certificate.js';
import {
  accountCpu,
  freePort,
  freeUdpPort,
  has,
  isRoot,
  pinned,
  releaseCpu,
  SERVER_CPU,
  spawnUntilListening,
  stopProcess,
  tftpAnswers,
} from './util.js';

const run = promisify(execFile);
const cli = path.join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
export const USER = 'bench';
export const PASSWORD = 'bench-Pw-2718';

/** Which peer serves each protocol, when installed. */
export const PEERS = {
  http: { name: 'nginx', available: () => has('nginx') },
  https: { name: 'nginx', available: () => has('nginx') },
  ftp: { name: 'vsftpd', available: () => has('/usr/sbin/vsftpd') && isRoot },
  sftp: { name: 'OpenSSH sshd', available: () => has('/usr/sbin/sshd') && has('ssh-keygen') && isRoot },
  tftp: { name: 'tftpd-hpa', available: () => has('in.tftpd') },
};

/**
 * A running server: `port`, `pid`, `readyMs` (spawn until the port answers), and `stop()`,
 * which resolves with the milliseconds from SIGTERM to exit. Its CPU time is accounted from
 * here on (see accountCpu).
 */
export async function serverHandle(child, port, readyMs, cleanup = async () => {}) {
  await accountCpu(child.pid);
  return {
    port,
    pid: child.pid,
    readyMs,
    async stop() {
      const ms = await stopProcess(child);
      await releaseCpu(child.pid);
      await cleanup();
      return ms;
    },
  };
}

/** Ours: the CLI's `serve`, on a port chosen in advance so that readiness is probed like the peers'. */
export async function startOurs(protocol, root) {
  const tftp = protocol === 'tftp';
  const port = tftp ? await freeUdpPort() : await freePort();
  const args = [
    'serve',
    protocol,
    root,
    '--address',
    '127.0.0.1',
    '--port',
    String(port),
    '--writable',
    '--os',
    '',
  ];
  if (!tftp) args.push('--user', USER, '--password', PASSWORD);
  const [command, argv] = pinned(SERVER_CPU, process.execPath, [cli, ...args]);
  const { child, readyMs } = await spawnUntilListening(command, argv, {
    port,
    ...(tftp ? { probe: tftpAnswers } : {}),
  });
  return serverHandle(child, port, readyMs, async () => {});
}

/**
 * nginx with a generated configuration: one worker, Basic auth, PUT through the DAV module;
 * with `tls`, HTTPS with the kind of certificate ours makes (ECDSA P-256, made the same way).
 */
export async function startNginx(root, { tls = false } = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tbfs-bench-nginx-'));
  const port = await freePort();
  await writeFile(path.join(dir, 'htpasswd'), `${USER}:{PLAIN}${PASSWORD}\n`);
  if (tls) {
    const identity = await createTlsIdentity(['127.0.0.1']);
    await writeFile(path.join(dir, 'cert.pem'), identity.cert);
    await writeFile(path.join(dir, 'key.pem'), identity.key, { mode: 0o600 });
  }
  const ssl = tls
    ? ` ssl;\n    ssl_certificate ${dir}/cert.pem;\n    ssl_certificate_key ${dir}/key.pem`
    : '';
  const temp = (name) => `${name}_temp_path ${path.join(dir, name)};`;
  await writeFile(
    path.join(dir, 'nginx.conf'),
    `${isRoot ? 'user root;\n' : ''}worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  ${temp('client_body')} ${temp('proxy')} ${temp('fastcgi')} ${temp('uwsgi')} ${temp('scgi')}
  server {
    listen 127.0.0.1:${port}${ssl};
    root ${root};
    auth_basic bench;
    auth_basic_user_file ${dir}/htpasswd;
    location / { dav_methods PUT; create_full_put_path on; client_max_body_size 0; }
  }
}
`,
  );
  const [command, argv] = pinned(SERVER_CPU, 'nginx', [
    '-p',
    dir,
    '-c',
    path.join(dir, 'nginx.conf'),
    '-e',
    path.join(dir, 'error.log'),
  ]);
  const { child, readyMs } = await spawnUntilListening(command, argv, { port });
  return serverHandle(child, port, readyMs, () => rm(dir, { recursive: true, force: true }));
}

/** A throw-away system account for vsftpd (root only); dispose removes it. */
async function systemUser(home) {
  const name = `tbfsb${Math.random().toString(16).slice(2, 8)}`;
  await run('useradd', ['-M', '-d', home, '-s', '/bin/bash', name]);
  const child = execFile('chpasswd');
  child.stdin.end(`${name}:${PASSWORD}\n`);
  await once(child, 'exit');
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }));
  return { name, uid, remove: () => run('userdel', ['-f', name]).catch(() => {}) };
}

/** vsftpd in the foreground with a generated configuration and a throw-away account whose home is `root`. */
export async function startVsftpd(root) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tbfs-bench-vsftpd-'));
  const user = await systemUser(root);
  await run('chown', ['-R', `${user.uid}`, root]);
  const port = await freePort();
  await mkdir('/var/run/vsftpd/empty', { recursive: true });
  const config = path.join(dir, 'vsftpd.conf');
  await writeFile(
    config,
    [
      'listen=YES',
      'listen_ipv6=NO',
      'listen_address=127.0.0.1',
      `listen_port=${port}`,
      'background=NO',
      'anonymous_enable=NO',
      'local_enable=YES',
      'write_enable=YES',
      'local_umask=022',
      'pasv_enable=YES',
      'seccomp_sandbox=NO',
      'secure_chroot_dir=/var/run/vsftpd/empty',
      'pam_service_name=vsftpd',
      'xferlog_enable=NO',
      'userlist_enable=NO',
      '',
    ].join('\n'),
  );
  const [command, argv] = pinned(SERVER_CPU, '/usr/sbin/vsftpd', [config]);
  const { child, readyMs } = await spawnUntilListening(command, argv, { port });
  return {
    ...(await serverHandle(child, port, readyMs, async () => {
      await user.remove();
      await rm(dir, { recursive: true, force: true });
    })),
    username: user.name,
  };
}

/**
 * OpenSSH's sshd in the foreground (-D) with its own host keys, password login and internal sftp.
 * It serves accounts' homes, not a folder: only its start, stop and memory are compared.
 */
export async function startSshd(_root) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tbfs-bench-sshd-'));
  const port = await freePort();
  const keys = [];
  for (const type of ['ed25519', 'rsa']) {
    const key = path.join(dir, `host_${type}`);
    await run('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', key]);
    keys.push(key);
  }
  await mkdir('/run/sshd', { recursive: true });
  const config = path.join(dir, 'sshd_config');
  await writeFile(
    config,
    [
      'ListenAddress 127.0.0.1',
      `Port ${port}`,
      ...keys.map((k) => `HostKey ${k}`),
      `PidFile ${dir}/sshd.pid`,
      'PasswordAuthentication yes',
      'PermitRootLogin yes',
      'UsePAM no',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
  const [command, argv] = pinned(SERVER_CPU, '/usr/sbin/sshd', ['-D', '-e', '-f', config]);
  const { child, readyMs } = await spawnUntilListening(command, argv, { port });
  return serverHandle(child, port, readyMs, () => rm(dir, { recursive: true, force: true }));
}

/** tftpd-hpa in the foreground (-L), uploads allowed (-c). */
export async function startTftpdHpa(root) {
  const port = await freeUdpPort();
  const user = os.userInfo().username;
  const [command, argv] = pinned(SERVER_CPU, 'in.tftpd', [
    '-L',
    '-c',
    '-u',
    user,
    '-s',
    root,
    '-a',
    `127.0.0.1:${port}`,
  ]);
  const { child, readyMs } = await spawnUntilListening(command, argv, { port, probe: tftpAnswers });
  return serverHandle(child, port, readyMs, async () => {});
}

/** atftpd (unpacked beside tftpd-hpa, see machine notes) in the foreground, 1000 threads. */
export const ATFTPD = process.env.ATFTPD ?? '/opt/atftpd/usr/sbin/atftpd';

export async function startAtftpd(root) {
  const port = await freeUdpPort();
  const user = os.userInfo().username;
  const group = execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim();
  const args = [
    '--daemon',
    '--no-fork',
    '--maxthread',
    '1000',
    '--port',
    String(port),
    '--bind-address',
    '127.0.0.1',
  ];
  args.push('--user', `${user}.${group}`, '--logfile', '/dev/null', root);
  const [command, argv] = pinned(SERVER_CPU, ATFTPD, args);
  const { child, readyMs } = await spawnUntilListening(command, argv, { port, probe: tftpAnswers });
  return serverHandle(child, port, readyMs, async () => {});
}

/** The peer server of `protocol`. */
export function startPeer(protocol, root) {
  if (protocol === 'https') return startNginx(root, { tls: true });
  return { http: startNginx, ftp: startVsftpd, sftp: startSshd, tftp: startTftpdHpa }[protocol](root);
}
