/* restore.c: `snapback restore BACKUP [--name NEW]` (docs/snapback.md).
 *
 * Creates the VM from the backup's OVF (name, memory, CPU topology, OS),
 * one new cow disk per backed-up disk, attaches each with the OVF's
 * interface and bootable flag, then uploads every disk through an upload
 * transfer (restoreio.c): over NBD, else, when this host cannot reach the
 * NBD export (a remote engine), over the transfer's imageio URL. Zero
 * chunks are not written: a fresh qcow2 reads as zeros. On failure the VM
 * and its disks are removed again. */
#include "cli/cli.h"
#include "cli/engine.h"
#include "cli/imageio.h"
#include "repr/ovf.h"
#include "cli/progress.h"
#include "cli/transfer.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

DEFINE_AUTOPTR(json, json_t, json_decref)

struct restore_run {
  struct cli *c;
  struct client *api;
  char *vm_id;
  char **disk_ids;   /* created disks, in manifest order */
  bool *attached;
  size_t ndisks;
  struct transfer t;
};

static void restore_cleanup(struct restore_run *x)
{
  struct err_saved saved;
  error_save(&saved);
  if (x->t.id) transfer_cancel(x->api, &x->t);
  for (size_t i = 0; i < x->ndisks; i++) {
    if (!x->disk_ids[i] || x->attached[i]) continue;
    AUTOFREE char *p = xasprintf("/disks/%s", x->disk_ids[i]);
    if (client_call(x->api, "DELETE", p, NULL, NULL) < 0) {
      cli_note(x->c, "warning: cannot remove disk '%s': %s", x->disk_ids[i], error_message());
      error_clear();
    }
  }
  if (x->vm_id) {
    AUTOFREE char *p = xasprintf("/vms/%s?detach_only=false", x->vm_id);
    if (client_call(x->api, "DELETE", p, NULL, NULL) < 0) {
      cli_note(x->c, "warning: cannot remove VM '%s': %s", x->vm_id, error_message());
      error_clear();
    } else {
      cli_note(x->c, "removed the partly restored VM '%s' and its disks", x->vm_id);
    }
  }
  error_restore(&saved);
}

static int create_vm(struct restore_run *x, const struct ovf_vm *ovf, const char *name)
{
  struct buf b = BUF_INIT;
  buf_puts(&b, "<vm><name>");
  buf_put_xml_escaped(&b, name);
  buf_puts(&b, "</name>");
  if (ovf->description && *ovf->description) {
    buf_puts(&b, "<description>");
    buf_put_xml_escaped(&b, ovf->description);
    buf_puts(&b, "</description>");
  }
  if (x->c->cluster) {
    buf_puts(&b, "<cluster><name>");
    buf_put_xml_escaped(&b, x->c->cluster);
    buf_puts(&b, "</name></cluster>");
  } else if (ovf->cluster_id && *ovf->cluster_id) {
    buf_puts(&b, "<cluster id=\"");
    buf_put_xml_escaped(&b, ovf->cluster_id);
    buf_puts(&b, "\"/>");
  } else {
    buf_puts(&b, "<cluster><name>Default</name></cluster>");
  }
  buf_puts(&b, "<template><name>Blank</name></template>");
  if (ovf->memory > 0) buf_printf(&b, "<memory>%lld</memory>", (long long)ovf->memory);
  buf_printf(&b, "<cpu><topology><sockets>%lld</sockets><cores>%lld</cores><threads>%lld</threads></topology></cpu>",
             (long long)(ovf->sockets > 0 ? ovf->sockets : 1), (long long)(ovf->cores > 0 ? ovf->cores : 1),
             (long long)(ovf->threads > 0 ? ovf->threads : 1));
  buf_puts(&b, "<os><type>");
  buf_put_xml_escaped(&b, ovf->os_type && *ovf->os_type ? ovf->os_type : "other");
  buf_puts(&b, "</type></os></vm>");
  AUTOPTR(node) n = NULL;
  int rc = client_call(x->api, "POST", "/vms", buf_str(&b), &n);
  buf_free(&b);
  if (rc < 0) return error_prefix("cannot create VM '%s': ", name);
  const char *id = node_attr(n, "id");
  if (!id) return error(ERR_INTERNAL, "cannot create VM '%s': the answer carries no id", name);
  x->vm_id = xstrdup(id);
  return 0;
}

static int create_disk(struct restore_run *x, size_t i, const struct manifest_disk *d, const char *sd)
{
  struct buf b = BUF_INIT;
  buf_puts(&b, "<disk><alias>");
  buf_put_xml_escaped(&b, d->alias ? d->alias : d->id);
  buf_printf(&b, "</alias><provisioned_size>%llu</provisioned_size><format>cow</format><sparse>true</sparse>",
             (unsigned long long)d->size);
  buf_puts(&b, "<storage_domains><storage_domain>");
  if (sd) {
    buf_puts(&b, "<name>");
    buf_put_xml_escaped(&b, sd);
    buf_puts(&b, "</name>");
  }
  buf_puts(&b, "</storage_domain></storage_domains></disk>");
  AUTOPTR(node) n = NULL;
  int rc = client_call(x->api, "POST", "/disks", buf_str(&b), &n);
  buf_free(&b);
  if (rc < 0) return error_prefix("cannot create disk '%s': ", d->alias ? d->alias : d->id);
  const char *id = node_attr(n, "id");
  if (!id) return error(ERR_INTERNAL, "cannot create disk '%s': the answer carries no id", d->alias);
  x->disk_ids[i] = xstrdup(id);
  AUTOFREE char *path = xasprintf("/disks/%s", id);
  if (engine_wait_field(x->api, path, "status", "ok", 10 * 60 * 1000) < 0)
    return error_prefix("disk '%s' did not become ok: ", id);
  AUTOFREE char *apath = xasprintf("/vms/%s/diskattachments", x->vm_id);
  AUTOFREE char *att = xasprintf("<disk_attachment><disk id=\"%s\"/><interface>%s</interface>"
                                 "<bootable>%s</bootable><active>true</active></disk_attachment>",
                                 id, d->interface ? d->interface : "virtio", d->bootable ? "true" : "false");
  if (client_call(x->api, "POST", apath, att, NULL) < 0)
    return error_prefix("cannot attach disk '%s' to VM '%s': ", id, x->vm_id);
  x->attached[i] = true;
  return 0;
}

/* the storage domain to use: --storage-domain, else the first data domain */
static char *pick_storage_domain(struct restore_run *x)
{
  if (x->c->storage_domain) return xstrdup(x->c->storage_domain);
  AUTOPTR(node) n = NULL;
  if (client_call(x->api, "GET", "/storagedomains", NULL, &n) < 0) return NULL;
  for (size_t i = 0; n && i < n->nkids; i++) {
    const char *type = node_text(n->kids[i], "type"), *name = node_text(n->kids[i], "name");
    if (name && (!type || strcmp(type, "data") == 0)) return xstrdup(name);
  }
  error(ERR_NOT_FOUND, "no data storage domain to restore into: give --storage-domain");
  return NULL;
}

int cli_restore(struct cli *c, const char *backup)
{
  int64_t t0 = mono_ms();
  AUTOPTR(repo) r = cli_repo_open(c, false, REPO_LOCK_SHARED);
  if (!r) return cli_report_error(c, "cannot restore");
  AUTOPTR(manifest) m = manifest_find(r, backup);
  if (!m) return cli_report_error(c, "cannot restore");
  if (!m->ovf) error(ERR_INVALID, "the backup holds no OVF");
  AUTOPTR(ovf_vm) ovf = m->ovf ? ovf_parse(m->ovf, strlen(m->ovf)) : NULL;
  if (!ovf) return cli_report_error(c, "cannot restore");
  const char *name = c->name ? c->name : m->vm_name;
  AUTOPTR(client) api = client_open(&c->conf);
  if (!api) return cli_report_error(c, "cannot restore");
  /* onto an existing name: nothing is created, --name is the way out */
  AUTOFREE char *existing = engine_vm_id(api, name);
  if (existing || error_code() != ERR_NOT_FOUND) {
    if (existing)
      error(ERR_CONFLICT, "a VM named '%s' exists already: restore under another name with --name NEW", name);
    return cli_report_error(c, "cannot restore");
  }
  error_clear();
  struct restore_run x = {.c = c, .api = api, .ndisks = m->ndisks};
  x.disk_ids = xcalloc(m->ndisks + 1, sizeof *x.disk_ids);
  x.attached = xcalloc(m->ndisks + 1, sizeof *x.attached);
  struct copy_stats st = {0};
  uint64_t total = 0;
  AUTOFREE char *sd = pick_storage_domain(&x);
  int rc = sd ? create_vm(&x, ovf, name) : -1;
  for (size_t i = 0; rc == 0 && i < m->ndisks; i++) rc = create_disk(&x, i, &m->disks[i], sd);
  for (size_t i = 0; rc == 0 && i < m->ndisks; i++) {
    const struct manifest_disk *d = &m->disks[i];
    AUTOFREE char *label = xasprintf("%s (%zu/%zu)", d->alias ? d->alias : d->id, i + 1, m->ndisks);
    rc = transfer_start(api, true, NULL, x.disk_ids[i], &x.t);
    if (rc < 0) break;
    AUTOFREE char *nbd_url = NULL;
    AUTOPTR(imageio) io = NULL;
    rc = transfer_data_open(c, &x.t, d->alias ? d->alias : d->id, "writing", &nbd_url, &io);
    if (rc < 0) break;
    struct progress p;
    progress_start(&p, !c->json, label, d->size);
    /* twice the CPUs: a worker waiting for its chunk file leaves its CPU to another */
    int workers = c->workers ? c->workers : 2 * (int)sysconf(_SC_NPROCESSORS_ONLN);
    rc = repo_to_disk(r, d, nbd_url, nbd_url ? NULL : io, workers, &st, progress_cb, &p);
    if (rc < 0) {
      error_prefix("cannot restore disk '%s': ", d->alias ? d->alias : d->id);
      break;
    }
    progress_end(&p, d->size);
    rc = transfer_finalize(api, &x.t);
    if (rc == 0) transfer_clear(&x.t);
    total += d->size;
  }
  if (rc < 0) {
    error_prefix("restore of backup '%s' failed: ", m->name);
    restore_cleanup(&x);
    engine_event(api, NULL, "error", "%s", error_message());
  } else {
    engine_event(api, x.vm_id, "normal", "VM '%s' restored from backup %s (snapback)", name, m->name);
  }
  double secs = (double)(mono_ms() - t0) / 1000.0;
  int ret = CLI_OK;
  if (rc < 0) {
    ret = cli_report_error(c, NULL);
  } else if (c->json) {
    json_t *disks = json_array();
    for (size_t i = 0; i < m->ndisks; i++)
      json_array_append_new(disks, json_pack("{s:s, s:s, s:s?, s:I}", "id", x.disk_ids[i], "backup_disk_id",
                                             m->disks[i].id, "alias", m->disks[i].alias,
                                             "size", (json_int_t)m->disks[i].size));
    AUTOPTR(json) j = json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:f}", "vm_id", x.vm_id, "name", name, "backup",
                                m->name, "disks", disks, "size", (json_int_t)total, "bytes_written",
                                (json_int_t)st.bytes_read, "seconds", secs);
    json_dumpf(j, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
  } else {
    char tb[32], wb[32];
    human_bytes(total, tb);
    human_bytes(st.bytes_read, wb);
    printf("restored backup %s as VM '%s' (%s): %zu disk%s, %s, %s written, %.1f s\n", m->name, name, x.vm_id,
           m->ndisks, m->ndisks == 1 ? "" : "s", tb, wb, secs);
  }
  for (size_t i = 0; i < x.ndisks; i++) free(x.disk_ids[i]);
  free(x.disk_ids);
  free(x.attached);
  free(x.vm_id);
  return ret;
}
