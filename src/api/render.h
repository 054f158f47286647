/* render.h: store entities -> oVirt representation nodes.
 * Element names follow oVirt's API model (ovirt-engine-api-model types). Each
 * function returns a new node the caller owns (or appends into `parent` when
 * given). `root` is the API root the client used, for hrefs. */
#pragma once
#include "api/api.h"
#include "cmd/engine.h"
#include "repr/node.h"

struct render_ctx {
  struct engine *eng;
  const char *root;      /* "/ovirt-engine/api" */
  bool all_content;
  int version;
};

char *render_href(const struct render_ctx *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct node *render_datacenter(const struct render_ctx *r, const struct datacenter *d);
struct node *render_cluster(const struct render_ctx *r, const struct cluster *c);
struct node *render_template(const struct render_ctx *r, const struct template *t);
struct node *render_host(const struct render_ctx *r, const struct host *h);
struct node *render_storage_domain(const struct render_ctx *r, const struct storage_domain *sd);
struct node *render_vm(const struct render_ctx *r, const struct vm *vm);
struct node *render_disk(const struct render_ctx *r, const struct disk *d);
struct node *render_attachment(const struct render_ctx *r, const struct attachment *a);
/* a template's disk (an attachment whose vm_id is the template's id) */
struct node *render_template_attachment(const struct render_ctx *r, const struct attachment *a);
/* v3: a VM's disk as oVirt 3 listed it under /vms/ID/disks */
struct node *render_vm_disk_v3(const struct render_ctx *r, const struct attachment *a, const struct disk *d);
struct node *render_snapshot(const struct render_ctx *r, const struct snapshot *s);
struct node *render_event(const struct render_ctx *r, const struct event *e);
struct node *render_job(const struct render_ctx *r, const struct job *j);
/* a volume of a disk's chain, as oVirt's disk_snapshot */
struct node *render_disk_snapshot(const struct render_ctx *r, const struct volume *v, const struct disk *d);
/* a disk as it was in a snapshot: the disk's fields with that volume's size and image_id */
struct node *render_snapshot_disk(const struct render_ctx *r, const struct volume *v, const struct disk *d);
/* an image transfer; base_url ("https://host:port") makes its proxy_url */
struct node *render_image_transfer(const struct render_ctx *r, const struct image_transfer *t,
                                   const char *base_url);

/* building blocks for resources rendered outside this file (res_backup.c):
 * <elem href="ROOT/coll/id" id="id">, a reference child, an ISO date child */
struct node *render_entity(const struct render_ctx *r, const char *elem, const char *coll, const char *id);
void render_ref(const struct render_ctx *r, struct node *parent, const char *elem, const char *coll,
                const char *id);
void render_date(struct node *n, const char *elem, int64_t ms);
