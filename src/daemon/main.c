/* snapbackd: the engine daemon. Reads the configuration file and the
 * options and validates all of them before it touches any state, opens the
 * engine (store, host, reconcile), makes sure the admin user exists, serves
 * HTTP(S) until SIGTERM/SIGINT, reloads on SIGHUP, then shuts down cleanly.
 * Running VMs keep running.
 *
 * Options: longopts[] below is the one list of settings. Every long flag is
 * also a key of the configuration file (config.c reads the file against
 * this table), so a flag added here needs nothing else to be configurable. */
#include "cmd/engine.h"
#include "cmd/perm.h"
#include "daemon/config.h"
#include "daemon/notify.h"
#include "daemon/usercmd.h"
#include "cmd/auth.h"
#include "http/http.h"
#include "http/pki.h"
#include "util/err.h"
#include "util/log.h"
#include "util/uuid.h"
#include "util/vec.h"
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <getopt.h>
#include <libxml/parser.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/snapback/snapbackd.conf"

static const char usage[] =
  "usage: snapbackd [OPTIONS]\n"
  "\n"
  "The snapback engine: oVirt's REST API over KVM hosts run through libvirt.\n"
  "\n"
  "  --config FILE          configuration file (default " DEFAULT_CONFIG " when it exists);\n"
  "                         its keys are the long options below without '--'; options win\n"
  "  --check-config         validate the configuration file and the options, then exit\n"
  "  --state-dir DIR        state directory (default ./var)\n"
  "  --listen HOST:PORT     address to serve on (default 127.0.0.1:8443)\n"
  "  --libvirt-uri URI      the local host's libvirt URI (default qemu:///system)\n"
  "  --allow-path DIR       a host directory the API may name (OVA directories and files,\n"
  "                         storage domains, kernels, initrds); repeatable; the state\n"
  "                         directory is always allowed, nothing else by default\n"
  "  --db URL               store URL (default sqlite:STATE/snapback.db)\n"
  "  --http                 plain HTTP instead of HTTPS\n"
  "  --tls-cert FILE        TLS certificate chain (PEM) instead of STATE/pki/server.pem\n"
  "  --tls-key FILE         its private key (PEM); both or neither\n"
  "  --domain-type TYPE     auto, kvm or qemu (default auto: kvm when /dev/kvm is usable)\n"
  "  --detach-timeout SECS  how long a hot-unplug waits for the guest (default 10)\n"
  "  --token-ttl SECS       lifetime of SSO bearer tokens (default 86400)\n"
  "  --threads N            HTTP worker threads (default 16)\n"
  "  --event-retention-days N  keep events N days, then prune them (default 30)\n"
  "  --metrics-auth MODE    who may read /metrics: user (any engine user, default) or none\n"
  "  --web-dir DIR          the web console's files, served under / (default: the\n"
  "                         source tree's web/ when present, else " SNAPBACK_WEB_INSTALL_DIR ")\n"
  "  --console-listen ADDR  IP address VMs' VNC consoles listen on (default 127.0.0.1)\n"
  "  --backup-nbd-ports FIRST-LAST  TCP ports of backups' NBD servers on other hosts\n"
  "                         (default 10809-10909)\n"
  "  --log-level LEVEL      debug, info, warning or error (default info)\n"
  "  --verbose              same as --log-level debug\n"
  "  --help, --version\n"
  "\n"
  "Internal users and groups, also while the daemon runs (see docs/permissions.md):\n"
  "  snapbackd [--state-dir DIR | --db URL] user add|password|lock|unlock NAME [--password-file FILE]\n"
  "  snapbackd [--state-dir DIR | --db URL] user list\n"
  "  snapbackd [--state-dir DIR | --db URL] group add NAME | group list | group adduser|deluser GROUP USER\n"
  "\n"
  "First start creates user admin@internal with the password in SNAPBACK_ADMIN_PASSWORD,\n"
  "or generates one and prints it once. SIGHUP reopens the log and reloads the settings\n"
  "that can change live. See docs/snapbackd.md and docs/permissions.md.\n";

enum {
  O_STATE = 256, O_LISTEN, O_URI, O_DB, O_HTTP, O_DTYPE, O_DETACH, O_TTL, O_THREADS, O_VERBOSE,
  O_VERSION, O_CONFIG, O_CHECK_CONFIG, O_TLS_CERT, O_TLS_KEY, O_LOG_LEVEL, O_METRICS_AUTH, O_ALLOW_PATH,
  O_WEB,
  O_RETENTION,
  O_CONSOLE_LISTEN,
  O_NBD_PORTS,
};
static const struct option longopts[] = {
  {"state-dir", required_argument, NULL, O_STATE}, {"listen", required_argument, NULL, O_LISTEN},
  {"libvirt-uri", required_argument, NULL, O_URI}, {"db", required_argument, NULL, O_DB},
  {"http", no_argument, NULL, O_HTTP}, {"domain-type", required_argument, NULL, O_DTYPE},
  {"detach-timeout", required_argument, NULL, O_DETACH}, {"token-ttl", required_argument, NULL, O_TTL},
  {"threads", required_argument, NULL, O_THREADS}, {"verbose", no_argument, NULL, O_VERBOSE},
  {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, O_VERSION},
  {"config", required_argument, NULL, O_CONFIG}, {"check-config", no_argument, NULL, O_CHECK_CONFIG},
  {"tls-cert", required_argument, NULL, O_TLS_CERT}, {"tls-key", required_argument, NULL, O_TLS_KEY},
  {"log-level", required_argument, NULL, O_LOG_LEVEL},
  {"metrics-auth", required_argument, NULL, O_METRICS_AUTH},
  {"allow-path", required_argument, NULL, O_ALLOW_PATH},
  {"web-dir", required_argument, NULL, O_WEB},
  {"event-retention-days", required_argument, NULL, O_RETENTION},
  {"console-listen", required_argument, NULL, O_CONSOLE_LISTEN},
  {"backup-nbd-ports", required_argument, NULL, O_NBD_PORTS},
  {NULL, 0, NULL, 0},
};
#define NOPTS (ARRAY_SIZE(longopts) - 1)
/* flags that make no sense in a configuration file */
static const char *const cmdline_only[] = {"help", "version", "config", "check-config", NULL};
/* keys a SIGHUP applies to the running engine (apply_live); a change of any
 * other key is logged as needing a restart */
static const char *const live_keys[] = {"log-level", "verbose", "metrics-auth", NULL};

/* everything the options decide; strings are borrowed from argv or the config */
struct daemon_options {
  const char *state_dir, *listen, *uri, *db, *tls_cert, *tls_key, *config, *web_dir;
  const char *console_listen;   /* an IP address */
  int nbd_port_min, nbd_port_max; /* --backup-nbd-ports */
  bool plain, check_config, show_help, show_version;
  long detach_timeout, token_ttl, threads, event_retention_days;
  int domain_type;
  enum log_level log_level;
  enum http_metrics_auth metrics_auth;
  struct strvec allow_paths;    /* --allow-path, owned; NULL-terminated once parsed */
  struct config cfg;            /* the file read, owning its arguments */
  char **args;                  /* the merged argument vector getopt ran over; owned */
  char *values[NOPTS];          /* each option's effective value as text (repeated ones
                                   joined by newlines), NULL when unset: for SIGHUP */
  int lines[NOPTS];             /* the file's line that set each option; 0: not the file */
};

static void options_clear(struct daemon_options *o)
{
  config_clear(&o->cfg);
  strvec_free(&o->allow_paths);
  free(o->args);
  for (size_t i = 0; i < NOPTS; i++) free(o->values[i]);
  memset(o, 0, sizeof *o);
}

static int parse_int(const char *opt, const char *v, long min, long max, long *out)
{
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (!*v || *end || errno || n < min || n > max)
    return error(ERR_INVALID, "invalid value '%s' for %s: expected %ld to %ld", v, opt, min, max);
  *out = n;
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

static int parse_log_level(const char *v, enum log_level *out)
{
  int l = log_level_from_str(v);
  if (l < 0) return error(ERR_INVALID, "invalid value '%s' for --log-level: use debug, info, warning or error", v);
  *out = (enum log_level)l;
  return 0;
}

/* applies one option getopt returned; -1 + error for a bad value */
static int option_apply(struct daemon_options *o, int opt, const char *arg)
{
  switch (opt) {
  case O_STATE: o->state_dir = arg; return 0;
  case O_LISTEN: o->listen = arg; return 0;
  case O_URI: o->uri = arg; return 0;
  case O_DB: o->db = arg; return 0;
  case O_HTTP: o->plain = true; return 0;
  case O_DTYPE:
    if ((o->domain_type = domain_type_from_str(arg)) < 0)
      return error(ERR_INVALID, "invalid value '%s' for --domain-type: use auto, kvm or qemu", arg);
    return 0;
  case O_DETACH: return parse_int("--detach-timeout", arg, 1, 3600, &o->detach_timeout);
  case O_TTL: return parse_int("--token-ttl", arg, 60, 31536000, &o->token_ttl);
  case O_THREADS: return parse_int("--threads", arg, 1, 256, &o->threads);
  case O_RETENTION: return parse_int("--event-retention-days", arg, 1, 36500, &o->event_retention_days);
  case O_VERBOSE: o->log_level = LOG_DEBUG; return 0;
  case O_LOG_LEVEL: return parse_log_level(arg, &o->log_level);
  case O_METRICS_AUTH: {
    int m = http_metrics_auth_from_str(arg);
    if (m < 0) return error(ERR_INVALID, "invalid value '%s' for --metrics-auth: use user or none", arg);
    o->metrics_auth = (enum http_metrics_auth)m;
    return 0;
  }
  case O_ALLOW_PATH: return allow_path_add(&o->allow_paths, arg);
  case O_WEB: o->web_dir = arg; return 0;
  case O_CONSOLE_LISTEN: {
    unsigned char addr[16];
    if (inet_pton(AF_INET, arg, addr) != 1 && inet_pton(AF_INET6, arg, addr) != 1)
      return error(ERR_INVALID, "invalid value '%s' for --console-listen: give an IP address", arg);
    o->console_listen = arg;
    return 0;
  }
  case O_NBD_PORTS: {
    int first = 0, last = 0, used = 0;
    if (sscanf(arg, "%d-%d%n", &first, &last, &used) != 2 || arg[used] || first < 1 || last > 65535 ||
        first > last)
      return error(ERR_INVALID, "invalid value '%s' for --backup-nbd-ports: give FIRST-LAST, two TCP "
                   "ports, e.g. 10809-10909", arg);
    o->nbd_port_min = first;
    o->nbd_port_max = last;
    return 0;
  }
  case O_TLS_CERT: o->tls_cert = arg; return 0;
  case O_TLS_KEY: o->tls_key = arg; return 0;
  case O_CONFIG: o->config = arg; return 0;
  case O_CHECK_CONFIG: o->check_config = true; return 0;
  case O_VERSION: o->show_version = true; return 0;
  case 'h': o->show_help = true; return 0;
  }
  return error(ERR_INVALID, "unknown option");
}

/* keeps option I's value as text, to tell at SIGHUP which settings changed */
static void value_record(struct daemon_options *o, int i, const char *arg)
{
  const char *v = arg ? arg : "true";
  if (o->values[i]) {
    char *joined = xasprintf("%s\n%s", o->values[i], v);
    free(o->values[i]);
    o->values[i] = joined;
  } else {
    o->values[i] = xstrdup(v);
  }
}

/* Checks what getopt cannot: values that depend on each other or on the
 * system, without creating or changing anything. On error *KEY names the
 * option at fault. */
static int options_check(const struct daemon_options *o, const char **key)
{
  *key = "listen";
  if (http_check_listen(o->listen) < 0) return -1;
  *key = "db";
  if (o->db && store_check_url(o->db) < 0) return -1;
  *key = o->tls_cert ? "tls-key" : "tls-cert";
  if (!o->tls_cert != !o->tls_key)
    return error(ERR_INVALID, "--tls-cert and --tls-key go together: give both or neither");
  if (o->tls_cert && o->plain)
    return error(ERR_INVALID, "--tls-cert and --tls-key contradict --http");
  const char *files[] = {o->tls_cert, o->tls_key};
  for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
    *key = i ? "tls-key" : "tls-cert";
    if (files[i] && access(files[i], R_OK) < 0)
      return error(ERR_INVALID, "cannot read '%s': %s", files[i], strerror(errno));
  }
  if (o->tls_cert) {  /* PEM that parses, and a key that belongs to the certificate */
    *key = "tls-cert";
    struct pki_pems pems;
    int rc = pki_load(o->tls_cert, o->tls_key, &pems);
    pki_pems_clear(&pems);
    if (rc < 0) return -1;
  }
  *key = "state-dir";
  struct stat st;
  if (stat(o->state_dir, &st) == 0 && !S_ISDIR(st.st_mode))
    return error(ERR_INVALID, "'%s' exists and is not a directory", o->state_dir);
  return 0;
}

/* options_check, with the error naming the key and, when the file set it,
 * the file and line */
static int options_validate(const struct daemon_options *o)
{
  const char *key = NULL;
  if (options_check(o, &key) == 0) return 0;
  for (size_t i = 0; i < NOPTS; i++)
    if (strcmp(longopts[i].name, key) == 0 && o->lines[i])
      return error_prefix("%s:%d: key '%s': ", o->cfg.path, o->lines[i], key);
  return error_prefix("--%s: ", key);
}

/* Parses the configuration file and then ARGV (which wins) into O. On error
 * returns -1 with a message naming the file and line when the bad setting
 * came from the file. ARGV is not changed. */
static int options_parse(int argc, char *const *argv, struct daemon_options *o)
{
  *o = (struct daemon_options){
    .state_dir = "./var", .listen = "127.0.0.1:8443", .uri = "qemu:///system",
    .detach_timeout = 10, .token_ttl = 86400, .threads = 16, .event_retention_days = 30, .domain_type = DOMAIN_TYPE_AUTO,
    .log_level = LOG_INFO, .metrics_auth = HTTP_METRICS_AUTH_USER, .console_listen = "127.0.0.1",
  };
  /* pass 1, silent: where the file is, and which keys the command line sets */
  bool on_cmdline[NOPTS] = {false};
  AUTOFREE char **copy = xcalloc((size_t)argc + 1, sizeof *copy);
  memcpy(copy, argv, (size_t)argc * sizeof *copy);
  opterr = 0;
  optind = 0;
  int opt, idx;
  const char *config_path = NULL;
  while ((opt = getopt_long(argc, copy, "h", longopts, &idx)) != -1) {
    if (opt == '?' || opt == 'h') continue;
    on_cmdline[idx] = true;
    if (opt == O_CONFIG) config_path = optarg;
  }
  if (!config_path && access(DEFAULT_CONFIG, F_OK) == 0) config_path = DEFAULT_CONFIG;
  if (config_path && config_read(config_path, longopts, cmdline_only, &o->cfg) < 0) return -1;

  /* pass 2 over argv[0], the file's settings the command line does not
   * override, then the command line */
  o->args = xcalloc(o->cfg.n + (size_t)argc + 1, sizeof *o->args);
  int n = 0, nfile = 0;
  AUTOFREE const struct config_arg **from_file = xcalloc(o->cfg.n + 1, sizeof *from_file);
  o->args[n++] = argv[0];
  for (size_t i = 0; i < o->cfg.n; i++) {
    bool overridden = false;
    for (size_t j = 0; j < NOPTS; j++)
      if (on_cmdline[j] && strcmp(longopts[j].name, o->cfg.args[i].key) == 0) overridden = true;
    if (overridden) continue;
    from_file[nfile++] = &o->cfg.args[i];
    o->args[n++] = o->cfg.args[i].arg;
  }
  for (int i = 1; i < argc; i++) o->args[n++] = argv[i];
  opterr = 1;
  optind = 0;
  while ((opt = getopt_long(n, o->args, "h", longopts, &idx)) != -1) {
    if (opt == '?') return error(ERR_INVALID, "bad usage (see snapbackd --help)");
    if (option_apply(o, opt, optarg) < 0) {
      /* every file argument is one "--key=value" element before the first
       * command-line element, so optind - 1 is the one just read */
      int at = optind - 1;
      if (at >= 1 && at <= nfile)
        return error_prefix("%s:%d: key '%s': ", o->cfg.path, from_file[at - 1]->line, from_file[at - 1]->key);
      return -1;
    }
    if (opt == 'h') continue;
    value_record(o, idx, optarg);
    o->lines[idx] = optind - 1 >= 1 && optind - 1 <= nfile ? from_file[optind - 2]->line : 0;
  }
  if (optind < n) return error(ERR_INVALID, "unexpected argument '%s'", o->args[optind]);
  vec_push(&o->allow_paths, NULL);
  if (o->show_help || o->show_version) return 0;
  return options_validate(o);
}

/* ---- the running engine ---- */

/* SIGTERM/SIGINT/SIGHUP write their number to this pipe, which main() reads:
 * no race between testing a flag and sleeping, whichever thread takes it */
static int signal_pipe[2] = {-1, -1};
static void on_signal(int sig)
{
  int saved = errno;
  unsigned char b = (unsigned char)sig;
  if (write(signal_pipe[1], &b, 1) < 0) { /* full: a signal is pending anyway */ }
  errno = saved;
}

static int signals_install(void)
{
  if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
    return error(ERR_INTERNAL, "cannot create the signal pipe: %s", strerror(errno));
  struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

/* the next signal that arrived; waits for one */
static int signal_next(void)
{
  for (;;) {
    struct pollfd p = {.fd = signal_pipe[0], .events = POLLIN};
    if (poll(&p, 1, -1) < 0 && errno != EINTR) return SIGTERM;
    unsigned char b;
    if (read(signal_pipe[0], &b, 1) == 1) return b;
  }
}

/* creates admin@internal once; prints a generated password once. On a later
 * start a SNAPBACK_ADMIN_PASSWORD is ignored, and snapbackd says so. */
static int ensure_admin(struct engine *eng)
{
  struct store *st = engine_store(eng);
  const char *pw = getenv("SNAPBACK_ADMIN_PASSWORD");
  AUTOPTR(user) existing = user_get_by_name(st, "admin@internal");
  if (existing) {
    if (pw && *pw)
      log_warn("SNAPBACK_ADMIN_PASSWORD is ignored: user admin@internal already exists and keeps its "
               "password; change it with 'snapbackd user password admin@internal' (docs/snapbackd.md)");
    return 0;
  }
  if (error_code() != ERR_NOT_FOUND) return -1;
  error_clear();
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

static void apply_live(struct http_server *srv, const struct daemon_options *o)
{
  log_set_level(o->log_level);
  http_set_metrics_auth(srv, o->metrics_auth);
}

static bool is_live(const char *key)
{
  for (const char *const *k = live_keys; *k; k++)
    if (strcmp(*k, key) == 0) return true;
  return false;
}

/* SIGHUP: reopen the log, read the file and the options again, apply what
 * can change live, and say which other changes wait for a restart. A bad
 * file keeps the running settings. */
static void reload(struct http_server *srv, int argc, char *const *argv, struct daemon_options *cur)
{
  if (daemon_notify("RELOADING=1") < 0) log_warn("%s", error_message());
  log_reopen();
  struct daemon_options next;
  if (options_parse(argc, argv, &next) < 0) {
    log_err("SIGHUP: keeping the running settings: %s", error_message());
    error_clear();
    options_clear(&next);
    if (daemon_notify("READY=1") < 0) log_warn("%s", error_message());
    return;
  }
  for (size_t i = 0; i < NOPTS; i++) {
    const char *a = cur->values[i], *b = next.values[i];
    if ((!a && !b) || (a && b && strcmp(a, b) == 0) || is_live(longopts[i].name)) continue;
    log_warn("SIGHUP: '%s' changed; restart snapbackd to apply it", longopts[i].name);
  }
  apply_live(srv, &next);
  options_clear(cur);
  *cur = next;
  log_info("SIGHUP: reloaded %s (log level %s, metrics auth %s)", cur->cfg.path ? cur->cfg.path : "the options",
           log_level_to_str(cur->log_level), http_metrics_auth_to_str(cur->metrics_auth));
  if (daemon_notify("READY=1") < 0) log_warn("%s", error_message());
}

/* "HOST:PORT" with the port actually bound; caller frees */
static char *bound_address(const char *listen, int port)
{
  const char *colon = strrchr(listen, ':');
  return xasprintf("%.*s:%d", colon ? (int)(colon - listen) : (int)strlen(listen), listen, port);
}

/* the source tree's web/ for a build run in place (make run), else the
 * packaged copy */
static const char *default_web_dir(void)
{
  if (access(SNAPBACK_WEB_SOURCE_DIR "/index.html", R_OK) == 0) return SNAPBACK_WEB_SOURCE_DIR;
  return SNAPBACK_WEB_INSTALL_DIR;
}

/* runs the engine with the parsed options O until SIGTERM/SIGINT; the exit status */
static int run(int argc, char **argv, struct daemon_options *o)
{
  log_set_level(o->log_level);
  log_open();

  char abs_state[PATH_MAX];
  if (o->state_dir[0] != '/') {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) { perror("snapbackd: getcwd"); return 1; }
    const char *rel = strncmp(o->state_dir, "./", 2) == 0 ? o->state_dir + 2 : o->state_dir;
    if ((size_t)snprintf(abs_state, sizeof abs_state, "%s/%s", cwd, rel) >= sizeof abs_state) {
      fprintf(stderr, "snapbackd: state directory path too long\n");
      return 2;
    }
  } else {
    snprintf(abs_state, sizeof abs_state, "%s", o->state_dir);
  }

  xmlInitParser(); /* once, before worker threads parse request bodies */
  if (signals_install() < 0) {
    fprintf(stderr, "snapbackd: %s\n", error_message());
    return 1;
  }

  struct engine_options eo = {
    .state_dir = abs_state, .db_url = o->db, .libvirt_uri = o->uri, .domain_type = o->domain_type,
    .detach_timeout_ms = (int)o->detach_timeout * 1000, .event_retention_days = (int)o->event_retention_days,
    .allow_paths = (const char *const *)o->allow_paths.ptr, .console_listen = o->console_listen,
    .nbd_port_min = o->nbd_port_min, .nbd_port_max = o->nbd_port_max,
  };
  struct engine *eng = engine_open(&eo, NULL);
  if (!eng) {
    fprintf(stderr, "snapbackd: cannot start: %s\n", error_message());
    return 1;
  }
  if (ensure_admin(eng) < 0 || perm_ensure_admin(engine_store(eng)) < 0) {
    fprintf(stderr, "snapbackd: cannot create user admin@internal: %s\n", error_message());
    engine_close(eng);
    return 1;
  }
  AUTOFREE char *pki = xasprintf("%s/pki", abs_state);
  AUTOFREE char *imageio_sock = xasprintf("%s/imageio.sock", abs_state);
  struct http_options ho = {
    .listen = o->listen, .plain_http = o->plain, .pki_dir = pki, .tls_cert = o->tls_cert,
    .tls_key = o->tls_key, .token_ttl_ms = (int64_t)o->token_ttl * 1000, .max_body = 1 << 20,
    .threads = (unsigned)o->threads, .metrics_auth = o->metrics_auth, .imageio_socket = imageio_sock,
    .web_dir = o->web_dir ? o->web_dir : default_web_dir(),
  };
  struct http_server *srv = http_start(eng, &ho);
  if (!srv) {
    fprintf(stderr, "snapbackd: cannot serve on %s: %s\n", o->listen, error_message());
    engine_close(eng);
    return 1;
  }
  AUTOFREE char *bound = bound_address(o->listen, http_port(srv));
  log_info("serving oVirt API on %s://%s/ovirt-engine/api (state %s, host %s)",
           o->plain ? "http" : "https", bound, abs_state, o->uri);
  if (!o->plain && !o->tls_cert) log_info("clients trust %s/ca.pem", pki);
  if (daemon_notify("READY=1") < 0) log_warn("%s", error_message()); /* the API answers now */
  for (int sig; (sig = signal_next()) == SIGHUP;) reload(srv, argc, argv, o);
  log_info("shutting down; running VMs keep running");
  if (daemon_notify("STOPPING=1") < 0) log_warn("%s", error_message());
  http_stop(srv);
  engine_close(eng);
  return 0;
}

/* the index of a `user` or `group` subcommand in ARGV (the first word that
 * is not an option or an option's value), or ARGC when there is none */
static int subcommand_at(int argc, char **argv)
{
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "user") == 0 || strcmp(argv[i], "group") == 0) return i;
    if (strncmp(argv[i], "--", 2) != 0 || strchr(argv[i], '=')) continue;
    for (size_t j = 0; j < NOPTS; j++)
      if (strcmp(longopts[j].name, argv[i] + 2) == 0 && longopts[j].has_arg == required_argument) i++;
  }
  return argc;
}

int main(int argc, char **argv)
{
  struct daemon_options o;
  int rc = 0;
  /* glibc gives threads that contend an arena of their own (up to 8 per
   * core), each growing and fragmenting apart: under 200 clients (16
   * workers, a thread per connection) RSS crept up by 5% in a minute and
   * by 10 MB overall. Two arenas keep it flat (tests/load/README.md); an
   * operator's MALLOC_ARENA_MAX still wins. Before any thread starts. */
  if (!getenv("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, 2);
  /* `snapbackd [--state-dir DIR | --db URL] user|group ...`: the options
   * before the word say where the store is; the store alone is opened */
  int sub = subcommand_at(argc, argv);
  if (sub < argc) {
    if (options_parse(sub, argv, &o) < 0) {
      fprintf(stderr, "snapbackd: %s\n", error_message());
      rc = 2;
    } else {
      AUTOFREE char *url = o.db ? xstrdup(o.db) : xasprintf("sqlite:%s/snapback.db", o.state_dir);
      rc = usercmd_main(url, argc - sub, argv + sub);
    }
    options_clear(&o);
    return rc;
  }
  if (options_parse(argc, argv, &o) < 0) {
    fprintf(stderr, "snapbackd: %s\n", error_message());
    rc = 2;
  } else if (o.show_help) {
    fputs(usage, stdout);
  } else if (o.show_version) {
    puts("snapbackd 0.1.0");
  } else if (o.check_config) {
    if (o.cfg.path) printf("snapbackd: %s: the configuration is valid\n", o.cfg.path);
    else printf("snapbackd: no configuration file; the options are valid\n");
  } else {
    rc = run(argc, argv, &o);
  }
  options_clear(&o);
  return rc;
}
