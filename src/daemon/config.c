/* config.c: reads snapbackd.conf into getopt arguments (see config.h).
 *
 * The parser knows no key of its own: it checks each key against getopt's
 * option table, which is the one list of settings. Values are taken
 * verbatim after trimming blanks (a value in double quotes keeps its
 * blanks); they are checked by the same code that checks the flag, so a
 * value is valid in the file exactly when it is valid on the command line. */
#include "daemon/config.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/vec.h"
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

DEFINE_VEC(config_arg_vec, struct config_arg);

static void fclosep(FILE **f)
{
  if (*f) fclose(*f);
}

static char *trim(char *s)
{
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = 0;
  return s;
}

static const struct option *find_option(const struct option *longopts, const char *key)
{
  for (const struct option *o = longopts; o->name; o++)
    if (strcmp(o->name, key) == 0) return o;
  return NULL;
}

static bool listed(const char *const *list, const char *key)
{
  for (; list && *list; list++)
    if (strcmp(*list, key) == 0) return true;
  return false;
}

/* 1 for a true word, 0 for a false one, -1 for anything else */
static int parse_bool(const char *v)
{
  static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
    if (strcasecmp(v, yes[i]) == 0) return 1;
    if (strcasecmp(v, no[i]) == 0) return 0;
  }
  return -1;
}

/* one non-blank, non-comment line; appends its argument (if any) to ARGS */
static int config_line(const char *path, int lineno, char *line, const struct option *longopts,
                       const char *const *refused, struct config_arg_vec *args)
{
  char *eq = strchr(line, '=');
  if (!eq) {
    AUTOFREE char *key = xstrdup(trim(line));
    return error(ERR_INVALID, "%s:%d: key '%s': expected 'key = value'", path, lineno, key);
  }
  *eq = 0;
  char *key = trim(line), *value = trim(eq + 1);
  if (!*key) return error(ERR_INVALID, "%s:%d: a value without a key", path, lineno);
  if (strncmp(key, "--", 2) == 0)
    return error(ERR_INVALID, "%s:%d: key '%s': write the flag name without '--'", path, lineno, key);
  const struct option *o = find_option(longopts, key);
  if (!o) return error(ERR_INVALID, "%s:%d: key '%s': unknown key (the keys are snapbackd's long flags "
                                    "without '--', see snapbackd --help)", path, lineno, key);
  if (listed(refused, key))
    return error(ERR_INVALID, "%s:%d: key '%s': only valid on the command line", path, lineno, key);
  size_t vlen = strlen(value);
  if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
    value[vlen - 1] = 0;
    value++;
  } else if (strchr(value, '"')) {
    return error(ERR_INVALID, "%s:%d: key '%s': a quoted value must be quoted as a whole", path, lineno, key);
  }
  for (const char *p = value; *p; p++)
    if (iscntrl((unsigned char)*p) && *p != '\t')
      return error(ERR_INVALID, "%s:%d: key '%s': the value contains a control character", path, lineno, key);

  struct config_arg a = {.key = xstrdup(key), .line = lineno};
  if (o->has_arg == no_argument) {
    int b = parse_bool(value);
    if (b < 0) {
      free(a.key);
      return error(ERR_INVALID, "%s:%d: key '%s': expected true or false, not '%s'", path, lineno, key, value);
    }
    if (!b) {  /* false: as if the line were not there */
      free(a.key);
      return 0;
    }
    a.arg = xasprintf("--%s", key);
  } else {
    if (!*value) {
      free(a.key);
      return error(ERR_INVALID, "%s:%d: key '%s': the value is empty", path, lineno, key);
    }
    a.arg = xasprintf("--%s=%s", key, value);
  }
  vec_push(args, a);
  return 0;
}

int config_read(const char *path, const struct option *longopts, const char *const *refused,
                struct config *out)
{
  *out = (struct config){0};
  __attribute__((cleanup(fclosep))) FILE *f = fopen(path, "re");
  if (!f) return error(ERR_INVALID, "%s: cannot read the configuration file: %s", path, strerror(errno));
  struct config_arg_vec args = VEC_INIT;
  AUTOFREE char *line = NULL;
  size_t cap = 0;
  int lineno = 0;
  while (getline(&line, &cap, f) >= 0) {
    lineno++;
    char *s = trim(line);
    if (!*s || *s == '#') continue;
    if (config_line(path, lineno, s, longopts, refused, &args) < 0) {
      struct config tmp = {.args = args.ptr, .n = args.len};
      config_clear(&tmp);
      return -1;
    }
  }
  if (ferror(f)) {
    struct config tmp = {.args = args.ptr, .n = args.len};
    config_clear(&tmp);
    return error(ERR_INVALID, "%s: cannot read the configuration file", path);
  }
  out->path = xstrdup(path);
  out->args = args.ptr;
  out->n = args.len;
  return 0;
}

void config_clear(struct config *c)
{
  if (!c) return;
  for (size_t i = 0; i < c->n; i++) {
    free(c->args[i].arg);
    free(c->args[i].key);
  }
  free(c->args);
  free(c->path);
  *c = (struct config){0};
}
