/* main.c: snapback, the backup application (docs/snapback.md).
 *
 * Options may come before or after the command. Engine settings come from
 * the options, else the environment (SNAPBACK_URL, SNAPBACK_USER,
 * SNAPBACK_PASSWORD, SNAPBACK_CACERT), else ~/.config/snapback.conf. */
#include "cli/cli.h"
#include "cli/transfer.h"
#include "util/buf.h"
#include "util/err.h"
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

static const char USAGE[] =
    "usage: snapback COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  init                 create a repository (--repo, optional --key-file)\n"
    "  backup VM            back up a VM: incremental from its last backup, or --full\n"
    "  backups [VM]         list the complete backups (of one VM: VM or --vm VM)\n"
    "  restore BACKUP       create a VM from a backup (--name NEW)\n"
    "  verify               re-read and re-hash every chunk\n"
    "  prune                remove backups outside --keep-last/--keep-daily/--keep-weekly\n"
    "  gc                   remove chunks no backup uses\n"
    "\n"
    "options:\n"
    "  --repo PATH          the repository (or SNAPBACK_REPO)\n"
    "  --key-file FILE      key of an encrypted repository (or SNAPBACK_KEY_FILE)\n"
    "  --url URL            the engine API, https://HOST:PORT/ovirt-engine/api (or SNAPBACK_URL)\n"
    "  --user USER          e.g. admin@internal (or SNAPBACK_USER)\n"
    "  --password-file FILE the password's file (or SNAPBACK_PASSWORD)\n"
    "  --cacert FILE        the CA to trust (or SNAPBACK_CACERT)\n"
    "  --name NAME          restore: the new VM's name (default: the original's)\n"
    "  --storage-domain SD  restore: where the disks go (default: the first data domain)\n"
    "  --cluster NAME       restore: the cluster (default: the original's, else Default)\n"
    "  --keep-last N, --keep-daily N, --keep-weekly N   prune policy (per VM)\n"
    "  --dry-run            prune, gc: say what would be removed\n"
    "  --full               backup: a full backup even when an incremental one is possible\n"
    "  --vm VM              backups: only this VM's backups (name or id)\n"
    "  --workers N          backup, restore, verify: threads (default: 2 x CPUs for backup and restore,\n"
    "                       CPUs for verify)\n"
    "  --json               machine-readable output on stdout\n"
    "  --help, --version\n"
    "\n"
    "exit status: 0 ok, 1 failure, 2 usage, 3 verify found damage\n";

/* --json anywhere on the command line: usage errors are then JSON too */
static bool json_output;

/* a usage error: the message on stderr and, with --json, the documented
 * {"error", "code"} on stdout; exit status 2 */
static int PRINTF(1, 2) usage_error(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  AUTOFREE char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  va_end(ap);
  fprintf(stderr, "snapback: %s\nTry 'snapback --help'.\n", msg ? msg : "bad usage");
  if (json_output) {
    json_t *j = json_pack("{s:s, s:s}", "error", msg ? msg : "bad usage", "code", "usage");
    json_dumpf(j, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(j);
  }
  return CLI_USAGE;
}

void cli_note(const struct cli *c, const char *fmt, ...)
{
  (void)c;
  va_list ap;
  va_start(ap, fmt);
  fputs("snapback: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int cli_report_error(struct cli *c, const char *what)
{
  const char *msg = error_message();
  if (c->usage) return usage_error("%s", *msg ? msg : "bad usage");
  fprintf(stderr, "snapback: %s%s%s\n", what ? what : "", what ? ": " : "", *msg ? msg : "failed");
  if (c->json) {
    json_t *j = json_pack("{s:s, s:s}", "error", *msg ? msg : "failed", "code", error_code_name(error_code()));
    json_dumpf(j, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(j);
  }
  return CLI_FAILED;
}

struct repo *cli_repo_open(struct cli *c, bool create, enum repo_lock_mode mode)
{
  if (!c->repo) {
    error(ERR_INVALID, "no repository: give --repo PATH (or SNAPBACK_REPO)");
    return NULL;
  }
  if (create && !repo_exists(c->repo)) {
    if (repo_init(c->repo, c->key_file) < 0) return NULL;
    cli_note(c, "created %srepository '%s'", c->key_file ? "encrypted " : "", c->repo);
  }
  struct repo *r = repo_open(c->repo, c->key_file);
  if (!r) return NULL;
  if (c->key_file_given && !repo_encrypted(r)) {
    error(ERR_INVALID, "repository '%s' is not encrypted: leave out %s", c->repo, c->key_file_given);
    c->usage = true;
    repo_close(r);
    return NULL;
  }
  if (repo_lock(r, mode, NULL, NULL) < 0) {
    repo_close(r);
    return NULL;
  }
  return r;
}

int cli_init_repo(struct cli *c)
{
  if (!c->repo) return usage_error("%s", "init needs --repo PATH");
  if (repo_init(c->repo, c->key_file) < 0) return cli_report_error(c, "cannot create the repository");
  if (c->json) printf("{\"repository\": \"%s\", \"encrypted\": %s}\n", c->repo, c->key_file ? "true" : "false");
  else printf("created %srepository %s\n", c->key_file ? "encrypted " : "", c->repo);
  return CLI_OK;
}

/* ---- settings ---- */

static char *read_first_line(const char *path)
{
  FILE *f = fopen(path, "r");
  if (!f) {
    error(ERR_INVALID, "cannot read password file '%s': %s", path, strerror(errno));
    return NULL;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, f);
  fclose(f);
  if (n < 0) {
    free(line);
    return xstrdup("");
  }
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
  return line;
}

/* fills unset settings from ~/.config/snapback.conf (key = value lines);
 * a line that is not a known key = value fails (usage error) */
static int read_config_file(struct cli *c, char **password_file)
{
  const char *home = getenv("HOME");
  const char *xdg = getenv("XDG_CONFIG_HOME");
  AUTOFREE char *path = xdg && *xdg ? xasprintf("%s/snapback.conf", xdg)
                        : home ? xasprintf("%s/.config/snapback.conf", home) : NULL;
  if (!path) return 0;
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char *line = NULL;
  size_t cap = 0;
  int lineno = 0, rc = 0;
  while (rc == 0 && getline(&line, &cap, f) >= 0) {
    lineno++;
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (*s == '#' || *s == '\n' || *s == '\r' || !*s) continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      rc = usage_error("%s:%d: expected 'key = value'", path, lineno);
      break;
    }
    char *k = s, *v = eq + 1, *ke = eq;
    while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t')) ke--;
    *ke = '\0';
    while (*v == ' ' || *v == '\t') v++;
    size_t vl = strlen(v);
    while (vl && (v[vl - 1] == '\n' || v[vl - 1] == '\r' || v[vl - 1] == ' ')) v[--vl] = '\0';
    char **slot = strcmp(k, "url") == 0 ? &c->conf.url
                  : strcmp(k, "user") == 0 ? &c->conf.user
                  : strcmp(k, "password") == 0 ? &c->conf.password
                  : strcmp(k, "cacert") == 0 ? &c->conf.cacert
                  : strcmp(k, "password_file") == 0 ? password_file
                  : strcmp(k, "repo") == 0 ? &c->repo
                  : strcmp(k, "key_file") == 0 ? &c->key_file : NULL;
    if (!slot) {
      rc = usage_error("%s:%d: unknown key '%s' (known: url, user, password, password_file, cacert, repo, "
                       "key_file)", path, lineno, k);
      break;
    }
    if (!*slot) *slot = xstrdup(v);
  }
  free(line);
  fclose(f);
  return rc;
}

static void from_env(char **slot, const char *var)
{
  const char *v = getenv(var);
  if (!*slot && v && *v) *slot = xstrdup(v);
}

static void on_signal(int sig)
{
  if (cli_interrupted) {
    signal(sig, SIG_DFL);
    raise(sig);
  }
  cli_interrupted = 1;
}

static int parse_count(const char *opt, const char *s, int *out)
{
  char *end;
  long v = strtol(s, &end, 10);
  if (!*s || *end || v < 0 || v > 1000000) {
    usage_error("invalid %s '%s': give a number from 0 to 1000000", opt, s);
    return -1;
  }
  *out = (int)v;
  return 0;
}

static void cli_settings_free(struct cli *c)
{
  client_conf_clear(&c->conf);
  free(c->repo);
  free(c->key_file);
}

enum {
  OPT_REPO = 256, OPT_KEY, OPT_URL, OPT_USER, OPT_PASSFILE, OPT_CACERT, OPT_NAME, OPT_SD, OPT_CLUSTER,
  OPT_LAST, OPT_DAILY, OPT_WEEKLY, OPT_DRY, OPT_WORKERS, OPT_JSON, OPT_HELP, OPT_VERSION, OPT_FULL, OPT_VM,
  OPT_END,
};
#define OPT_BIT(o) (1ull << ((o) - OPT_REPO))
/* options every command takes */
#define OPTS_COMMON (OPT_BIT(OPT_REPO) | OPT_BIT(OPT_KEY) | OPT_BIT(OPT_JSON))
/* the engine's settings */
#define OPTS_ENGINE (OPT_BIT(OPT_URL) | OPT_BIT(OPT_USER) | OPT_BIT(OPT_PASSFILE) | OPT_BIT(OPT_CACERT))

/* what each command takes: an option given to a command it does not apply
 * to is refused, never ignored */
static const struct command {
  const char *name;
  int nargs;            /* positional arguments: exactly this many (-1: 0 or 1) */
  bool repo, engine;    /* needs a repository, an engine */
  unsigned long long opts;
} COMMANDS[] = {
  {"init", 0, true, false, OPTS_COMMON},
  {"backup", 1, true, true, OPTS_COMMON | OPTS_ENGINE | OPT_BIT(OPT_WORKERS) | OPT_BIT(OPT_FULL)},
  {"backups", -1, true, false, OPTS_COMMON | OPT_BIT(OPT_VM)},
  {"list", -1, true, false, OPTS_COMMON | OPT_BIT(OPT_VM)},
  {"restore", 1, true, true,
   OPTS_COMMON | OPTS_ENGINE | OPT_BIT(OPT_NAME) | OPT_BIT(OPT_SD) | OPT_BIT(OPT_CLUSTER) | OPT_BIT(OPT_WORKERS)},
  {"verify", 0, true, false, OPTS_COMMON | OPT_BIT(OPT_WORKERS)},
  {"prune", 0, true, false,
   OPTS_COMMON | OPT_BIT(OPT_LAST) | OPT_BIT(OPT_DAILY) | OPT_BIT(OPT_WEEKLY) | OPT_BIT(OPT_DRY)},
  {"gc", 0, true, false, OPTS_COMMON | OPT_BIT(OPT_DRY)},
};

int main(int argc, char **argv)
{
  static const struct option opts[] = {
    {"repo", required_argument, NULL, OPT_REPO},
    {"key-file", required_argument, NULL, OPT_KEY},
    {"url", required_argument, NULL, OPT_URL},
    {"user", required_argument, NULL, OPT_USER},
    {"password-file", required_argument, NULL, OPT_PASSFILE},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"name", required_argument, NULL, OPT_NAME},
    {"storage-domain", required_argument, NULL, OPT_SD},
    {"cluster", required_argument, NULL, OPT_CLUSTER},
    {"keep-last", required_argument, NULL, OPT_LAST},
    {"keep-daily", required_argument, NULL, OPT_DAILY},
    {"keep-weekly", required_argument, NULL, OPT_WEEKLY},
    {"dry-run", no_argument, NULL, OPT_DRY},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {"full", no_argument, NULL, OPT_FULL},
    {"vm", required_argument, NULL, OPT_VM},
    {NULL, 0, NULL, 0},
  };
  const char *given[OPT_END - OPT_REPO] = {0}; /* how each option was spelled, when given */
  for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
    if (strcmp(argv[i], "--json") == 0) json_output = true;
  /* every return frees the settings */
  __attribute__((cleanup(cli_settings_free))) struct cli c = {0};
  AUTOFREE char *password_file = NULL;
  bool policy_given = false;
  int opt;
  opterr = 0;
  int longindex = -1;
  while ((opt = getopt_long(argc, argv, ":", opts, &longindex)) != -1) {
    if (opt >= OPT_REPO && opt < OPT_END && longindex >= 0) given[opt - OPT_REPO] = opts[longindex].name;
    longindex = -1;
    switch (opt) {
    case OPT_REPO: free(c.repo); c.repo = xstrdup(optarg); break;
    case OPT_KEY: free(c.key_file); c.key_file = xstrdup(optarg); break;
    case OPT_URL: free(c.conf.url); c.conf.url = xstrdup(optarg); break;
    case OPT_USER: free(c.conf.user); c.conf.user = xstrdup(optarg); break;
    case OPT_PASSFILE: free(password_file); password_file = xstrdup(optarg); break;
    case OPT_CACERT: free(c.conf.cacert); c.conf.cacert = xstrdup(optarg); break;
    case OPT_NAME: c.name = optarg; break;
    case OPT_SD: c.storage_domain = optarg; break;
    case OPT_CLUSTER: c.cluster = optarg; break;
    case OPT_LAST: if (parse_count("--keep-last", optarg, &c.policy.keep_last) < 0) return CLI_USAGE; policy_given = true; break;
    case OPT_DAILY: if (parse_count("--keep-daily", optarg, &c.policy.keep_daily) < 0) return CLI_USAGE; policy_given = true; break;
    case OPT_WEEKLY: if (parse_count("--keep-weekly", optarg, &c.policy.keep_weekly) < 0) return CLI_USAGE; policy_given = true; break;
    case OPT_DRY: c.dry_run = true; break;
    case OPT_WORKERS:
      if (parse_count("--workers", optarg, &c.workers) < 0 || c.workers < 1 || c.workers > 64)
        return usage_error("invalid --workers '%s': give a number from 1 to 64", optarg);
      break;
    case OPT_FULL: c.full = true; break;
    case OPT_VM: c.vm = optarg; break;
    case OPT_JSON: c.json = true; break;
    case OPT_HELP: fputs(USAGE, stdout); return CLI_OK;
    case OPT_VERSION: puts("snapback " SNAPBACK_VERSION); return CLI_OK;
    case ':': return usage_error("option '%s' needs a value", argv[optind - 1]);
    default: return usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind >= argc) return usage_error("%s", "no command given");
  const char *cmd = argv[optind];
  const char *arg = optind + 1 < argc ? argv[optind + 1] : NULL;
  int nargs = argc - optind - 1;
  const struct command *command = NULL;
  for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
    if (strcmp(COMMANDS[i].name, cmd) == 0) command = &COMMANDS[i];
  if (!command) return usage_error("unknown command '%s'", cmd);
  for (int o = OPT_REPO; o < OPT_END; o++)
    if (given[o - OPT_REPO] && o != OPT_HELP && o != OPT_VERSION && !(command->opts & OPT_BIT(o)))
      return usage_error("option '--%s' does not apply to '%s'", given[o - OPT_REPO], cmd);
  if (command->nargs >= 0 && nargs != command->nargs)
    return nargs > command->nargs ? usage_error("unexpected argument '%s' for '%s'", argv[optind + 1 + command->nargs], cmd)
                                  : usage_error("'%s' needs exactly one argument", cmd);
  if (command->nargs < 0 && nargs > 1) return usage_error("unexpected argument '%s' for '%s'", argv[optind + 2], cmd);
  if (command->nargs < 0 && nargs == 1) {
    if (c.vm) return usage_error("give the VM once: as an argument or with --vm, not both");
    c.vm = arg;
  }
  if (given[OPT_KEY - OPT_REPO]) c.key_file_given = "--key-file";
  else if (getenv("SNAPBACK_KEY_FILE") && *getenv("SNAPBACK_KEY_FILE")) c.key_file_given = "SNAPBACK_KEY_FILE";
  c.json = json_output;

  /* settings: options, then the environment, then the config file */
  from_env(&c.repo, "SNAPBACK_REPO");
  from_env(&c.key_file, "SNAPBACK_KEY_FILE");
  from_env(&c.conf.url, "SNAPBACK_URL");
  from_env(&c.conf.user, "SNAPBACK_USER");
  from_env(&c.conf.cacert, "SNAPBACK_CACERT");
  if (!password_file) from_env(&c.conf.password, "SNAPBACK_PASSWORD");
  int conf_rc;
  if (!password_file && !c.conf.password) conf_rc = read_config_file(&c, &password_file);
  else {
    char *ignored = NULL;
    conf_rc = read_config_file(&c, &ignored);
    free(ignored);
  }
  if (conf_rc != 0) return CLI_USAGE;
  if (password_file && !c.conf.password && command->engine) {
    c.conf.password = read_first_line(password_file);
    if (!c.conf.password) return usage_error("%s", error_message());
  }
  if (command->repo && !c.repo) return usage_error("'%s' needs --repo PATH (or SNAPBACK_REPO)", cmd);
  if (command->engine && (!c.conf.url || !c.conf.user || !c.conf.password))
    return usage_error("'%s' needs an engine: give --url, --user and --password-file (or SNAPBACK_URL, "
                       "SNAPBACK_USER, SNAPBACK_PASSWORD, or ~/.config/snapback.conf)", cmd);

  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  int rc;
  if (strcmp(cmd, "init") == 0) rc = cli_init_repo(&c);
  else if (strcmp(cmd, "backup") == 0) rc = cli_backup(&c, arg);
  else if (strcmp(cmd, "restore") == 0) rc = cli_restore(&c, arg);
  else if (strcmp(cmd, "backups") == 0 || strcmp(cmd, "list") == 0) rc = cli_list(&c);
  else if (strcmp(cmd, "verify") == 0) rc = cli_verify(&c);
  else if (strcmp(cmd, "prune") == 0) {
    bool keeps = c.policy.keep_last || c.policy.keep_daily || c.policy.keep_weekly;
    rc = policy_given && keeps
             ? cli_prune(&c)
             : usage_error("%s", "prune needs a policy that keeps something: --keep-last, --keep-daily "
                                 "and/or --keep-weekly with a count above 0");
  } else rc = cli_gc(&c);

  return rc;
}
