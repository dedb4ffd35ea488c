/* tls.h - the certificate and key the HTTPS server presents (GnuTLS).
 *
 * libmicrohttpd asks for them at every handshake (MHD_OPTION_HTTPS_CERT_CALLBACK,
 * a callback without a closure, hence one HTTPS server per process), so a
 * replaced certificate serves every new connection at once while open
 * connections keep the one they started with.  Replaced credentials stay
 * allocated until api_tls_close: a session may still hold them.
 * All functions may be called from any thread (one mutex). */
#ifndef TRAIND_API_TLS_H
#define TRAIND_API_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"

/* Parse cert_pem (the certificate, then its chain) and key_pem (its
 * private key) and make them the server's.  -EINVAL with d ("tls_cert_file"
 * or "tls_key_file") when GnuTLS refuses one or the key does not belong to
 * the certificate; -EBUSY when credentials are already open. */
int api_tls_open(const char *cert_pem, const char *key_pem, struct diag *d);
/* Same checks, then the new pair serves every later handshake; on any
 * error the current pair stays.  -ENOTCONN when nothing is open. */
int api_tls_replace(const char *cert_pem, const char *key_pem, struct diag *d);
/* Free every pair (after the server stopped). */
void api_tls_close(void);
/* The gnutls_certificate_retrieve_function2 for MHD_OPTION_HTTPS_CERT_CALLBACK. */
void *api_tls_retrieve_function(void);
/* Write data as TLS records on session (a gnutls_session_t, libmicrohttpd's
 * MHD_CONNECTION_INFO_GNUTLS_SESSION), best effort on a non-blocking
 * socket.  True when any byte went out. */
bool api_tls_send(void *session, const char *data, size_t len);

#endif
