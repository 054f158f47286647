/* snapbackd: the engine daemon. Parses options, opens the engine (store,
 * host, reconcile), makes sure the admin user exists, serves HTTP(S) until
 * SIGTERM/SIGINT, then shuts down cleanly. Running VMs keep running. */
#include "cmd/engine.h"
#include "daemon/notify.h"
#include "http/auth.h"
#include "http/http.h"
#include "util/err.h"
#include "util/log.h"
#include "util/uuid.h"
#include "util/vec.h"
#include <getopt.h>
#include <libxml/parser.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
  "usage: snapbackd [OPTIONS]\n"
  "\n"
  "The snapback engine: oVirt's REST API over KVM hosts run through libvirt.\n"
  "\n"
  "  --state-dir DIR        state directory (default ./var)\n"
  "  --listen HOST:PORT     address to serve on (default 127.0.0.1:8443)\n"
  "  --libvirt-uri URI      the local host's libvirt URI (default qemu:///system)\n"
  "  --db URL               store URL (default sqlite:STATE/snapback.db)\n"
  "  --http                 plain HTTP instead of HTTPS\n"
  "  --domain-type TYPE     auto, kvm or qemu (default auto: kvm when /dev/kvm is usable)\n"
  "  --detach-timeout SECS  how long a hot-unplug waits for the guest (default 10)\n"
  "  --token-ttl SECS       lifetime of SSO bearer tokens (default 86400)\n"
  "  --threads N            HTTP worker threads (default 16)\n"
  "  --allow-path DIR       a host directory the API may name (OVA directories and files,\n"
  "                         storage domains, kernels, initrds); repeatable; the state\n"
  "                         directory is always allowed, nothing else by default\n"
  "  --verbose              debug logging\n"
  "  --help, --version\n"
  "\n"
  "First start creates user admin@internal with the password in SNAPBACK_ADMIN_PASSWORD,\n"
  "or generates one and prints it once. See docs/snapbackd.md.\n";

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static int parse_int(const char *opt, const char *v, long min, long max, long *out)
{
  char *end;
  long n = strtol(v, &end, 10);
  if (*end || n < min || n > max)
    return error(ERR_INVALID, "invalid value '%s' for %s: expected %ld to %ld", v, opt, min, max);
  *out = n;
  return 0;
}

/* creates admin@internal once; prints a generated password once */
static int ensure_admin(struct engine *eng)
{
  struct store *st = engine_store(eng);
  AUTOPTR(user) existing = user_get_by_name(st, "admin@internal");
  if (existing) return 0;
  error_clear();
  const char *pw = getenv("SNAPBACK_ADMIN_PASSWORD");
  AUTOFREE char *generated = NULL;
  if (!pw || !*pw) {
    generated = random_hex(12);
    if (!generated) return -1;
    pw = generated;
  }
  AUTOFREE char *hash = auth_hash_password(pw);
  if (!hash) return -1;
  char id[UUID_STRLEN + 1];
  if (uuid_generate_str(id) < 0) return -1;
  struct user u = {.id = id, .name = (char *)"admin@internal", .password_hash = hash};
  if (user_insert(st, &u) < 0) return -1;
  if (generated)
    printf("snapbackd: created user admin@internal with password: %s\n"
           "snapbackd: this password is shown only once; store it now\n", generated);
  else
    log_info("created user admin@internal with the password from SNAPBACK_ADMIN_PASSWORD");
  fflush(stdout);
  return 0;
}

/* --allow-path DIR: an existing directory, kept as given (the engine resolves it) */
static int allow_path_add(struct strvec *v, const char *dir)
{
  struct stat sb;
  if (dir[0] != '/')
    return error(ERR_INVALID, "invalid value '%s' for --allow-path: give an absolute directory", dir);
  if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
    return error(ERR_INVALID, "invalid value '%s' for --allow-path: not an existing directory", dir);
  vec_push(v, xstrdup(dir));
  return 0;
}

int main(int argc, char **argv)
{
  const char *state_dir = "./var", *listen = "127.0.0.1:8443", *uri = "qemu:///system";
  const char *db = NULL;
  bool plain = false;
  long detach_timeout = 10, token_ttl = 86400, threads = 16;
  int domain_type = DOMAIN_TYPE_AUTO;
  AUTOSTRVEC struct strvec allow_paths = VEC_INIT;  /* NULL-terminated once parsed */
  enum { O_STATE = 256, O_LISTEN, O_URI, O_DB, O_HTTP, O_DTYPE, O_DETACH, O_TTL, O_THREADS, O_VERBOSE, O_VERSION, O_ALLOW_PATH };
  static const struct option longopts[] = {
    {"state-dir", required_argument, NULL, O_STATE}, {"listen", required_argument, NULL, O_LISTEN},
    {"libvirt-uri", required_argument, NULL, O_URI}, {"db", required_argument, NULL, O_DB},
    {"http", no_argument, NULL, O_HTTP}, {"domain-type", required_argument, NULL, O_DTYPE},
    {"detach-timeout", required_argument, NULL, O_DETACH}, {"token-ttl", required_argument, NULL, O_TTL},
    {"threads", required_argument, NULL, O_THREADS}, {"verbose", no_argument, NULL, O_VERBOSE},
    {"allow-path", required_argument, NULL, O_ALLOW_PATH},
    {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, O_VERSION}, {NULL, 0, NULL, 0},
  };
  int opt;
  while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    int rc = 0;
    switch (opt) {
    case O_STATE: state_dir = optarg; break;
    case O_LISTEN: listen = optarg; break;
    case O_URI: uri = optarg; break;
    case O_DB: db = optarg; break;
    case O_HTTP: plain = true; break;
    case O_DTYPE:
      if ((domain_type = domain_type_from_str(optarg)) < 0)
        rc = error(ERR_INVALID, "invalid value '%s' for --domain-type: use auto, kvm or qemu", optarg);
      break;
    case O_DETACH: rc = parse_int("--detach-timeout", optarg, 1, 3600, &detach_timeout); break;
    case O_TTL: rc = parse_int("--token-ttl", optarg, 60, 31536000, &token_ttl); break;
    case O_THREADS: rc = parse_int("--threads", optarg, 1, 256, &threads); break;
    case O_VERBOSE: log_set_level(LOG_DEBUG); break;
    case O_ALLOW_PATH: rc = allow_path_add(&allow_paths, optarg); break;
    case O_VERSION: puts("snapbackd 0.1.0"); return 0;
    case 'h': fputs(usage, stdout); return 0;
    default: fputs(usage, stderr); return 2;
    }
    if (rc < 0) {
      fprintf(stderr, "snapbackd: %s\n", error_message());
      return 2;
    }
  }
  vec_push(&allow_paths, NULL);
  if (optind < argc) {
    fprintf(stderr, "snapbackd: unexpected argument '%s'\n%s", argv[optind], usage);
    return 2;
  }

  char abs_state[PATH_MAX];
  if (state_dir[0] != '/') {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) { perror("snapbackd: getcwd"); return 1; }
    const char *rel = strncmp(state_dir, "./", 2) == 0 ? state_dir + 2 : state_dir;
    if ((size_t)snprintf(abs_state, sizeof abs_state, "%s/%s", cwd, rel) >= sizeof abs_state) {
      fprintf(stderr, "snapbackd: state directory path too long\n");
      return 2;
    }
  } else {
    snprintf(abs_state, sizeof abs_state, "%s", state_dir);
  }

  xmlInitParser(); /* once, before worker threads parse request bodies */
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  struct engine_options eo = {
    .state_dir = abs_state, .db_url = db, .libvirt_uri = uri, .domain_type = domain_type,
    .detach_timeout_ms = (int)detach_timeout * 1000,
    .allow_paths = (const char *const *)allow_paths.ptr,
  };
  struct engine *eng = engine_open(&eo, NULL);
  if (!eng) {
    fprintf(stderr, "snapbackd: cannot start: %s\n", error_message());
    return 1;
  }
  if (ensure_admin(eng) < 0) {
    fprintf(stderr, "snapbackd: cannot create user admin@internal: %s\n", error_message());
    engine_close(eng);
    return 1;
  }
  AUTOFREE char *pki = xasprintf("%s/pki", abs_state);
  AUTOFREE char *imageio_sock = xasprintf("%s/imageio.sock", abs_state);
  struct http_options ho = {
    .listen = listen, .plain_http = plain, .pki_dir = pki, .token_ttl_ms = (int64_t)token_ttl * 1000,
    .max_body = 1 << 20, .threads = (unsigned)threads,
    .imageio_socket = imageio_sock,
  };
  struct http_server *srv = http_start(eng, &ho);
  if (!srv) {
    fprintf(stderr, "snapbackd: cannot serve on %s: %s\n", listen, error_message());
    engine_close(eng);
    return 1;
  }
  log_info("serving oVirt API on %s://%s/ovirt-engine/api (state %s, host %s)",
           plain ? "http" : "https", listen, abs_state, uri);
  if (!plain) log_info("clients trust %s/ca.pem", pki);
  if (daemon_notify("READY=1") < 0) log_warn("%s", error_message()); /* the API answers now */
  while (!stop_requested) pause();
  log_info("shutting down; running VMs keep running");
  if (daemon_notify("STOPPING=1") < 0) log_warn("%s", error_message());
  http_stop(srv);
  engine_close(eng);
  return 0;
}
