import * as grpc from '@grpc/grpc-js';
import type { ResolvedClusterTls } from '../cluster-options';

/**
 * The internal service's credentials: TLS with this node's certificate, and
 * with `requireClientCert` (the default) only callers presenting a certificate
 * the cluster CA signed complete the handshake. Without `tls`, plaintext.
 */
export function serverCredentials(tls: ResolvedClusterTls | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(tls.ca, [{ private_key: tls.key, cert_chain: tls.cert }], tls.requireClientCert);
}

/** The calling side: trusts only the cluster CA and presents this node's certificate (for mutual TLS). */
export function channelCredentials(tls: ResolvedClusterTls | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(tls.ca, tls.key, tls.cert);
}

/** Channel options for `serverName`: the name checked in the peer's certificate instead of the host dialled. */
export function channelTlsOptions(tls: ResolvedClusterTls | undefined): grpc.ChannelOptions {
  return tls?.serverName ? { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName } : {};
}
