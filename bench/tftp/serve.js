/**
 * Our TFTP server in its own process for the benchmark: `node serve.js ROOT [ADDRESS]`.
 * Prints `{"port":N}` once listening; stops on SIGTERM. Uploads go nowhere (a discarding
 * Writable) so that disk speed stays out of the figures; downloads come from ROOT.
 */
import { Writable } from 'node:stream';
import { rootHandler, TftpServer } from '../../dist/index.js';

const [root, address = '127.0.0.1'] = process.argv.slice(2);
const files = rootHandler(root);
const server = new TftpServer({
  address,
  root,
  maxSessions: 4096,
  maxSessionsPerPeer: 4096,
  handler: {
    openRead: files.openRead,
    openWrite: () => new Writable({ write: (_chunk, _encoding, callback) => callback() }),
  },
});
const { port } = await server.start();
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.on('SIGTERM', () => {
  server.stop({ graceMs: 0 }).then(() => process.exit(0));
});
