/* res_stats.c: /vms/{id}/statistics, /hosts/{id}/statistics and
 * /disks/{id}/statistics (cmd/core/stats.c measures them), as oVirt's Statistic:
 * name, description, kind, type, unit, values/value/datum and the parent. */
#include "api/resources.h"
#include "cmd/stats.h"
#include "util/err.h"
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* a statistic's id: the same for a name everywhere, as oVirt's name-based
 * ids are (two FNV-1a hashes of the name in UUID form) */
static void statistic_id(const char *name, char out[37])
{
  uint64_t h1 = 0xcbf29ce484222325ULL, h2 = 0x84222325cbf29ce4ULL;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
    h1 = (h1 ^ *p) * 0x100000001b3ULL;
    h2 = (h2 ^ *p) * 0x100000001b3ULL;
  }
  snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(h1 >> 32), (unsigned)(h1 >> 16) & 0xffff,
           ((unsigned)h1 & 0x0fff) | 0x5000, ((unsigned)(h2 >> 48) & 0x3fff) | 0x8000,
           (unsigned long long)(h2 & 0xffffffffffffULL));
}

static struct node *render_statistic(struct api_call *c, const struct statistic *s, const char *coll,
                                     const char *parent_elem, const char *parent_id)
{
  char id[37];
  statistic_id(s->name, id);
  struct node *n = node_new("statistic");
  AUTOFREE char *href = render_href(&c->r, "/%s/%s/statistics/%s", coll, parent_id, id);
  node_set_attr(n, "href", href);
  node_set_attr(n, "id", id);
  node_add_text(n, "name", s->name);
  node_add_text(n, "description", s->description);
  node_add_text(n, "kind", s->kind);
  node_add_text(n, "type", s->type);
  node_add_text(n, "unit", s->unit);
  struct node *v = node_add(node_add_list(n, "values"), "value");
  if (strcmp(s->type, "integer") == 0) node_add_int(v, "datum", (int64_t)s->value);
  else node_add_textf(v, "datum", "%.4f", s->value);
  AUTOFREE char *phref = render_href(&c->r, "/%s/%s", coll, parent_id);
  node_add_ref(n, parent_elem, parent_id, phref);
  return n;
}

/* the collection, or with want_id the one statistic of that id */
static int answer(struct api_call *c, int (*measure)(struct engine *, const char *, struct statistic *),
                  const char *coll, const char *parent_elem, const char *want_id)
{
  struct statistic s[STATS_MAX];
  int n = measure(c->eng, c->p[0], s);
  if (n < 0) return -1;
  struct node *list = want_id ? NULL : node_new("statistics");
  if (list) list->is_list = true;
  for (int i = 0; i < n; i++) {
    char id[37];
    statistic_id(s[i].name, id);
    if (want_id && strcmp(id, want_id) == 0) return reply(c, 200, render_statistic(c, &s[i], coll, parent_elem, c->p[0]));
    if (list) node_append(list, render_statistic(c, &s[i], coll, parent_elem, c->p[0]));
  }
  if (want_id) return error(ERR_NOT_FOUND, "statistic '%s' does not exist", want_id);
  return reply(c, 200, list);
}

int list_vm_statistics(struct api_call *c) { return answer(c, stats_vm, "vms", "vm", NULL); }
int get_vm_statistic(struct api_call *c) { return answer(c, stats_vm, "vms", "vm", c->p[1]); }
int list_host_statistics(struct api_call *c) { return answer(c, stats_host, "hosts", "host", NULL); }
int get_host_statistic(struct api_call *c) { return answer(c, stats_host, "hosts", "host", c->p[1]); }
int list_disk_statistics(struct api_call *c) { return answer(c, stats_disk, "disks", "disk", NULL); }
int get_disk_statistic(struct api_call *c) { return answer(c, stats_disk, "disks", "disk", c->p[1]); }
