/* The permission model, walking the route table (issue 10).
 *
 * For every route and method of ROUTES:
 *  - every entry has a permission rule (a route added without one fails here
 *    first, and at run time answers 500);
 *  - without a user: 401;
 *  - as a user that may log in but holds nothing on the objects: 404 or 403,
 *    and no name of the object in the answer (collections: 200 without the
 *    objects);
 *  - as a user holding exactly the route's permit on exactly the route's
 *    object (a custom role {LOGIN, permit}): the permission check passes, and
 *    a GET succeeds for real.
 * Then the model itself: inheritance cluster -> VM, groups, a locked user,
 * a user without LOGIN, predefined roles that cannot change.
 *
 * The host is libvirt's test driver (test:///default), as in test_api. */
#include "fixture.h"
#include <unistd.h>

static struct store *st;

/* the fixture: one object of each kind, named so that a leak shows */
static char vm_id[64], disk_id[64], cluster_id[64], dc_id[64], host_id[64], sd_id[64], snap_id[64],
    vol_id[64], job_id[64], xfer_id[64], group_id[64], role_id[64], owner_perm_id[64], group_perm_id[64],
    sys_perm_id[64], vm_perm_id[64], event_id[32];
static const char *const template_id = "00000000-0000-0000-0000-000000000000";
static struct user owner;       /* owns the job, the transfer; member of the group */
static struct user nobody;      /* LOGIN through a role on an unrelated VM */
static char other_vm_id[64];
static char backup_id[64], checkpoint_id[64], iso_id[64];
static char net_id[64], nic_id[64], vm_stat_id[64], disk_stat_id[64], host_stat_id[64];

static int call_as(const struct user *u, const char *method, const char *path, const char *xml, char **out,
                   bool check_only)
{
  return fixture_call(u, method, path, xml, NULL, out, check_only);
}

static void new_id(char out[64])
{
  char id[UUID_STRLEN + 1];
  uuid_generate_str(id);
  snprintf(out, 64, "%s", id);
}

static struct user make_user(const char *name)
{
  char id[64];
  new_id(id);
  struct user u = {.id = xstrdup(id), .name = xstrdup(name), .password_hash = (char *)"x"};
  CHECK(user_insert(st, &u) == 0);
  u.password_hash = NULL;
  return u;
}

/* a custom role holding LOGIN and PERMIT (PERMIT_VIEW: only LOGIN) */
static char *role_with(int permit)
{
  char id[64];
  new_id(id);
  AUTOFREE char *name = xasprintf("only-%d-%s", permit, id);
  struct role r = {.id = id, .name = name};
  int permits[] = {PERMIT_LOGIN, permit};
  CHECK(perm_role_insert(st, &r, permits, permit == PERMIT_VIEW || permit == PERMIT_LOGIN ? 1 : 2) == 0);
  return xstrdup(id);
}

static void grant(const char *perm_id_out_or_null, const char *role, const char *user_id, const char *group,
                  int obj, const char *obj_id)
{
  char id[64];
  new_id(id);
  if (perm_id_out_or_null) strcpy((char *)perm_id_out_or_null, id);
  struct permission p = {.id = id, .role_id = (char *)role, .user_id = (char *)user_id, .group_id = (char *)group,
                         .object_type = (char *)perm_object_to_str(obj), .object_id = (char *)obj_id};
  CHECK(permission_insert(st, &p) == 0);
}

/* the id a {} after collection COLL stands for, given the pattern before it */
static const char *param_for(const char *pattern, const char *coll)
{
  if (!strcmp(coll, "vms")) return vm_id;
  if (!strcmp(coll, "disks")) return strncmp(pattern, "/vms/", 5) == 0 ? disk_id : disk_id;
  if (!strcmp(coll, "diskattachments")) return disk_id;
  if (!strcmp(coll, "templates")) return template_id;
  if (!strcmp(coll, "clusters")) return cluster_id;
  if (!strcmp(coll, "datacenters")) return dc_id;
  if (!strcmp(coll, "hosts")) return host_id;
  if (!strcmp(coll, "storagedomains")) return sd_id;
  if (!strcmp(coll, "snapshots")) return snap_id;
  if (!strcmp(coll, "disksnapshots")) return vol_id;
  if (!strcmp(coll, "events")) return event_id;
  if (!strcmp(coll, "jobs")) return job_id;
  if (!strcmp(coll, "imagetransfers")) return xfer_id;
  if (!strcmp(coll, "users")) return owner.id;
  if (!strcmp(coll, "groups")) return group_id;
  if (!strcmp(coll, "roles")) return role_id;
  if (!strcmp(coll, "permits")) return "1300";
  if (!strcmp(coll, "backups")) return backup_id;
  if (!strcmp(coll, "checkpoints")) return checkpoint_id;
  if (!strcmp(coll, "permissions")) {
    if (!strncmp(pattern, "/users/", 7)) return owner_perm_id;
    if (!strncmp(pattern, "/groups/", 8)) return group_perm_id;
    if (!strncmp(pattern, "/permissions", 12)) return sys_perm_id;
    return vm_perm_id; /* only checked on /vms; other objects answer 404 for it, which is right */
  }
  /* vm-complete's sub-resources: ids that exist in the fixture */
  if (!strcmp(coll, "graphicsconsoles")) return "766e63";
  if (!strcmp(coll, "macpools") || !strcmp(coll, "cdroms")) return "00000000-0000-0000-0000-000000000000";
  if (!strcmp(coll, "statistics"))
    return !strncmp(pattern, "/vms/", 5) ? vm_stat_id : !strncmp(pattern, "/disks/", 7) ? disk_stat_id : host_stat_id;
  if (!strcmp(coll, "networks") || !strcmp(coll, "vnicprofiles")) return net_id;
  if (!strcmp(coll, "nics")) return nic_id;
  if (!strcmp(coll, "files")) return iso_id;
  return "nosuch";
}

/* PATTERN with each {} replaced; caller frees */
static char *fill(const char *pattern, const char *ids[MAX_PARAMS], int *nids)
{
  struct buf b = BUF_INIT;
  const char *prev = "";
  char seg[64] = "";
  *nids = 0;
  for (const char *p = pattern; *p;) {
    if (p[0] == '{' && p[1] == '}') {
      const char *id = param_for(pattern, seg);
      ids[(*nids)++] = id;
      buf_puts(&b, id);
      p += 2;
      continue;
    }
    if (*p == '/') {
      const char *e = strchrnul(p + 1, '/');
      if (!(p[1] == '{')) snprintf(seg, sizeof seg, "%.*s", (int)(e - p - 1), p + 1);
    }
    buf_putc(&b, *p++);
  }
  (void)prev;
  return buf_detach(&b);
}

static void setup_fixture(void)
{
  char *x = NULL;
  CHECK(call_as(&admin, "POST", "/vms", "<vm><name>secret-vm-name</name><cluster><name>Default</name></cluster></vm>",
                &x, false) == 201);
  char *id = x ? strstr(x, " id=\"") : NULL;
  if (id) snprintf(vm_id, sizeof vm_id, "%.36s", id + 5);
  free(x);
  CHECK(call_as(&admin, "POST", "/vms", "<vm><name>other-vm</name><cluster><name>Default</name></cluster></vm>",
                &x, false) == 201);
  id = x ? strstr(x, " id=\"") : NULL;
  if (id) snprintf(other_vm_id, sizeof other_vm_id, "%.36s", id + 5);
  free(x);
  AUTOFREE char *path = xasprintf("/vms/%s/diskattachments", vm_id);
  CHECK(call_as(&admin, "POST", path, "<disk_attachment><interface>virtio</interface><disk><alias>secret-disk-alias"
                "</alias><provisioned_size>1048576</provisioned_size><storage_domains><storage_domain><name>data"
                "</name></storage_domain></storage_domains></disk></disk_attachment>", &x, false) == 201);
  id = x ? strstr(x, " id=\"") : NULL;
  if (id) snprintf(disk_id, sizeof disk_id, "%.36s", id + 5);
  free(x);
  AUTOPTR(vm) vm = vm_get(st, vm_id);
  CHECK(vm != NULL);
  if (!vm) return;
  snprintf(cluster_id, sizeof cluster_id, "%s", vm->cluster_id);
  AUTOPTR(cluster) cl = cluster_get(st, cluster_id);
  snprintf(dc_id, sizeof dc_id, "%s", cl->datacenter_id);
  AUTOLIST(host) hosts = host_list_all(st);
  snprintf(host_id, sizeof host_id, "%s", hosts[0]->id);
  AUTOPTR(disk) d = disk_get(st, disk_id);
  CHECK(d != NULL);
  if (!d) return;
  snprintf(sd_id, sizeof sd_id, "%s", d->storage_domain_id);
  AUTOLIST(snapshot) snaps = snapshot_list_by_vm(st, vm_id);
  snprintf(snap_id, sizeof snap_id, "%s", snaps[0]->id);
  AUTOLIST(volume) vols = volume_list_by_disk(st, disk_id);
  snprintf(vol_id, sizeof vol_id, "%s", vols[0]->id);

  owner = make_user("owner@internal");
  nobody = make_user("nobody@internal");
  AUTOFREE char *login = role_with(PERMIT_VIEW);
  grant(NULL, login, nobody.id, NULL, OBJ_VM, other_vm_id);
  grant(owner_perm_id, login, owner.id, NULL, OBJ_VM, other_vm_id);
  new_id(job_id);
  struct job j = {.id = job_id, .description = (char *)"secret-job", .user_id = owner.id};
  CHECK(job_insert(st, &j) == 0);
  new_id(xfer_id);
  struct image_transfer t = {.id = xfer_id, .phase = TRANSFER_FINISHED_SUCCESS, .disk_id = disk_id,
                             .volume_id = vol_id, .user_id = owner.id, .ticket = (char *)"secret-ticket"};
  CHECK(image_transfer_insert(st, &t) == 0);
  new_id(group_id);
  struct usergroup g = {.id = group_id, .name = (char *)"secret-group"};
  CHECK(usergroup_insert(st, &g) == 0);
  char mid[64];
  new_id(mid);
  struct group_member m = {.id = mid, .group_id = group_id, .user_id = owner.id};
  CHECK(group_member_insert(st, &m) == 0);
  grant(group_perm_id, login, NULL, group_id, OBJ_VM, other_vm_id);
  free(role_with(PERMIT_CREATE_DISK));
  char *r = role_with(PERMIT_ATTACH_DISK);
  snprintf(role_id, sizeof role_id, "%s", r);
  free(r);
  AUTOLIST(permission) sys = permission_list_system(st);
  snprintf(sys_perm_id, sizeof sys_perm_id, "%s", sys[0]->id);
  grant(vm_perm_id, login, owner.id, NULL, OBJ_VM, vm_id);
  /* an ISO in the storage domain (its files) */
  new_id(iso_id);
  struct disk iso = {.id = iso_id, .alias = (char *)"secret-iso", .provisioned_size = 1 << 20,
                     .format = DISK_FORMAT_RAW, .storage_domain_id = sd_id, .content_type = DISK_CONTENT_ISO};
  CHECK(disk_insert(st, &iso) == 0);
  /* a finished backup of the VM and the checkpoint it made */
  new_id(backup_id);
  new_id(checkpoint_id);
  struct backup bk = {.id = backup_id, .vm_id = vm_id, .phase = BACKUP_SUCCEEDED,
                      .to_checkpoint_id = checkpoint_id, .user_id = owner.id};
  CHECK(backup_insert(st, &bk) == 0);
  struct checkpoint cp = {.id = checkpoint_id, .vm_id = vm_id, .state = CHECKPOINT_CREATED,
                          .backup_id = backup_id};
  CHECK(checkpoint_insert(st, &cp) == 0);
  /* an event naming the VM */
  struct event ev = {.description = (char *)"secret-event", .vm_id = vm_id, .custom_id = -1, .origin = (char *)"t"};
  CHECK(event_insert(st, &ev) == 0);
  snprintf(event_id, sizeof event_id, "%lld", (long long)ev.id);
  /* a network, a NIC and a statistic of each kind, by the ids the API gives them */
  struct { const char *path, *body; char *dst; } firsts[] = {
    {"/networks", NULL, net_id}, {NULL, NULL, nic_id},
    {NULL, NULL, vm_stat_id}, {NULL, NULL, disk_stat_id}, {NULL, NULL, host_stat_id},
  };
  AUTOFREE char *p_nic = xasprintf("/vms/%s/nics", vm_id);
  AUTOFREE char *p_vs = xasprintf("/vms/%s/statistics", vm_id);
  AUTOFREE char *p_ds = xasprintf("/disks/%s/statistics", disk_id);
  AUTOFREE char *p_hs = xasprintf("/hosts/%s/statistics", host_id);
  firsts[1].path = p_nic;
  firsts[1].body = "<nic><name>nic1</name><vnic_profile><name>ovirtmgmt</name></vnic_profile>"
                   "<plugged>false</plugged></nic>";
  firsts[2].path = p_vs;
  firsts[3].path = p_ds;
  firsts[4].path = p_hs;
  for (size_t i = 0; i < ARRAY_SIZE(firsts); i++) {
    char *got = NULL;
    int st2 = call_as(&admin, firsts[i].body ? "POST" : "GET", firsts[i].path, firsts[i].body, &got, false);
    CHECK(st2 == 200 || st2 == 201);
    const char *at = got ? strstr(got, " id=\"") : NULL;
    if (at) snprintf(firsts[i].dst, 64, "%.*s", (int)strcspn(at + 5, "\""), at + 5);
    free(got);
  }
}

static bool leaks(const char *body)
{
  static const char *const secrets[] = {"secret-vm-name", "secret-disk-alias", "secret-job", "secret-ticket",
                                        "secret-group", "secret-event"};
  for (size_t i = 0; body && i < ARRAY_SIZE(secrets); i++)
    if (strstr(body, secrets[i])) return true;
  return false;
}

static void walk(void)
{
  size_t n = api_route_count();
  int failures = 0;
  for (size_t i = 0; i < n; i++) {
    const char *method, *pattern;
    struct route_rule rule;
    api_route_info(i, &method, &pattern, &rule);
    if (rule.kind == RULE_MISSING) {
      fprintf(stderr, "route %s %s has no permission rule\n", method, pattern);
      failures++;
      continue;
    }
    const char *ids[MAX_PARAMS];
    int nids;
    AUTOFREE char *path = fill(pattern, ids, &nids);
    bool mutating = strcmp(method, "GET") != 0;

    /* 1. no credentials */
    if (call_as(NULL, method, path, NULL, NULL, true) != 401) {
      fprintf(stderr, "%s %s: not 401 without a user\n", method, path);
      failures++;
    }

    /* 2. a user with no permission here */
    AUTOFREE char *body = NULL;
    int st2 = call_as(&nobody, method, path, NULL, &body, false);
    bool ok2;
    if (rule.kind == RULE_LOGGED_IN && !mutating) ok2 = !leaks(body) && st2 != 401 && st2 != 500;
    else ok2 = (st2 == 403 || st2 == 404) && !leaks(body);
    if (!ok2) {
      fprintf(stderr, "%s %s as a user without permission: %d %s\n", method, path, st2, body ? body : "");
      failures++;
    }

    /* 3. exactly the needed role on exactly the route's object */
    const struct user *who = &nobody;
    struct user granted = {0};
    AUTOFREE char *uname = xasprintf("granted-%zu@internal", i);
    if (rule.kind == RULE_OWNER) {
      who = &owner;
    } else if (rule.kind == RULE_LOGGED_IN && nids > 0) {
      /* an event: visible to whoever sees its VM */
      granted = make_user(uname);
      AUTOFREE char *role = role_with(PERMIT_VIEW);
      grant(NULL, role, granted.id, NULL, OBJ_VM, vm_id);
      who = &granted;
    } else if (rule.kind == RULE_OBJECT || rule.kind == RULE_BODY) {
      granted = make_user(uname);
      AUTOFREE char *role = role_with(rule.permit);
      const char *obj_id = rule.kind == RULE_OBJECT && rule.param >= 0 ? ids[(int)rule.param] : PERM_SYSTEM_ID;
      grant(NULL, role, granted.id, NULL, rule.kind == RULE_OBJECT ? rule.obj : OBJ_SYSTEM, obj_id);
      who = &granted;
    }
    AUTOFREE char *out3 = NULL;
    int st3 = call_as(who, method, path, NULL, &out3, mutating);
    bool ok3 = mutating ? st3 == 200 : (st3 == 200);
    /* per-object permission routes of other kinds are given the VM's permission id: a 404 is right there */
    if (!ok3 && st3 == 404 && strstr(pattern, "/permissions/{}") && strncmp(pattern, "/vms/", 5) != 0) ok3 = true;
    /* the fixture's template (Blank) has no disks */
    if (!ok3 && st3 == 404 && !strcmp(pattern, "/templates/{}/diskattachments/{}")) ok3 = true;
    /* the fixture's VM does not run: its guest reports no device */
    if (!ok3 && st3 == 404 && !strcmp(pattern, "/vms/{}/reporteddevices/{}")) ok3 = true;
    if (!ok3) {
      fprintf(stderr, "%s %s with exactly the needed role: %d %s\n", method, path, st3, out3 ? out3 : "");
      failures++;
    }
    free(granted.id);
    free(granted.name);
  }
  CHECK(failures == 0);
  printf("# walked %zu routes\n", n);
}

static void model(void)
{
  char *x = NULL;
  /* inheritance: a role on the cluster reaches its VMs and their disks */
  struct user carol = make_user("carol@internal");
  AUTOFREE char *ops = role_with(PERMIT_VM_BASIC_OPERATIONS);
  grant(NULL, ops, carol.id, NULL, OBJ_CLUSTER, cluster_id);
  AUTOFREE char *vpath = xasprintf("/vms/%s", vm_id);
  AUTOFREE char *dpath = xasprintf("/disks/%s", disk_id);
  CHECK(call_as(&carol, "GET", vpath, NULL, NULL, false) == 200);
  CHECK(call_as(&carol, "GET", dpath, NULL, NULL, false) == 200);
  AUTOFREE char *stop = xasprintf("/vms/%s/stop", vm_id);
  CHECK(call_as(&carol, "POST", stop, NULL, NULL, true) == 200);
  AUTOFREE char *del = xasprintf("/vms/%s", vm_id);
  CHECK(call_as(&carol, "DELETE", del, NULL, &x, false) == 403);  /* sees it, may not */
  free(x);
  /* a denial is an audit event naming the user, the action and the object */
  AUTOLIST(event) evs = event_list_all(st);
  const struct event *denied = NULL;
  for (size_t i = 0; evs && evs[i] && !denied; i++)
    if (strncmp(evs[i]->description, "permission denied: user 'carol@internal'", 40) == 0) denied = evs[i];
  CHECK(denied && strstr(denied->description, "DELETE_VM") && strstr(denied->description, vm_id));

  /* groups: a role granted to a group reaches its members */
  struct user dave = make_user("dave@internal");
  CHECK(call_as(&dave, "GET", vpath, NULL, NULL, false) == 401);   /* no LOGIN anywhere */
  char gid[64], mid[64];
  new_id(gid);
  new_id(mid);
  struct usergroup g = {.id = gid, .name = (char *)"vmops"};
  CHECK(usergroup_insert(st, &g) == 0);
  struct group_member m = {.id = mid, .group_id = gid, .user_id = dave.id};
  CHECK(group_member_insert(st, &m) == 0);
  grant(NULL, ops, NULL, gid, OBJ_VM, vm_id);
  CHECK(call_as(&dave, "GET", vpath, NULL, NULL, false) == 200);
  AUTOFREE char *opath = xasprintf("/vms/%s", other_vm_id);
  CHECK(call_as(&dave, "GET", opath, NULL, &x, false) == 404);
  CHECK(x && strstr(x, "does not exist"));
  free(x);
  CHECK(perm_can_login(st, &dave) == 0);

  /* a locked user stops at once */
  struct user_lock l = {.user_id = dave.id};
  CHECK(user_lock_insert(st, &l) == 0);
  CHECK(call_as(&dave, "GET", vpath, NULL, NULL, false) == 401);
  CHECK(perm_can_login(st, &dave) < 0 && error_code() == ERR_AUTH);
  CHECK(user_lock_delete(st, dave.id) == 0);
  CHECK(call_as(&dave, "GET", vpath, NULL, NULL, false) == 200);

  /* predefined roles never change; custom ones do */
  AUTOFREE char *su = xasprintf("/roles/%s/permits", PERM_SUPERUSER_ROLE_ID);
  CHECK(call_as(&admin, "POST", su, "<permit id=\"1101\"/>", NULL, false) == 409);
  CHECK(call_as(&admin, "POST", "/roles", "<role><name>backup</name><permits><permit id=\"12\"/>"
                "<permit><name>backup_disk</name></permit></permits></role>", &x, false) == 201);
  char rid[64] = "";
  char *idp = x ? strstr(x, " id=\"") : NULL;
  if (idp) snprintf(rid, sizeof rid, "%.36s", idp + 5);
  free(x);
  AUTOFREE char *rp = xasprintf("/roles/%s/permits", rid);
  CHECK(call_as(&admin, "GET", rp, NULL, &x, false) == 200 && strstr(x, "backup_disk") && strstr(x, "login"));
  free(x);
  AUTOFREE char *rp1 = xasprintf("/roles/%s/permits/1110", rid);
  CHECK(call_as(&admin, "DELETE", rp1, NULL, NULL, false) == 200);
  CHECK(call_as(&admin, "GET", rp1, NULL, NULL, false) == 404);
  CHECK(call_as(&admin, "POST", rp, "<permit id=\"99999\"/>", NULL, false) == 400);
  /* object permissions through the API, as the SDK sends them */
  AUTOFREE char *vp = xasprintf("/vms/%s/permissions", vm_id);
  AUTOFREE char *pbody = xasprintf("<permission><role><name>UserVmManager</name></role><user id=\"%s\"/></permission>",
                                   carol.id);
  CHECK(call_as(&admin, "POST", vp, pbody, &x, false) == 201);
  free(x);
  CHECK(call_as(&dave, "POST", vp, pbody, NULL, false) == 403);  /* sees the VM, no MANIPULATE_PERMISSIONS */
  CHECK(call_as(&admin, "GET", "/", NULL, &x, false) == 200 && strstr(x, "authenticated_user"));
  free(x);
  free(carol.id); free(carol.name); free(dave.id); free(dave.name);
}

int main(void)
{
  if (!fixture_open("perm")) return tap_done();
  st = engine_store(eng);
  setup_fixture();
  walk();
  model();
  free(owner.id); free(owner.name); free(nobody.id); free(nobody.name);
  fixture_close();
  return tap_done();
}
