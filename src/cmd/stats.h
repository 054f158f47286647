/* stats.h: oVirt's statistics of VMs, hosts and disks, measured from the
 * hypervisor. "current" values (percentages, rates) are measured over
 * STATS_INTERVAL_MS between two samples taken for the request: nothing is
 * polled in the background. */
#pragma once
#include <stddef.h>

struct engine;

#define STATS_INTERVAL_MS 250
#define STATS_MAX 16

/* one statistic, named as oVirt names it (ovirt-engine-api-model Statistic) */
struct statistic {
  const char *name, *description;
  const char *kind;   /* "gauge" or "counter" */
  const char *type;   /* "integer" or "decimal" */
  const char *unit;   /* "bytes", "percent", "bytes_per_second", "seconds", "none" */
  double value;
};

/* each fills out[] (STATS_MAX entries) and returns how many, or -1 with the
 * error recorded (ERR_NOT_FOUND for an object that does not exist). An
 * object that does not run (a VM that is down, a disk plugged nowhere)
 * reports zeros. */
int stats_vm(struct engine *eng, const char *vm_id, struct statistic out[STATS_MAX]);
int stats_host(struct engine *eng, const char *host_id, struct statistic out[STATS_MAX]);
int stats_disk(struct engine *eng, const char *disk_id, struct statistic out[STATS_MAX]);
