/* tls.c - the HTTPS certificate and key the server presents, replaceable
 * while it runs (SIGHUP in daemon/), and raw TLS writes for answers sent
 * while a body still arrives.  See tls.h. */
#include "tls.h"

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define TLS_MAX_CHAIN 16

struct tls_creds {
    gnutls_pcert_st chain[TLS_MAX_CHAIN];
    unsigned n_chain;
    gnutls_privkey_t key;
    struct tls_creds *older; /* loaded before; kept for sessions that may still use them */
};

static pthread_mutex_t tls_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tls_creds *tls_current; /* guarded by tls_mu; NULL: no HTTPS server */

static void creds_free(struct tls_creds *c)
{
    while (c) {
        struct tls_creds *older = c->older;
        for (unsigned i = 0; i < c->n_chain; i++)
            gnutls_pcert_deinit(&c->chain[i]);
        gnutls_privkey_deinit(c->key);
        free(c);
        c = older;
    }
}

/* The DER public key of pub (gnutls_free the data). */
static int pubkey_der(gnutls_pubkey_t pub, gnutls_datum_t *ret)
{
    return gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, ret) < 0 ? -EINVAL : 0;
}

/* 0 when key is the private half of the certificate's public key. */
static int key_matches(gnutls_privkey_t key, gnutls_pubkey_t cert_pub)
{
    gnutls_pubkey_t pub = NULL;
    gnutls_datum_t a = {NULL, 0}, b = {NULL, 0};
    int r = -EINVAL;
    if (gnutls_pubkey_init(&pub) < 0)
        return -ENOMEM;
    if (gnutls_pubkey_import_privkey(pub, key, 0, 0) < 0 || pubkey_der(pub, &a) < 0 ||
        pubkey_der(cert_pub, &b) < 0)
        goto out;
    r = a.size == b.size && memcmp(a.data, b.data, a.size) == 0 ? 0 : -EINVAL;
out:
    gnutls_free(a.data);
    gnutls_free(b.data);
    gnutls_pubkey_deinit(pub);
    return r;
}

static int creds_load(struct tls_creds **ret, const char *cert_pem, const char *key_pem,
                      struct diag *d)
{
    struct tls_creds *c = calloc(1, sizeof(*c));
    if (!c)
        return diag_set(d, -ENOMEM, "", "out of memory");
    gnutls_datum_t cd = {(unsigned char *)cert_pem, (unsigned)strlen(cert_pem)};
    gnutls_datum_t kd = {(unsigned char *)key_pem, (unsigned)strlen(key_pem)};
    unsigned n = TLS_MAX_CHAIN;
    int g = gnutls_pcert_list_import_x509_raw(c->chain, &n, &cd, GNUTLS_X509_FMT_PEM, 0);
    if (g < 0 || n == 0) {
        free(c);
        return diag_set(d, -EINVAL, "tls_cert_file", "not a certificate GnuTLS accepts: %s",
                        g < 0 ? gnutls_strerror(g) : "no certificate");
    }
    c->n_chain = n;
    if (gnutls_privkey_init(&c->key) < 0) {
        creds_free(c);
        return diag_set(d, -ENOMEM, "", "out of memory");
    }
    g = gnutls_privkey_import_x509_raw(c->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (g < 0) {
        creds_free(c);
        return diag_set(d, -EINVAL, "tls_key_file", "not a private key GnuTLS accepts: %s",
                        gnutls_strerror(g));
    }
    if (key_matches(c->key, c->chain[0].pubkey) < 0) {
        creds_free(c);
        return diag_set(d, -EINVAL, "tls_key_file",
                        "the private key does not belong to the certificate of tls_cert_file");
    }
    *ret = c;
    return 0;
}

/* gnutls_certificate_retrieve_function2: every handshake takes the newest
 * certificate. */
static int on_retrieve_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_dn,
                            int nreqs, const gnutls_pk_algorithm_t *pk_algos, int n_algos,
                            gnutls_pcert_st **ret_chain, unsigned int *ret_n,
                            gnutls_privkey_t *ret_key)
{
    (void)session, (void)req_ca_dn, (void)nreqs, (void)pk_algos, (void)n_algos;
    pthread_mutex_lock(&tls_mu);
    struct tls_creds *c = tls_current;
    if (c) {
        *ret_chain = c->chain;
        *ret_n = c->n_chain;
        *ret_key = c->key;
    }
    pthread_mutex_unlock(&tls_mu);
    return c ? 0 : -1;
}

int api_tls_open(const char *cert_pem, const char *key_pem, struct diag *d)
{
    struct tls_creds *c;
    int r = creds_load(&c, cert_pem, key_pem, d);
    if (r < 0)
        return r;
    pthread_mutex_lock(&tls_mu);
    bool busy = tls_current != NULL;
    if (!busy)
        tls_current = c;
    pthread_mutex_unlock(&tls_mu);
    if (busy) {
        creds_free(c);
        return diag_set(d, -EBUSY, "tls_cert_file", "an HTTPS server already runs in this process");
    }
    return 0;
}

int api_tls_replace(const char *cert_pem, const char *key_pem, struct diag *d)
{
    struct tls_creds *c;
    int r = creds_load(&c, cert_pem, key_pem, d);
    if (r < 0)
        return r;
    pthread_mutex_lock(&tls_mu);
    if (tls_current) {
        c->older = tls_current;
        tls_current = c;
    }
    bool ok = tls_current == c;
    pthread_mutex_unlock(&tls_mu);
    if (!ok) {
        creds_free(c);
        return diag_set(d, -ENOTCONN, "tls_cert_file", "the server does not use HTTPS");
    }
    return 0;
}

void api_tls_close(void)
{
    pthread_mutex_lock(&tls_mu);
    struct tls_creds *c = tls_current;
    tls_current = NULL;
    pthread_mutex_unlock(&tls_mu);
    creds_free(c);
}

void *api_tls_retrieve_function(void)
{
    return (void *)(gnutls_certificate_retrieve_function2 *)on_retrieve_cert;
}

bool api_tls_send(void *session, const char *data, size_t len)
{
    size_t off = 0;
    int tries = 0;
    while (off < len) {
        ssize_t w = gnutls_record_send(session, data + off, len - off);
        if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) {
            if (++tries > 64)
                return off > 0;
            continue;
        }
        if (w <= 0)
            return off > 0;
        off += (size_t)w;
    }
    return true;
}
