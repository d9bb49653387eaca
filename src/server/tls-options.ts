// The TLS material of a member, read from the files its flags name and checked
// once at startup, so a wrong file is a clear startup error rather than a
// handshake failure later.

import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { InvalidArgumentError } from '../errors.js';
import type { ClientTlsConfig, PeerTlsConfig } from '../node/config.js';
import type { PeerTlsCredentials } from '../transport/tls-credentials.js';

/** What an https listener serves and whom it lets in. */
export interface ListenerTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Signs the certificates callers must present; undefined when none is asked for. */
  readonly ca: Buffer | undefined;
  /** Requests from a connection without a certificate signed by `ca` are refused with 401. */
  readonly requireCallerCertificate: boolean;
}

async function readPem(flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new InvalidArgumentError(`--${flag} ${path}: cannot read it (${reason})`);
  }
}

/** Throws a clear error unless cert and key are PEM and belong together. */
function checkIdentity(certFlag: string, keyFlag: string, cert: Buffer, key: Buffer): void {
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    throw new InvalidArgumentError(`--${certFlag} and --${keyFlag} are not a usable certificate and key: ${(error as Error).message}`);
  }
}

/** Throws a clear error unless the file holds at least one PEM certificate (TLS would silently ignore garbage). */
function checkCa(flag: string, ca: Buffer): void {
  try {
    new X509Certificate(ca);
  } catch (error) {
    throw new InvalidArgumentError(`--${flag}: no PEM certificate in it (${(error as Error).message})`);
  }
}

export async function loadClientListenerTls(config: ClientTlsConfig): Promise<ListenerTls> {
  const cert = await readPem('cert-file', config.certFile);
  const key = await readPem('key-file', config.keyFile);
  checkIdentity('cert-file', 'key-file', cert, key);
  let ca: Buffer | undefined;
  if (config.trustedCaFile !== undefined) {
    ca = await readPem('trusted-ca-file', config.trustedCaFile);
    checkCa('trusted-ca-file', ca);
  }
  return Object.freeze({ cert, key, ca, requireCallerCertificate: config.clientCertAuth });
}

/** Peer TLS is mutual: the same certificate is served by the listener and presented by the sender. */
export async function loadPeerTls(config: PeerTlsConfig): Promise<{ listener: ListenerTls; sender: PeerTlsCredentials }> {
  const cert = await readPem('peer-cert-file', config.certFile);
  const key = await readPem('peer-key-file', config.keyFile);
  checkIdentity('peer-cert-file', 'peer-key-file', cert, key);
  const ca = await readPem('peer-trusted-ca-file', config.trustedCaFile);
  checkCa('peer-trusted-ca-file', ca);
  return {
    listener: Object.freeze({ cert, key, ca, requireCallerCertificate: true }),
    sender: Object.freeze({ cert, key, ca }),
  };
}
