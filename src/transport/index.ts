export type {
  PeerStats,
  Transport,
  TransportCallbacks,
  TransportLogger,
  TransportReceiver,
  TransportStats,
} from './transport.js';
export { SILENT_LOGGER } from './transport.js';
export {
  InvalidPeerUrlError,
  MalformedMessageError,
  PEER_REFUSALS,
  PeerRequestTimeoutError,
  SnapshotTooLargeError,
  type PeerRefusal,
} from './errors.js';
export { WIRE_VERSION, decodeMessages, isPeerMessageType, encodeMessages, estimateMessageBytes, withoutSnapshotData } from './codec.js';
export * from './peer-protocol.js';
export { HttpTransport, type HttpTransportOptions } from './peer-sender.js';
export { peerRoutes, registerPeerRoutes, type PeerRoutesOptions } from './peer-routes.js';
export { MemoryNetwork, MemoryTransport, type DropFilter, type MemoryTransportOptions } from './memory-transport.js';
