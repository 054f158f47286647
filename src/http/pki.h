/* pki.h: the daemon's own small CA and its TLS server certificate.
 *
 * At first start pki_ensure() creates DIR (mode 0700) holding
 *   ca.key, ca.pem         EC P-256 CA, 10 years, CA:TRUE, keyCertSign
 *   server.key, server.pem EC P-256, signed by the CA, serverAuth, SAN
 *                          DNS:localhost, IP:127.0.0.1, IP:::1, DNS:<hostname>
 * (keys 0600, certificates 0644). Later starts reuse the files; the server
 * pair alone is re-issued by the CA when it is missing, or expires within 30
 * days. Clients trust ca.pem (oVirt SDK: ca_file=STATE/pki/ca.pem). */
#pragma once

#define PKI_CA_CERT "ca.pem"
#define PKI_CA_KEY "ca.key"
#define PKI_SERVER_CERT "server.pem"
#define PKI_SERVER_KEY "server.key"

struct pki_pems {
  char *ca_cert;       /* PEM of ca.pem */
  char *server_cert;   /* PEM of server.pem */
  char *server_key;    /* PEM (PKCS#8) of server.key */
};

/* loads or creates the files in DIR and fills OUT (free with pki_pems_clear);
 * -1 + error (ERR_INTERNAL naming the file) on failure */
int pki_ensure(const char *dir, struct pki_pems *out);
/* loads an administrator's certificate chain and key (--tls-cert, --tls-key)
 * into OUT (ca_cert stays NULL); -1 + error when unreadable, not PEM, or the
 * key does not match the certificate */
int pki_load(const char *cert_path, const char *key_path, struct pki_pems *out);
/* frees the strings (the key is wiped first); OUT stays usable */
void pki_pems_clear(struct pki_pems *out);
