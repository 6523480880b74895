/**
 * Our TFTP server in its own process for the benchmark: `node serve.js ROOT [ADDRESS] [write]`.
 * Prints `{"port":N}` once listening; stops on SIGTERM. Downloads come from ROOT. Uploads go
 * nowhere (a discarding Writable), or with `write` into ROOT the way FileServer writes them
 * (temporary file, renamed when complete), as the peers they are compared with do.
 */
import { Writable } from 'node:stream';
import { rootHandler, TftpServer } from '../../dist/index.js';

const [root, address = '127.0.0.1', write] = process.argv.slice(2);
const files = rootHandler(root);
const discard = () => new Writable({ write: (_chunk, _encoding, callback) => callback() });
const server = new TftpServer({
  address,
  root,
  maxSessions: 4096,
  maxSessionsPerPeer: 4096,
  handler: {
    openRead: files.openRead,
    openWrite: write === 'write' ? files.openWrite : discard,
  },
});
const { port } = await server.start();
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.on('SIGTERM', () => {
  server.stop({ graceMs: 0 }).then(() => process.exit(0));
});
