/* usercmd.h: `snapbackd user ...` and `snapbackd group ...` (usercmd.c) */
#pragma once

/* runs the subcommand in argv (argv[0] is "user" or "group") against the
 * store at DB_URL; returns the process exit status (0, 1 failure, 2 usage) */
int usercmd_main(const char *db_url, int argc, char **argv);
