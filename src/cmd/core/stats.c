/* stats.c: statistics of VMs, hosts and disks (see stats.h).
 *
 * Counters come from the host through hyper_ops (domain_stats, host_stats);
 * rates and percentages are the difference of two samples STATS_INTERVAL_MS
 * apart, so a request costs that long and a reading is never stale. */
#include "cmd/stats.h"
#include "cmd/internal.h"
#include "hyper/hyper.h"
#include "util/err.h"
#include <string.h>
#include <time.h>

static void sleep_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0) {}
}

static void put(struct statistic out[STATS_MAX], int *n, const char *name, const char *desc,
                const char *kind, const char *type, const char *unit, double value)
{
  if (*n >= STATS_MAX) return;
  out[(*n)++] = (struct statistic){name, desc, kind, type, unit, value};
}

static double pct(int64_t part, int64_t whole)
{
  if (whole <= 0 || part <= 0) return 0;
  double v = 100.0 * (double)part / (double)whole;
  return v > 100 ? 100 : v;
}

static double rate(int64_t delta, int64_t ns)
{
  return ns > 0 && delta > 0 ? (double)delta * 1e9 / (double)ns : 0;
}

/* two samples of the running domain; -1 with ERR_NOT_FOUND when it does not run */
static int domain_samples(struct engine *eng, const char *host_id, const char *vm_id,
                          struct hyper_domain_stats *a, struct hyper_domain_stats *b)
{
  const struct hyper_ops *ops;
  struct hyper *h = engine_hyper(eng, host_id, &ops);
  if (!h) return -1;
  if (!ops->domain_stats) return error(ERR_UNSUPPORTED, "the host's hypervisor has no statistics");
  if (ops->domain_stats(h, vm_id, a) < 0) return -1;
  sleep_ms(STATS_INTERVAL_MS);
  if (ops->domain_stats(h, vm_id, b) < 0) {
    hyper_domain_stats_clear(a);
    return -1;
  }
  return 0;
}

int stats_vm(struct engine *eng, const char *vm_id, struct statistic out[STATS_MAX])
{
  AUTOPTR(vm) vm = vm_get(eng->st, vm_id);
  if (!vm) return -1;
  struct hyper_domain_stats a = {0}, b = {0};
  bool up = false;
  if (vm->host_id && vm->status != VM_DOWN) {
    if (domain_samples(eng, vm->host_id, vm->id, &a, &b) == 0) up = true;
    else if (error_code() == ERR_NOT_FOUND) error_clear(); /* stopped just now */
    else return -1;
  }
  int64_t dt = b.sampled_ns - a.sampled_ns;
  int vcpus = b.vcpus > 0 ? b.vcpus : 1;
  int64_t used = 0;
  if (up) used = b.balloon_unused >= 0 && b.balloon_current >= 0 ? b.balloon_current - b.balloon_unused
                                                                 : (b.balloon_rss > 0 ? b.balloon_rss : 0);
  if (used > vm->memory) used = vm->memory;
  int64_t guest = b.vcpu_time_ns - a.vcpu_time_ns, total = b.cpu_time_ns - a.cpu_time_ns;
  int n = 0;
  put(out, &n, "memory.installed", "Total memory configured", "gauge", "integer", "bytes", (double)vm->memory);
  put(out, &n, "memory.used", "Memory used (agent)", "gauge", "integer", "bytes", (double)used);
  put(out, &n, "memory.free", "Memory free (agent)", "gauge", "integer", "bytes", (double)(vm->memory - used));
  put(out, &n, "cpu.current.guest", "CPU used by guest", "gauge", "decimal", "percent",
      pct(guest, dt * vcpus));
  put(out, &n, "cpu.current.hypervisor", "CPU overhead", "gauge", "decimal", "percent",
      pct(total - guest, dt * vcpus));
  put(out, &n, "cpu.current.total", "Total CPU used", "gauge", "decimal", "percent", pct(total, dt * vcpus));
  put(out, &n, "network.current.total", "Total network used", "gauge", "decimal", "bytes_per_second",
      rate((b.net_rx_bytes + b.net_tx_bytes) - (a.net_rx_bytes + a.net_tx_bytes), dt));
  int64_t rd = 0, wr = 0;
  for (size_t i = 0; i < b.nblocks; i++) {
    rd += b.blocks[i].rd_bytes;
    wr += b.blocks[i].wr_bytes;
  }
  for (size_t i = 0; i < a.nblocks; i++) {
    rd -= a.blocks[i].rd_bytes;
    wr -= a.blocks[i].wr_bytes;
  }
  put(out, &n, "disks.usage.read", "Disk read rate", "gauge", "decimal", "bytes_per_second", rate(rd, dt));
  put(out, &n, "disks.usage.write", "Disk write rate", "gauge", "decimal", "bytes_per_second", rate(wr, dt));
  put(out, &n, "cpu.usage.time", "Total CPU time used", "counter", "decimal", "seconds",
      (double)b.cpu_time_ns / 1e9);
  hyper_domain_stats_clear(&a);
  hyper_domain_stats_clear(&b);
  return n;
}

int stats_host(struct engine *eng, const char *host_id, struct statistic out[STATS_MAX])
{
  AUTOPTR(host) host = host_get(eng->st, host_id);
  if (!host) return -1;
  const struct hyper_ops *ops;
  struct hyper *h = engine_hyper(eng, host->id, &ops);
  if (!h) return -1;
  if (!ops->host_stats) return error(ERR_UNSUPPORTED, "the host's hypervisor has no statistics");
  struct hyper_host_stats a, b;
  if (ops->host_stats(h, &a) < 0) return -1;
  sleep_ms(STATS_INTERVAL_MS);
  if (ops->host_stats(h, &b) < 0) return -1;
  int64_t user = b.cpu_user_ns - a.cpu_user_ns, sys = b.cpu_kernel_ns - a.cpu_kernel_ns;
  int64_t idle = (b.cpu_idle_ns - a.cpu_idle_ns) + (b.cpu_iowait_ns - a.cpu_iowait_ns);
  int64_t all = user + sys + idle;
  int64_t used = b.mem_total - b.mem_free - b.mem_buffers - b.mem_cached;
  int n = 0;
  put(out, &n, "memory.total", "Total memory", "gauge", "integer", "bytes", (double)b.mem_total);
  put(out, &n, "memory.used", "Used memory", "gauge", "integer", "bytes", (double)(used > 0 ? used : 0));
  put(out, &n, "memory.free", "Free memory", "gauge", "integer", "bytes", (double)(b.mem_total - (used > 0 ? used : 0)));
  put(out, &n, "memory.buffers", "IO buffers", "gauge", "integer", "bytes", (double)b.mem_buffers);
  put(out, &n, "memory.cached", "OS caches", "gauge", "integer", "bytes", (double)b.mem_cached);
  put(out, &n, "cpu.current.user", "User CPU usage", "gauge", "decimal", "percent", pct(user, all));
  put(out, &n, "cpu.current.system", "System CPU usage", "gauge", "decimal", "percent", pct(sys, all));
  put(out, &n, "cpu.current.idle", "Idle CPU usage", "gauge", "decimal", "percent", pct(idle, all));
  return n;
}

int stats_disk(struct engine *eng, const char *disk_id, struct statistic out[STATS_MAX])
{
  AUTOPTR(disk) d = disk_get(eng->st, disk_id);
  if (!d) return -1;
  AUTOLIST(attachment) at = attachment_list_plugged_of_disk(eng->st, d->id);
  if (!at) return -1;
  struct hyper_domain_stats a = {0}, b = {0};
  AUTOFREE char *alias = xasprintf("ua-%s", d->id);
  for (size_t i = 0; at[i]; i++) {
    AUTOPTR(vm) vm = vm_get(eng->st, at[i]->vm_id);
    if (!vm) { error_clear(); continue; }
    if (!vm->host_id || vm->status == VM_DOWN) continue;
    if (domain_samples(eng, vm->host_id, vm->id, &a, &b) == 0) break;
    if (error_code() != ERR_NOT_FOUND) return -1;
    error_clear();
  }
  const struct hyper_block_stats *x = NULL, *y = NULL;
  for (size_t i = 0; i < a.nblocks; i++) if (strcmp(a.blocks[i].alias, alias) == 0) x = &a.blocks[i];
  for (size_t i = 0; i < b.nblocks; i++) if (strcmp(b.blocks[i].alias, alias) == 0) y = &b.blocks[i];
  static const struct hyper_block_stats zero;
  if (!x || !y) x = y = &zero;
  int64_t dt = b.sampled_ns - a.sampled_ns;
  /* latency: time per request over the interval, as oVirt's (seconds) */
  double rl = y->rd_reqs > x->rd_reqs ? (double)(y->rd_time_ns - x->rd_time_ns) / 1e9 / (double)(y->rd_reqs - x->rd_reqs) : 0;
  double wl = y->wr_reqs > x->wr_reqs ? (double)(y->wr_time_ns - x->wr_time_ns) / 1e9 / (double)(y->wr_reqs - x->wr_reqs) : 0;
  double fl = y->fl_reqs > x->fl_reqs ? (double)(y->fl_time_ns - x->fl_time_ns) / 1e9 / (double)(y->fl_reqs - x->fl_reqs) : 0;
  int n = 0;
  put(out, &n, "data.current.read", "Read data rate", "gauge", "decimal", "bytes_per_second",
      rate(y->rd_bytes - x->rd_bytes, dt));
  put(out, &n, "data.current.write", "Write data rate", "gauge", "decimal", "bytes_per_second",
      rate(y->wr_bytes - x->wr_bytes, dt));
  put(out, &n, "disk.read.latency", "Read latency", "gauge", "decimal", "seconds", rl);
  put(out, &n, "disk.write.latency", "Write latency", "gauge", "decimal", "seconds", wl);
  put(out, &n, "disk.flush.latency", "Flush latency", "gauge", "decimal", "seconds", fl);
  put(out, &n, "data.total.read", "Data read since the VM started", "counter", "integer", "bytes", (double)y->rd_bytes);
  put(out, &n, "data.total.write", "Data written since the VM started", "counter", "integer", "bytes", (double)y->wr_bytes);
  hyper_domain_stats_clear(&a);
  hyper_domain_stats_clear(&b);
  return n;
}
