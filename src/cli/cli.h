/* cli.h: the snapback command line: options shared by every command, and
 * one entry point per command (backup.c, restore.c, repocmd.c). */
#pragma once
#include <stdbool.h>
#include "cli/client.h"
#include "repo/repo.h"
#include "util/cleanup.h"

/* exit codes (docs/snapback.md) */
enum {
  CLI_OK = 0,
  CLI_FAILED = 1,   /* the command failed; what it created is cleaned up */
  CLI_USAGE = 2,    /* bad options or arguments */
  CLI_DAMAGED = 3,  /* verify found damaged or missing chunks */
};

struct cli {
  char *repo, *key_file;
  bool json;
  struct client_conf conf;
  const char *name;           /* restore --name */
  const char *storage_domain; /* restore --storage-domain */
  const char *cluster;        /* restore --cluster */
  struct prune_policy policy;
  bool dry_run;
  bool full;                  /* backup --full */
  const char *vm;             /* backups VM / --vm VM */
  const char *key_file_given; /* "--key-file" or "SNAPBACK_KEY_FILE" when the user gave a key */
  bool usage;                 /* the recorded error is a usage error (exit 2) */
  int workers;                /* store threads; 0 picks the CPU count */
};

int cli_init_repo(struct cli *c);
int cli_backup(struct cli *c, const char *vm);
int cli_restore(struct cli *c, const char *backup);
int cli_list(struct cli *c);
int cli_verify(struct cli *c);
int cli_prune(struct cli *c);
int cli_gc(struct cli *c);

/* opens --repo (creating it when create is true and it does not exist) and
 * takes the lock; NULL with the error recorded */
struct repo *cli_repo_open(struct cli *c, bool create, enum repo_lock_mode mode);
/* prints the recorded error ("snapback: MESSAGE") and, with --json, an
 * {"error": ...} object on stdout; returns CLI_FAILED */
int cli_report_error(struct cli *c, const char *what);
/* a line of information on stderr (progress and notes; results go to stdout) */
void cli_note(const struct cli *c, const char *fmt, ...) PRINTF(2, 3);
