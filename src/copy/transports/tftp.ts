/**
 * TFTP on our own client: waiting for src/tftp's TftpClient.
 * @internal
 * @module
 */
import { FileServerError } from '../../errors.js';
import type { Transport } from './types.js';

/** @internal */
export const tftpTransport: Transport = {
  async download() {
    throw new FileServerError('ERR_UNSUPPORTED_PROTOCOL', 'The TFTP client is not built yet');
  },
  async upload() {
    throw new FileServerError('ERR_UNSUPPORTED_PROTOCOL', 'The TFTP client is not built yet');
  },
};
