// What the peer sender needs for mutual TLS between members: the certificate it
// presents, and the CA every other member's certificate must be signed by.

/** PEM contents (not file names): the transport reads no files. */
export interface PeerTlsCredentials {
  /** This member's peer certificate, presented to every peer it connects to. */
  readonly cert: string | Buffer;
  /** The key of `cert`. */
  readonly key: string | Buffer;
  /** The CA that signs every member's peer certificate: the only one trusted (the system CAs are not). */
  readonly ca: string | Buffer;
}

/** The TLS part of undici's connect options for a peer; empty without peer TLS. */
export interface PeerConnectOptions {
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  readonly ca?: string | Buffer;
  readonly rejectUnauthorized?: boolean;
}

/**
 * undici connect options for https peer URLs. Host names are checked against
 * the certificate as usual (an IP in a URL must be an IP subjectAltName).
 */
export function peerConnectOptions(credentials: PeerTlsCredentials | undefined): PeerConnectOptions {
  if (credentials === undefined) return {};
  return { cert: credentials.cert, key: credentials.key, ca: credentials.ca, rejectUnauthorized: true };
}
