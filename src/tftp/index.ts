/**
 * The in-house TFTP engine: server, client, handler seam, codec and statistics.
 * @module
 */
export {
  type TftpCallOptions,
  TftpClient,
  type TftpClientEvents,
  type TftpClientOptions,
  type TftpProgress,
  type TftpTransferSettings,
} from './client.js';
export {
  type AckPacket,
  type DataPacket,
  decodePacket,
  type ErrorPacket,
  encodePacket,
  type OackPacket,
  OPCODE,
  type RequestPacket,
  type TftpOptionList,
  type TftpPacket,
} from './codec.js';
export {
  TFTP_ERROR,
  TftpError,
  type TftpErrorCode,
  type TftpErrorNumber,
  type TftpErrorOptions,
} from './errors.js';
export {
  type RootHandlerOptions,
  rootHandler,
  type TftpHandler,
  type TftpRandomAccess,
  type TftpReadContent,
  type TftpRequest,
} from './handler.js';
export { KNOWN_OPTIONS, type KnownOption } from './options.js';
export { TftpServer, type TftpServerEvents, type TftpServerOptions } from './server.js';
export type { TftpOutcome, TftpServerCounters, TftpTransferInfo, TftpTransferStats } from './stats.js';
export type { Endpoint, TftpPacketEvent, TftpPacketHook } from './transport.js';
