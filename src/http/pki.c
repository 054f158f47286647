/* pki.c: a self-made CA and server certificate with OpenSSL 3 (see pki.h) */
#include "http/pki.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CA_DAYS 3650
#define SERVER_DAYS 825
#define RENEW_DAYS 30

DEFINE_AUTOPTR(EVP_PKEY, EVP_PKEY, EVP_PKEY_free)
DEFINE_AUTOPTR(X509, X509, X509_free)
DEFINE_AUTOPTR(BIO, BIO, BIO_free)
DEFINE_AUTOPTR(BIGNUM, BIGNUM, BN_free)
DEFINE_AUTOPTR(X509_EXTENSION, X509_EXTENSION, X509_EXTENSION_free)

/* records ERR_INTERNAL with WHAT and OpenSSL's first queued error */
static int ssl_error(const char *what)
{
  unsigned long e = ERR_get_error();
  char msg[256] = "unknown OpenSSL error";
  if (e) ERR_error_string_n(e, msg, sizeof msg);
  ERR_clear_error();
  return error(ERR_INTERNAL, "%s: %s", what, msg);
}

/* reads a whole file; NULL + error (ENOENT keeps ERR_NOT_FOUND) */
static char *read_file(const char *path)
{
  FILE *f = fopen(path, "re");
  if (!f) {
    int e = errno;
    error(e == ENOENT ? ERR_NOT_FOUND : ERR_INTERNAL, "cannot read '%s': %s", path, strerror(e));
    return NULL;
  }
  struct buf b = BUF_INIT;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_add(&b, chunk, n);
  bool bad = ferror(f);
  fclose(f);
  if (bad) {
    buf_free(&b);
    error(ERR_INTERNAL, "cannot read '%s'", path);
    return NULL;
  }
  return buf_detach(&b);
}

/* writes DATA to PATH with MODE through a temporary file and rename */
static int write_file(const char *path, const char *data, mode_t mode)
{
  AUTOFREE char *tmp = xasprintf("%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return error(ERR_INTERNAL, "cannot create '%s': %s", tmp, strerror(errno));
  size_t len = strlen(data), off = 0;
  while (off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int e = errno;
      close(fd);
      unlink(tmp);
      return error(ERR_INTERNAL, "cannot write '%s': %s", tmp, strerror(e));
    }
    off += (size_t)w;
  }
  if (fchmod(fd, mode) < 0 || fsync(fd) < 0 || close(fd) < 0) {
    int e = errno;
    unlink(tmp);
    return error(ERR_INTERNAL, "cannot write '%s': %s", tmp, strerror(e));
  }
  if (rename(tmp, path) < 0) {
    int e = errno;
    unlink(tmp);
    return error(ERR_INTERNAL, "cannot rename '%s': %s", tmp, strerror(e));
  }
  return 0;
}

static char *bio_to_string(BIO *bio)
{
  char *data;
  long len = BIO_get_mem_data(bio, &data);
  struct buf b = BUF_INIT;
  buf_add(&b, data, len > 0 ? (size_t)len : 0);
  return buf_detach(&b);
}

static char *key_to_pem(EVP_PKEY *key)
{
  AUTOPTR(BIO) bio = BIO_new(BIO_s_mem());
  if (!bio || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
    ssl_error("cannot encode private key");
    return NULL;
  }
  return bio_to_string(bio);
}

static char *cert_to_pem(X509 *cert)
{
  AUTOPTR(BIO) bio = BIO_new(BIO_s_mem());
  if (!bio || !PEM_write_bio_X509(bio, cert)) {
    ssl_error("cannot encode certificate");
    return NULL;
  }
  return bio_to_string(bio);
}

static EVP_PKEY *key_from_pem(const char *pem, const char *path)
{
  AUTOPTR(BIO) bio = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
  if (!k) ssl_error(path);
  return k;
}

static X509 *cert_from_pem(const char *pem, const char *path)
{
  AUTOPTR(BIO) bio = BIO_new_mem_buf(pem, -1);
  X509 *c = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  if (!c) ssl_error(path);
  return c;
}

/* adds extension NID=VALUE (OpenSSL config syntax) to CERT */
static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
  AUTOPTR(X509_EXTENSION) ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  if (!ext || !X509_add_ext(cert, ext, -1)) return ssl_error("cannot add certificate extension");
  return 0;
}

/* a certificate for KEY named CN, valid DAYS, signed by ISSUER_KEY (with
 * ISSUER as issuer; NULL: self-signed) */
static X509 *make_cert(EVP_PKEY *key, const char *cn, long days, X509 *issuer, EVP_PKEY *issuer_key)
{
  AUTOPTR(X509) cert = X509_new();
  AUTOPTR(BIGNUM) serial = BN_new();
  if (!cert || !serial || !X509_set_version(cert, X509_VERSION_3) ||
      !BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
      !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) ||
      !X509_gmtime_adj(X509_getm_notBefore(cert), -3600) ||
      !X509_time_adj_ex(X509_getm_notAfter(cert), (int)days, 0, NULL) ||
      !X509_set_pubkey(cert, key)) {
    ssl_error("cannot create certificate");
    return NULL;
  }
  X509_NAME *name = X509_get_subject_name(cert);
  if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"snapback", -1, -1, 0) ||
      !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) ||
      !X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name)) {
    ssl_error("cannot name certificate");
    return NULL;
  }
  X509 *iss = issuer ? issuer : cert;
  if (add_ext(cert, iss, NID_subject_key_identifier, "hash") < 0 ||
      add_ext(cert, iss, NID_authority_key_identifier, "keyid:always") < 0)
    return NULL;
  if (!issuer) {
    if (add_ext(cert, iss, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
        add_ext(cert, iss, NID_key_usage, "critical,keyCertSign,cRLSign") < 0)
      return NULL;
  } else {
    char host[256] = "";
    struct buf san = BUF_INIT;
    buf_puts(&san, "DNS:localhost,IP:127.0.0.1,IP:::1");
    if (gethostname(host, sizeof host - 1) == 0 && host[0] && strcmp(host, "localhost") != 0 &&
        strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == strlen(host))
      buf_printf(&san, ",DNS:%s", host);
    int rc = add_ext(cert, iss, NID_subject_alt_name, buf_str(&san));
    buf_free(&san);
    if (rc < 0 ||
        add_ext(cert, iss, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext(cert, iss, NID_key_usage, "critical,digitalSignature,keyEncipherment") < 0 ||
        add_ext(cert, iss, NID_ext_key_usage, "serverAuth") < 0)
      return NULL;
  }
  if (!X509_sign(cert, issuer_key ? issuer_key : key, EVP_sha256())) {
    ssl_error("cannot sign certificate");
    return NULL;
  }
  return steal_pointer(&cert);
}

static EVP_PKEY *make_key(void)
{
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  if (!k) ssl_error("cannot generate EC key");
  return k;
}

/* writes KEY and CERT to DIR/KEYNAME (0600) and DIR/CERTNAME (0644);
 * *key_pem and *cert_pem get the PEM strings */
static int save_pair(const char *dir, const char *keyname, const char *certname,
                     EVP_PKEY *key, X509 *cert, char **key_pem, char **cert_pem)
{
  AUTOFREE char *kp = key_to_pem(key);
  AUTOFREE char *cp = kp ? cert_to_pem(cert) : NULL;
  if (!cp) return -1;
  AUTOFREE char *kpath = xasprintf("%s/%s", dir, keyname);
  AUTOFREE char *cpath = xasprintf("%s/%s", dir, certname);
  if (write_file(kpath, kp, 0600) < 0 || write_file(cpath, cp, 0644) < 0) {
    OPENSSL_cleanse(kp, strlen(kp));
    return -1;
  }
  *key_pem = steal_pointer(&kp);
  *cert_pem = steal_pointer(&cp);
  return 0;
}

/* reads DIR/NAME; NULL without an error when it does not exist */
static char *read_optional(const char *dir, const char *name, bool *failed)
{
  AUTOFREE char *path = xasprintf("%s/%s", dir, name);
  char *s = read_file(path);
  if (!s && error_code() != ERR_NOT_FOUND) *failed = true;
  else if (!s) error_clear();
  return s;
}

static void free_secret(char *s)
{
  if (!s) return;
  OPENSSL_cleanse(s, strlen(s));
  free(s);
}

int pki_ensure(const char *dir, struct pki_pems *out)
{
  memset(out, 0, sizeof *out);
  if (mkdir(dir, 0700) < 0 && errno != EEXIST)
    return error(ERR_INTERNAL, "cannot create '%s': %s", dir, strerror(errno));

  bool failed = false;
  AUTOFREE char *ca_cert_pem = read_optional(dir, PKI_CA_CERT, &failed);
  char *ca_key_pem = failed ? NULL : read_optional(dir, PKI_CA_KEY, &failed);
  char *srv_key_pem = failed ? NULL : read_optional(dir, PKI_SERVER_KEY, &failed);
  AUTOFREE char *srv_cert_pem = failed ? NULL : read_optional(dir, PKI_SERVER_CERT, &failed);
  AUTOPTR(EVP_PKEY) ca_key = NULL;
  AUTOPTR(X509) ca_cert = NULL;
  int rc = -1;
  if (failed) goto cleanup;

  if (ca_cert_pem && ca_key_pem) {
    if (!(ca_cert = cert_from_pem(ca_cert_pem, PKI_CA_CERT)) ||
        !(ca_key = key_from_pem(ca_key_pem, PKI_CA_KEY)))
      goto cleanup;
  } else {
    log_info("creating a certificate authority in '%s'", dir);
    free_secret(ca_key_pem);
    free(ca_cert_pem);
    ca_key_pem = ca_cert_pem = NULL;
    free_secret(srv_key_pem);
    free(srv_cert_pem);
    srv_key_pem = srv_cert_pem = NULL;  /* a new CA re-issues the server pair */
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    AUTOFREE char *cn = xasprintf("snapback CA %s", host);
    if (!(ca_key = make_key()) || !(ca_cert = make_cert(ca_key, cn, CA_DAYS, NULL, NULL)) ||
        save_pair(dir, PKI_CA_KEY, PKI_CA_CERT, ca_key, ca_cert, &ca_key_pem, &ca_cert_pem) < 0)
      goto cleanup;
  }

  /* the server pair: reuse unless missing or about to expire */
  if (srv_cert_pem && srv_key_pem) {
    AUTOPTR(X509) srv = cert_from_pem(srv_cert_pem, PKI_SERVER_CERT);
    if (!srv) goto cleanup;
    time_t soon = time(NULL) + (time_t)RENEW_DAYS * 86400;
    if (X509_cmp_time(X509_get0_notAfter(srv), &soon) <= 0) {
      log_info("renewing the server certificate in '%s'", dir);
      free_secret(srv_key_pem);
      free(srv_cert_pem);
      srv_key_pem = srv_cert_pem = NULL;
    }
  }
  if (!srv_cert_pem || !srv_key_pem) {
    free_secret(srv_key_pem);
    free(srv_cert_pem);
    srv_key_pem = srv_cert_pem = NULL;
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    AUTOPTR(EVP_PKEY) key = make_key();
    AUTOPTR(X509) cert = key ? make_cert(key, host, SERVER_DAYS, ca_cert, ca_key) : NULL;
    if (!cert ||
        save_pair(dir, PKI_SERVER_KEY, PKI_SERVER_CERT, key, cert, &srv_key_pem, &srv_cert_pem) < 0)
      goto cleanup;
  }
  out->ca_cert = steal_pointer(&ca_cert_pem);
  out->server_cert = steal_pointer(&srv_cert_pem);
  out->server_key = steal_pointer(&srv_key_pem);
  rc = 0;

cleanup:
  free_secret(ca_key_pem);
  free_secret(srv_key_pem);
  return rc;
}

void pki_pems_clear(struct pki_pems *out)
{
  free(out->ca_cert);
  free(out->server_cert);
  free_secret(out->server_key);
  out->ca_cert = out->server_cert = out->server_key = NULL;
}

int pki_load(const char *cert_path, const char *key_path, struct pki_pems *out)
{
  memset(out, 0, sizeof *out);
  AUTOFREE char *cert_pem = read_file(cert_path);
  if (!cert_pem) return -1;
  char *key_pem = read_file(key_path);
  if (!key_pem) return -1;
  AUTOPTR(X509) cert = cert_from_pem(cert_pem, cert_path);
  AUTOPTR(EVP_PKEY) key = cert ? key_from_pem(key_pem, key_path) : NULL;
  if (!key) {
    free_secret(key_pem);
    return -1;
  }
  if (X509_check_private_key(cert, key) != 1) {
    free_secret(key_pem);
    return error(ERR_INVALID, "the key '%s' does not belong to the certificate '%s'", key_path, cert_path);
  }
  out->server_cert = steal_pointer(&cert_pem);
  out->server_key = key_pem;
  return 0;
}
