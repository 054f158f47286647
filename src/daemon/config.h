/* config.h: snapbackd's configuration file (docs/snapbackd.md, CONFIGURATION).
 *
 * The file holds `key = value` lines, `#` comments and blank lines. A key is
 * the long name of a command-line flag without its `--`, so the set of keys
 * is getopt's own option table: a flag added to snapbackd is a config key
 * with no change here. A flag without a value takes true/false (yes/no,
 * on/off, 1/0). A repeatable flag may repeat.
 *
 * config_read() turns the file into getopt arguments ("--key=value"), each
 * remembering its line, which main.c puts in front of the command line's own
 * arguments: the command line, parsed later, wins. */
#pragma once
#include <getopt.h>
#include <stddef.h>

struct config_arg {
  char *arg;   /* "--key=value" or "--key", for getopt */
  char *key;   /* "key" */
  int line;    /* 1-based line in the file */
};

struct config {
  char *path;              /* the file read; NULL when none */
  struct config_arg *args; /* in file order */
  size_t n;
};

/* Reads PATH against getopt's table LONGOPTS (NULL-name-terminated). Keys
 * listed in REFUSED (NULL-terminated: "help", "config"...) are flags that
 * make no sense in a file. On error returns -1 with ERR_INVALID whose
 * message is "PATH:LINE: key 'KEY': problem" (or "PATH: problem" when the
 * file cannot be read); OUT is then empty. */
int config_read(const char *path, const struct option *longopts, const char *const *refused,
                struct config *out);
/* frees what config_read filled; OUT stays usable; NULL-safe */
void config_clear(struct config *c);
