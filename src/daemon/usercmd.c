/* usercmd.c: `snapbackd [--state-dir DIR | --db URL] user|group ...`, the
 * host administrator's tools for internal users and groups.
 *
 * They open the store only (no libvirt, no HTTP), so they work while the
 * daemon runs: SQLite serialises the two processes, and the daemon reads a
 * user's lock and permissions on every request, so `user lock` takes effect
 * at the next request, and a changed password at the next login (a Basic
 * credential cached by the daemon lives for at most one minute).
 *
 *   user add NAME [--password-file FILE]     NAME or NAME@internal
 *   user password NAME [--password-file FILE]
 *   user lock NAME | user unlock NAME | user list
 *   group add NAME | group list
 *   group adduser GROUP USER | group deluser GROUP USER
 *
 * Without --password-file the password is the first line of standard input. */
#include "daemon/usercmd.h"
#include "cmd/perm.h"
#include "cmd/auth.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"
#include "util/uuid.h"
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the first line of FILE (or stdin for NULL), without its newline */
static char *read_password(const char *file)
{
  FILE *f = file ? fopen(file, "r") : stdin;
  if (!f) return error(ERR_INVALID, "cannot read password file '%s'", file), NULL;
  char line[1024];
  char *got = fgets(line, sizeof line, f);
  if (file) fclose(f);
  if (!got) return error(ERR_INVALID, "no password given: put it in --password-file FILE or on standard input"), NULL;
  line[strcspn(line, "\r\n")] = 0;
  if (!*line) return error(ERR_INVALID, "the password is empty"), NULL;
  if (strlen(line) < 8) return error(ERR_INVALID, "the password is too short: use at least 8 characters"), NULL;
  char *pw = xstrdup(line);
  OPENSSL_cleanse(line, sizeof line);
  return pw;
}

static int check_name(const char *what, const char *name)
{
  if (!name || !*name) return error(ERR_INVALID, "missing %s name", what);
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    if (*p < 0x21 || *p == 0x7f || *p == '/' || *p == ':')
      return error(ERR_INVALID, "invalid %s name '%s': use letters, digits, '.', '-', '_' and '@'", what, name);
  return 0;
}

static struct user *find_user(struct store *st, const char *name)
{
  AUTOFREE char *full = auth_full_username(name);
  struct user *u = user_get_by_name(st, full);
  if (!u && error_code() == ERR_NOT_FOUND) error(ERR_NOT_FOUND, "user '%s' does not exist", full);
  return u;
}

static struct usergroup *find_group(struct store *st, const char *name)
{
  AUTOLIST(usergroup) l = usergroup_list_by_name(st, name);
  if (!l) return NULL;
  if (!l[0]) return error(ERR_NOT_FOUND, "group '%s' does not exist", name), NULL;
  return steal_pointer(&l[0]);
}

static int user_add(struct store *st, const char *name, const char *pwfile)
{
  if (check_name("user", name) < 0) return -1;
  AUTOFREE char *full = auth_full_username(name);
  if (strcmp(strchr(full, '@'), "@internal") != 0)
    return error(ERR_INVALID, "invalid user name '%s': internal users are NAME@internal", full);
  AUTOPTR(user) existing = user_get_by_name(st, full);
  if (existing) return error(ERR_CONFLICT, "cannot add user '%s': it exists", full);
  if (error_code() != ERR_NOT_FOUND) return -1;
  error_clear();
  AUTOFREE char *pw = read_password(pwfile);
  if (!pw) return -1;
  AUTOFREE char *hash = auth_hash_password(pw);
  OPENSSL_cleanse(pw, strlen(pw));
  if (!hash) return -1;
  char id[UUID_STRLEN + 1];
  if (uuid_generate_str(id) < 0) return -1;
  struct user u = {.id = id, .name = full, .password_hash = hash};
  if (user_insert(st, &u) < 0) return -1;
  printf("added user %s (id %s); it can log in once a role with LOGIN is granted to it\n", full, id);
  return 0;
}

static int user_password(struct store *st, const char *name, const char *pwfile)
{
  AUTOPTR(user) u = find_user(st, name);
  if (!u) return -1;
  AUTOFREE char *pw = read_password(pwfile);
  if (!pw) return -1;
  char *hash = auth_hash_password(pw);
  OPENSSL_cleanse(pw, strlen(pw));
  if (!hash) return -1;
  free(u->password_hash);
  u->password_hash = hash;
  if (user_update(st, u) < 0) return -1;
  printf("changed the password of %s\n", u->name);
  return 0;
}

static int user_lock(struct store *st, const char *name, bool lock)
{
  AUTOPTR(user) u = find_user(st, name);
  if (!u) return -1;
  bool locked = perm_user_locked(st, u->id);
  if (lock && !locked) {
    struct user_lock l = {.user_id = u->id, .since_ms = now_ms()};
    if (user_lock_insert(st, &l) < 0) return -1;
  } else if (!lock && locked) {
    if (user_lock_delete(st, u->id) < 0) return -1;
  }
  printf("%s %s\n", lock ? "locked" : "unlocked", u->name);
  return 0;
}

static int user_list_print(struct store *st)
{
  AUTOLIST(user) l = user_list_all(st);
  if (!l) return -1;
  for (size_t i = 0; l[i]; i++)
    printf("%s\t%s%s\n", l[i]->name, l[i]->id, perm_user_locked(st, l[i]->id) ? "\tlocked" : "");
  return 0;
}

static int group_add(struct store *st, const char *name)
{
  if (check_name("group", name) < 0) return -1;
  AUTOPTR(usergroup) existing = find_group(st, name);
  if (existing) return error(ERR_CONFLICT, "cannot add group '%s': it exists", name);
  if (error_code() != ERR_NOT_FOUND) return -1;
  error_clear();
  char id[UUID_STRLEN + 1];
  if (uuid_generate_str(id) < 0) return -1;
  struct usergroup g = {.id = id, .name = (char *)name, .domain = (char *)"internal-authz"};
  if (usergroup_insert(st, &g) < 0) return -1;
  printf("added group %s (id %s)\n", name, id);
  return 0;
}

static int group_member(struct store *st, const char *group, const char *user, bool add)
{
  AUTOPTR(usergroup) g = find_group(st, group);
  AUTOPTR(user) u = g ? find_user(st, user) : NULL;
  if (!u) return -1;
  AUTOLIST(group_member) l = group_member_list_by_pair(st, g->id, u->id);
  if (!l) return -1;
  if (add && !l[0]) {
    char id[UUID_STRLEN + 1];
    if (uuid_generate_str(id) < 0) return -1;
    struct group_member m = {.id = id, .group_id = g->id, .user_id = u->id};
    if (group_member_insert(st, &m) < 0) return -1;
  } else if (!add && l[0]) {
    if (group_member_delete(st, l[0]->id) < 0) return -1;
  }
  printf("%s %s group %s\n", u->name, add ? "is in" : "is not in", g->name);
  return 0;
}

static int group_list_print(struct store *st)
{
  AUTOLIST(usergroup) l = usergroup_list_all(st);
  if (!l) return -1;
  for (size_t i = 0; l[i]; i++) {
    AUTOLIST(user) members = user_list_in_group(st, l[i]->id);
    printf("%s\t%s", l[i]->name, l[i]->id);
    for (size_t j = 0; members && members[j]; j++) printf("%s%s", j ? "," : "\t", members[j]->name);
    putchar('\n');
  }
  return 0;
}

int usercmd_main(const char *db_url, int argc, char **argv)
{
  const char *pwfile = NULL;
  const char *args[4] = {0};
  int nargs = 0;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--password-file") == 0 && i + 1 < argc) pwfile = argv[++i];
    else if (strncmp(argv[i], "--password-file=", 16) == 0) pwfile = argv[i] + 16;
    else if (argv[i][0] == '-' || nargs == 4) {
      fprintf(stderr, "snapbackd: unexpected argument '%s'\n", argv[i]);
      return 2;
    } else args[nargs++] = argv[i];
  }
  const char *kind = args[0], *verb = args[1];
  bool user = kind && strcmp(kind, "user") == 0;
  static const struct { const char *kind, *verb; int nargs; } forms[] = {
    {"user", "add", 3}, {"user", "password", 3}, {"user", "lock", 3}, {"user", "unlock", 3},
    {"user", "list", 2}, {"group", "add", 3}, {"group", "list", 2}, {"group", "adduser", 4},
    {"group", "deluser", 4},
  };
  bool known = false;
  for (size_t i = 0; i < ARRAY_SIZE(forms); i++)
    known |= kind && verb && strcmp(forms[i].kind, kind) == 0 && strcmp(forms[i].verb, verb) == 0 &&
             forms[i].nargs == nargs;
  if (!known) {
    fputs("usage: snapbackd [--state-dir DIR | --db URL] user add|password|lock|unlock NAME [--password-file FILE]\n"
          "       snapbackd [--state-dir DIR | --db URL] user list\n"
          "       snapbackd [--state-dir DIR | --db URL] group add NAME | group list\n"
          "       snapbackd [--state-dir DIR | --db URL] group adduser|deluser GROUP USER\n", stderr);
    return 2;
  }
  struct store *st = store_open(db_url);
  if (!st) {
    fprintf(stderr, "snapbackd: cannot open the store: %s\n", error_message());
    return 1;
  }
  int rc;
  if (user && strcmp(verb, "add") == 0) rc = user_add(st, args[2], pwfile);
  else if (user && strcmp(verb, "password") == 0) rc = user_password(st, args[2], pwfile);
  else if (user && strcmp(verb, "lock") == 0) rc = user_lock(st, args[2], true);
  else if (user && strcmp(verb, "unlock") == 0) rc = user_lock(st, args[2], false);
  else if (user) rc = user_list_print(st);
  else if (strcmp(verb, "add") == 0) rc = group_add(st, args[2]);
  else if (strcmp(verb, "list") == 0) rc = group_list_print(st);
  else rc = group_member(st, args[2], args[3], strcmp(verb, "adduser") == 0);
  if (rc < 0) fprintf(stderr, "snapbackd: %s\n", error_message());
  store_close(st);
  return rc < 0 ? 1 : 0;
}
