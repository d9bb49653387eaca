// https listeners in front of a fastify app. fastify takes its TLS options only
// when it is built, and the client API app is built elsewhere (client-api.ts)
// without them, so a member serving TLS binds its own https servers and hands
// every request to the app's router (fastify.routing, the handler fastify's own
// server uses). Callers who must present a certificate (--client-cert-auth, and
// always between members) are checked here, before any route runs.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { RateLimiter, type TransportLogger } from '../transport/transport.js';
import type { ListenerTls } from './tls-options.js';

export interface ListenOptions {
  /** Which listener, for log lines and the refusal message. */
  readonly kind: 'client' | 'peer';
  readonly logger: Pick<TransportLogger, 'warn'>;
  /** Refusals and failed handshakes are logged at most once per this interval (the rest are counted). Default 1000. */
  readonly logIntervalMs?: number;
}

/** The part of a fastify app this file uses (any logger type). */
export interface RoutableApp {
  /** The app's own server (the plain-HTTP listener). */
  readonly server: IdleClosable;
  listen(options: { host: string; port: number }): PromiseLike<unknown>;
  ready(): PromiseLike<unknown>;
  close(): PromiseLike<unknown>;
  routing(request: IncomingMessage, response: ServerResponse): void;
}

/** What a listener holds open: its servers and the app. */
export interface Listening {
  /** Stops accepting, closes the app, then drops the connections still open. */
  close(): PromiseLike<unknown>;
}

const HINTS = {
  client: 'a client certificate signed by the trusted CA (--trusted-ca-file) is required',
  peer: 'a peer certificate signed by --peer-trusted-ca-file is required',
} as const;

/** Listens on every URL: plain HTTP through the app itself, https through servers of our own with `tls`. */
export async function listenAll(app: RoutableApp, urls: readonly URL[], tls: ListenerTls | undefined, options: ListenOptions): Promise<Listening> {
  if (tls === undefined) {
    for (const url of urls) await app.listen({ host: url.hostname, port: Number(url.port) });
    return { close: () => closeSweepingIdle(() => app.close(), [app.server]) };
  }
  await app.ready();
  const servers: Server[] = [];
  const listening: Listening = { close: () => closeAll(app, servers) };
  try {
    for (const url of urls) servers.push(await listenTls(app, url, tls, options));
  } catch (error) {
    await listening.close();
    throw error;
  }
  return listening;
}

/** Whether a connection's caller proved who it is; judged once per connection (the TLS session never changes). */
interface Verdict {
  /** Why the caller is refused; undefined when its certificate is good. */
  readonly refusedBecause: string | undefined;
  /** The certificate's common name, for the log. */
  readonly subject: string | undefined;
}

function judgeCaller(socket: TLSSocket): Verdict {
  const certificate = socket.getPeerCertificate();
  const presented = certificate !== null && Object.keys(certificate).length > 0;
  // `authorized` alone is not enough: node counts a resumed TLS 1.3 session without
  // any certificate as authorized, so a refused caller could come back on a session ticket.
  const subject = presented ? [certificate.subject?.CN ?? []].flat().join(',') : undefined;
  if (socket.authorized && presented) return { refusedBecause: undefined, subject };
  return { refusedBecause: presented ? String(socket.authorizationError) : 'no certificate presented', subject };
}

async function listenTls(app: RoutableApp, url: URL, tls: ListenerTls, options: ListenOptions): Promise<Server> {
  const limiter = new RateLimiter(options.logIntervalMs ?? 1000, () => performance.now());
  let unloggedCount = 0;
  const verdicts = new WeakMap<TLSSocket, Verdict>();
  const logRateLimited = (fields: object, message: string): void => {
    if (!limiter.tryAcquire()) {
      unloggedCount++;
      return;
    }
    options.logger.warn({ listener: options.kind, ...fields, ...(unloggedCount > 0 ? { alsoSinceLastLine: unloggedCount } : {}) }, message);
    unloggedCount = 0;
  };
  const server = createServer(
    {
      cert: tls.cert,
      key: tls.key,
      ca: tls.ca,
      // Ask for a certificate and judge it per request: a refusal is then a clear 401, not a broken handshake.
      requestCert: tls.requireCallerCertificate,
      rejectUnauthorized: false,
      // As fastify's own server: no whole-request deadline (snapshots stream for minutes), idle keep-alive 72 s.
      requestTimeout: 0,
      keepAliveTimeout: 72_000,
    },
    (request: IncomingMessage, response: ServerResponse) => {
      if (tls.requireCallerCertificate) {
        const socket = request.socket as TLSSocket;
        let verdict = verdicts.get(socket);
        if (verdict === undefined) {
          verdict = judgeCaller(socket);
          verdicts.set(socket, verdict);
        }
        if (verdict.refusedBecause !== undefined) {
          logRateLimited({ remoteAddress: socket.remoteAddress, reason: verdict.refusedBecause, subject: verdict.subject }, `refused a ${options.kind} without a valid certificate (${HINTS[options.kind]})`);
          refuse(response, `${HINTS[options.kind]} (${verdict.refusedBecause})`);
          return;
        }
      }
      app.routing(request, response);
    },
  );
  server.on('tlsClientError', (error: Error, socket: TLSSocket) => {
    logRateLimited({ remoteAddress: socket.remoteAddress, reason: error.message }, `${options.kind} TLS handshake failed`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: url.hostname, port: Number(url.port) }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** 401 Unauthenticated in the API's error shape (JSON, which every client reads whatever it asked for). */
function refuse(response: ServerResponse, message: string): void {
  const body = JSON.stringify({ error: { code: 'Unauthenticated', message } });
  response.writeHead(401, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
  response.end(body);
}

interface IdleClosable {
  closeIdleConnections(): void;
}

/**
 * How often a closing listener closes the connections that have fallen idle since
 * (an answer sent, a watch ended). Node closes only those idle when the close
 * starts: a kept-alive client would hold the rest open for the keep-alive
 * timeout (72 s), and the member's exit with it.
 */
const IDLE_SWEEP_MS = 50;

/** Runs `close`, closing the servers' idle connections until it is done. */
async function closeSweepingIdle(close: () => PromiseLike<unknown>, servers: readonly IdleClosable[]): Promise<void> {
  const sweep = (): void => {
    for (const server of servers) server.closeIdleConnections();
  };
  sweep();
  const timer = setInterval(sweep, IDLE_SWEEP_MS);
  try {
    await close();
  } finally {
    clearInterval(timer);
  }
}

async function closeAll(app: RoutableApp, servers: readonly Server[]): Promise<void> {
  const closed = servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
  await closeSweepingIdle(() => app.close(), servers);
  // The app is closed: a request still open can no longer be answered usefully.
  for (const server of servers) server.closeAllConnections();
  await Promise.all(closed);
}
