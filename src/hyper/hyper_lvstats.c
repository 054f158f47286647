/* hyper_lvstats.c: a domain's and a host's statistics from libvirt
 * (virDomainListGetStats, virNodeGetCPUStats/MemoryStats), each stamped with
 * the monotonic time it was sampled at so callers can turn two samples into
 * rates. Part of the libvirt backend (hyper_lv.h). */
#include "hyper/hyper_lv.h"
#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void hyper_domain_stats_clear(struct hyper_domain_stats *s)
{
  for (size_t i = 0; i < s->nblocks; i++) free(s->blocks[i].alias);
  free(s->blocks);
  *s = (struct hyper_domain_stats){0};
}

/* the typed parameter NAME of a stats record as a number; dflt when absent */
static int64_t stat_num(const virTypedParameter *p, int n, const char *name, int64_t dflt)
{
  for (int i = 0; i < n; i++) {
    if (strcmp(p[i].field, name) != 0) continue;
    switch (p[i].type) {
    case VIR_TYPED_PARAM_INT: return p[i].value.i;
    case VIR_TYPED_PARAM_UINT: return p[i].value.ui;
    case VIR_TYPED_PARAM_LLONG: return p[i].value.l;
    case VIR_TYPED_PARAM_ULLONG: return (int64_t)p[i].value.ul;
    default: return dflt;
    }
  }
  return dflt;
}

static const char *stat_str(const virTypedParameter *p, int n, const char *name)
{
  for (int i = 0; i < n; i++)
    if (strcmp(p[i].field, name) == 0 && p[i].type == VIR_TYPED_PARAM_STRING) return p[i].value.s;
  return NULL;
}

int hyper_lv_domain_stats(struct hyper *h, const char *vm_id, struct hyper_domain_stats *out)
{
  *out = (struct hyper_domain_stats){0};
  AUTOPTR(virDomain) d = hyper_lv_domain(h, vm_id);
  if (!d) return -1;
  /* block stats name devices by target ("vda"); the live XML maps them to aliases */
  struct hyper_live_disk *live = NULL;
  size_t nlive = 0;
  if (hyper_lv_live_disks(d, vm_id, &live, &nlive) < 0) return -1;
  virDomainPtr doms[] = {d, NULL};
  virDomainStatsRecordPtr *recs = NULL;
  unsigned int what = VIR_DOMAIN_STATS_CPU_TOTAL | VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_VCPU |
                      VIR_DOMAIN_STATS_INTERFACE | VIR_DOMAIN_STATS_BLOCK;
  int nrec = virDomainListGetStats(doms, what, &recs, 0);
  out->sampled_ns = mono_ns();
  if (nrec < 0 || !recs || !recs[0]) {
    hyper_live_disks_free(live, nlive);
    virDomainStatsRecordListFree(recs);
    if (nrec < 0 && hyper_lv_last_error_is(VIR_ERR_NO_DOMAIN)) return error(ERR_NOT_FOUND, "VM '%s' is not running", vm_id);
    return virt_error("cannot read the statistics of VM '%s'", vm_id);
  }
  const virTypedParameter *p = recs[0]->params;
  int n = recs[0]->nparams;
  out->cpu_time_ns = stat_num(p, n, "cpu.time", 0);
  out->cpu_user_ns = stat_num(p, n, "cpu.user", 0);
  out->cpu_system_ns = stat_num(p, n, "cpu.system", 0);
  out->vcpus = (int)stat_num(p, n, "vcpu.current", 0);
  for (int i = 0; i < out->vcpus; i++) {
    char key[64];
    snprintf(key, sizeof key, "vcpu.%d.time", i);
    out->vcpu_time_ns += stat_num(p, n, key, 0);
  }
  int64_t kib[4];
  static const char *const balloon[] = {"balloon.current", "balloon.rss", "balloon.unused", "balloon.available"};
  for (size_t i = 0; i < ARRAY_SIZE(balloon); i++) kib[i] = stat_num(p, n, balloon[i], -1);
  out->balloon_current = kib[0] < 0 ? -1 : kib[0] * 1024;
  out->balloon_rss = kib[1] < 0 ? -1 : kib[1] * 1024;
  out->balloon_unused = kib[2] < 0 ? -1 : kib[2] * 1024;
  out->balloon_available = kib[3] < 0 ? -1 : kib[3] * 1024;
  int64_t nnet = stat_num(p, n, "net.count", 0);
  for (int64_t i = 0; i < nnet; i++) {
    char key[64];
    snprintf(key, sizeof key, "net.%lld.rx.bytes", (long long)i);
    out->net_rx_bytes += stat_num(p, n, key, 0);
    snprintf(key, sizeof key, "net.%lld.tx.bytes", (long long)i);
    out->net_tx_bytes += stat_num(p, n, key, 0);
  }
  int64_t nblk = stat_num(p, n, "block.count", 0);
  out->blocks = xcalloc(nblk > 0 ? (size_t)nblk : 1, sizeof *out->blocks);
  for (int64_t i = 0; i < nblk; i++) {
    char key[64];
    snprintf(key, sizeof key, "block.%lld.name", (long long)i);
    const char *target = stat_str(p, n, key);
    const char *alias = NULL;
    for (size_t j = 0; target && j < nlive && !alias; j++)
      if (live[j].target && strcmp(live[j].target, target) == 0) alias = live[j].alias;
    if (!alias) continue;
    struct hyper_block_stats *b = &out->blocks[out->nblocks++];
    b->alias = xstrdup(alias);
#define BLK(field, name) (snprintf(key, sizeof key, "block.%lld." name, (long long)i), b->field = stat_num(p, n, key, 0))
    BLK(rd_bytes, "rd.bytes");
    BLK(wr_bytes, "wr.bytes");
    BLK(rd_reqs, "rd.reqs");
    BLK(wr_reqs, "wr.reqs");
    BLK(fl_reqs, "fl.reqs");
    BLK(rd_time_ns, "rd.times");
    BLK(wr_time_ns, "wr.times");
    BLK(fl_time_ns, "fl.times");
#undef BLK
  }
  virDomainStatsRecordListFree(recs);
  hyper_live_disks_free(live, nlive);
  return 0;
}

int hyper_lv_host_stats(struct hyper *h, struct hyper_host_stats *out)
{
  *out = (struct hyper_host_stats){0};
  AUTOPTR(virConnect) c = hyper_lv_get_conn(h);
  if (!c) return -1;
  int n = 0;
  if (virNodeGetCPUStats(c, VIR_NODE_CPU_STATS_ALL_CPUS, NULL, &n, 0) < 0 || n <= 0) {
    if (!hyper_lv_last_error_is(VIR_ERR_NO_SUPPORT)) return virt_error("cannot read the CPU statistics of host '%s'", h->uri);
    n = 0; /* no CPU figures either */
  }
  virNodeCPUStatsPtr cpu = xcalloc(n > 0 ? (size_t)n : 1, sizeof *cpu);
  if (n > 0 && virNodeGetCPUStats(c, VIR_NODE_CPU_STATS_ALL_CPUS, cpu, &n, 0) < 0) {
    free(cpu);
    return virt_error("cannot read the CPU statistics of host '%s'", h->uri);
  }
  out->sampled_ns = mono_ns();
  for (int i = 0; i < n; i++) {
    int64_t v = (int64_t)cpu[i].value;
    if (strcmp(cpu[i].field, VIR_NODE_CPU_STATS_USER) == 0) out->cpu_user_ns = v;
    else if (strcmp(cpu[i].field, VIR_NODE_CPU_STATS_KERNEL) == 0) out->cpu_kernel_ns = v;
    else if (strcmp(cpu[i].field, VIR_NODE_CPU_STATS_IDLE) == 0) out->cpu_idle_ns = v;
    else if (strcmp(cpu[i].field, VIR_NODE_CPU_STATS_IOWAIT) == 0) out->cpu_iowait_ns = v;
  }
  free(cpu);
  n = 0;
  if (virNodeGetMemoryStats(c, VIR_NODE_MEMORY_STATS_ALL_CELLS, NULL, &n, 0) < 0 || n <= 0) {
    if (hyper_lv_last_error_is(VIR_ERR_NO_SUPPORT)) return 0; /* e.g. the test driver: no memory figures */
    return virt_error("cannot read the memory statistics of host '%s'", h->uri);
  }
  virNodeMemoryStatsPtr mem = xcalloc((size_t)n, sizeof *mem);
  if (virNodeGetMemoryStats(c, VIR_NODE_MEMORY_STATS_ALL_CELLS, mem, &n, 0) < 0) {
    free(mem);
    return virt_error("cannot read the memory statistics of host '%s'", h->uri);
  }
  for (int i = 0; i < n; i++) {
    int64_t v = (int64_t)mem[i].value * 1024;
    if (strcmp(mem[i].field, VIR_NODE_MEMORY_STATS_TOTAL) == 0) out->mem_total = v;
    else if (strcmp(mem[i].field, VIR_NODE_MEMORY_STATS_FREE) == 0) out->mem_free = v;
    else if (strcmp(mem[i].field, VIR_NODE_MEMORY_STATS_BUFFERS) == 0) out->mem_buffers = v;
    else if (strcmp(mem[i].field, VIR_NODE_MEMORY_STATS_CACHED) == 0) out->mem_cached = v;
  }
  free(mem);
  virNodeInfo info;
  if (virNodeGetInfo(c, &info) == 0) out->cpus = (int)info.cpus;
  return 0;
}
