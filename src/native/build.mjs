// Compiles the optional native datagram path (udp.c) into dist/native/udp.node. Runs at install
// and with `npm run build`. Without a C compiler, Node's headers or Linux it says so and exits 0:
// the TFTP engine then uses node:dgram alone. Node-API (and libuv's stable 1.x ABI, for the
// receive watcher) keep one binary good for every Node version from 20 on. The headers are the
// ones Node's installation ships (include/node: node_api.h and uv.h).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);
const output = path.join(here, '../../dist/native/udp.node');

function headers() {
  const include = path.join(path.dirname(process.execPath), '../include/node');
  const complete = ['node_api.h', 'uv.h'].every((file) => existsSync(path.join(include, file)));
  return complete ? include : undefined;
}

function build() {
  if (process.platform !== 'linux') return 'not Linux';
  const include = headers();
  if (!include) return "Node's headers (include/node with node_api.h and uv.h) not found";
  mkdirSync(path.dirname(output), { recursive: true });
  const compiler = process.env.CC || 'cc';
  const args = ['-O2', '-Wall', '-Wextra', '-shared', '-fPIC', '-DNODE_GYP_MODULE_NAME=tftp_udp'];
  try {
    execFileSync(compiler, [...args, `-I${include}`, '-o', output, path.join(here, 'udp.c')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (error) {
    return `${compiler} failed: ${error.stderr?.toString().trim() || error.message}`;
  }
  return undefined;
}

const problem = build();
if (problem) {
  console.warn(`testbed-fileserver: native datagram path not built (${problem}); TFTP uses node:dgram only`);
}
