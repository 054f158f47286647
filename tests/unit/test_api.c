/* API layer tests: routing (404/405 from one place), rendering, input
 * validation and "a failed request changes nothing", against a real store in
 * a temp dir. The host is libvirt's built-in test driver (test:///default), a
 * mock that is fine inside a unit test; the end-to-end suite uses real QEMU. */
#include "fixture.h"
#include <sys/stat.h>
#include <unistd.h>

/* runs one request as admin; returns the HTTP status it maps to; *out gets the XML */
static int call(const char *method, const char *path, const char *xml, const struct api_param *q,
                char **out)
{
  return fixture_call(&admin, method, path, xml, q, out, false);
}

static int count_of(const char *path, const char *elem)
{
  AUTOFREE char *x = NULL;
  call("GET", path, NULL, NULL, &x);
  int n = 0;
  AUTOFREE char *needle = xasprintf("<%s ", elem);
  for (const char *p = x; p && (p = strstr(p, needle)); p++) n++;
  return n;
}

int main(void)
{
  if (!fixture_open("api")) return tap_done();
  const char *tmpl = fixture_dir;

  char *x = NULL;
  CHECK(call("GET", "/", NULL, NULL, &x) == 200);
  CHECK(x && strstr(x, "<product_info>"));
  free(x);
  x = NULL;
  CHECK(call("GET", "/nosuch", NULL, NULL, &x) == 404);
  free(x);
  x = NULL;
  CHECK(call("DELETE", "/clusters", NULL, NULL, &x) == 405);
  CHECK(x && strstr(x, "use GET"));
  free(x);
  x = NULL;
  CHECK(call("GET", "/clusters", NULL, NULL, &x) == 200 && strstr(x, "<name>Default</name>"));
  free(x);
  x = NULL;
  CHECK(count_of("/templates", "template") == 1);
  CHECK(count_of("/storagedomains", "storage_domain") == 1);

  /* VMs: add, duplicate, bad input */
  const char *vm = "<vm><name>web1</name><cluster><name>Default</name></cluster>"
                   "<template><name>Blank</name></template><memory>134217728</memory></vm>";
  CHECK(call("POST", "/vms", vm, NULL, &x) == 201);
  CHECK(x && strstr(x, "<status>down</status>"));
  free(x);
  x = NULL;
  CHECK(call("POST", "/vms", vm, NULL, &x) == 409);
  free(x);
  x = NULL;
  CHECK(call("POST", "/vms", "<vm><cluster><name>Default</name></cluster></vm>", NULL, &x) == 400);
  CHECK(x && strstr(x, "vm.name"));
  free(x);
  x = NULL;
  CHECK(call("POST", "/vms", "<vm><name>x</name><cluster><name>Default</name></cluster><memory>lots</memory></vm>", NULL, &x) == 400);
  free(x);
  x = NULL;
  CHECK(call("POST", "/vms", "<vm><name>x</name><cluster><name>Nope</name></cluster></vm>", NULL, &x) == 404);
  CHECK(x && strstr(x, "Nope"));
  free(x);
  x = NULL;
  CHECK(call("POST", "/vms", "<vm><name>bad name!</name><cluster><name>Default</name></cluster></vm>", NULL, &x) == 400);
  free(x);
  x = NULL;
  CHECK(call("POST", "/vms", "<disk/>", NULL, &x) == 400);
  free(x);
  x = NULL;
  CHECK(count_of("/vms", "vm") == 1);
  CHECK(call("POST", "/vms", "<vm><name>db1</name><cluster><name>Default</name></cluster></vm>", NULL, NULL) == 201);

  /* search and max */
  struct api_param q1[] = {{"search", "name=web*"}, {NULL, NULL}};
  CHECK(call("GET", "/vms", NULL, q1, &x) == 200 && strstr(x, "<name>web1</name>") && !strstr(x, "<name>db1</name>"));
  free(x);
  x = NULL;
  struct api_param q2[] = {{"max", "1"}, {NULL, NULL}};
  CHECK(call("GET", "/vms", NULL, q2, &x) == 200 && strstr(x, "<name>db1</name>") && !strstr(x, "<name>web1</name>"));
  free(x);
  x = NULL;
  struct api_param q3[] = {{"search", "colour=red"}, {NULL, NULL}};
  CHECK(call("GET", "/vms", NULL, q3, &x) == 400);
  free(x);
  x = NULL;

  /* unknown ids name the id */
  CHECK(call("GET", "/vms/0b4d0c41-0000-4000-8000-000000000000", NULL, NULL, &x) == 404);
  CHECK(x && strstr(x, "0b4d0c41-0000-4000-8000-000000000000"));
  free(x);
  x = NULL;

  /* disks and attachments */
  const char *disk = "<disk><alias>d1</alias><provisioned_size>1048576</provisioned_size><format>cow</format>"
                     "<storage_domains><storage_domain><name>data</name></storage_domain></storage_domains></disk>";
  CHECK(call("POST", "/disks", disk, NULL, &x) == 201);
  char disk_id[UUID_STRLEN + 1];
  fixture_first_id(x, disk_id);
  free(x);
  x = NULL;
  CHECK(uuid_is_valid(disk_id));
  CHECK(call("POST", "/disks", "<disk><alias>d2</alias><storage_domains><storage_domain><name>data</name></storage_domain></storage_domains></disk>", NULL, &x) == 400);
  CHECK(x && strstr(x, "provisioned_size"));
  free(x);
  x = NULL;
  CHECK(count_of("/disks", "disk") == 1);

  struct api_param qs[] = {{"search", "name=web1"}, {NULL, NULL}};
  CHECK(call("GET", "/vms", NULL, qs, &x) == 200);
  char vm_id[UUID_STRLEN + 1] = "";
  const char *idp = x ? strstr(x, "<vm href=") : NULL;
  idp = idp ? strstr(idp, " id=\"") : NULL;
  if (idp) memcpy(vm_id, idp + 5, UUID_STRLEN);
  free(x);
  x = NULL;
  AUTOFREE char *att_path = xasprintf("/vms/%s/diskattachments", vm_id);
  AUTOFREE char *att = xasprintf("<disk_attachment><disk id=\"%s\"/><interface>virtio</interface>"
                                 "<bootable>true</bootable><active>true</active></disk_attachment>", disk_id);
  CHECK(call("POST", att_path, att, NULL, &x) == 201);
  free(x);
  x = NULL;
  CHECK(call("POST", att_path, att, NULL, &x) == 409); /* already attached */
  CHECK(x && strstr(x, "already attached"));
  free(x);
  x = NULL;
  AUTOFREE char *bad_iface = xasprintf("<disk_attachment><disk id=\"%s\"/><interface>floppy</interface></disk_attachment>", disk_id);
  CHECK(call("POST", att_path, bad_iface, NULL, &x) == 400);
  free(x);
  x = NULL;
  CHECK(count_of(att_path, "disk_attachment") == 1);
  /* a second VM cannot take the non-shareable disk */
  CHECK(call("GET", "/vms", NULL, (struct api_param[]){{"search", "name=db1"}, {NULL, NULL}}, &x) == 200);
  char vm2[UUID_STRLEN + 1] = "";
  idp = x ? strstr(strstr(x, "<vm href="), " id=\"") : NULL;
  if (idp) memcpy(vm2, idp + 5, UUID_STRLEN);
  free(x);
  x = NULL;
  AUTOFREE char *att2_path = xasprintf("/vms/%s/diskattachments", vm2);
  CHECK(call("POST", att2_path, att, NULL, &x) == 409);
  CHECK(x && strstr(x, "not shareable"));
  free(x);
  x = NULL;

  /* JSON bodies parse into the same shape */
  const char *js = "{\"name\":\"j1\",\"cluster\":{\"name\":\"Default\"}}";
  AUTOPTR(node) jb = node_from_json(js, strlen(js), NULL);
  struct api_request req = {.method = "POST", .path = "/vms", .root = "/api", .version = 4,
                            .user = &admin, .body = jb};
  struct api_response resp;
  int jrc = jb ? api_handle(eng, &req, &resp) : -1;
  if (jrc < 0) fprintf(stderr, "json add: %s\n", error_message());
  CHECK(jrc == 0 && resp.status == 201);
  if (jb) { node_free(resp.body); free(resp.location); }

  /* events recorded for commands, with the user */
  CHECK(call("GET", "/events", NULL, NULL, &x) == 200 && strstr(x, "admin@internal"));
  free(x);
  x = NULL;
  CHECK(call("POST", "/events", "<event><description>backup started</description><origin>mybackup</origin>"
             "<severity>normal</severity><custom_id>7</custom_id></event>", NULL, &x) == 201);
  CHECK(x && strstr(x, "<custom_id>7</custom_id>"));
  free(x);
  x = NULL;
  CHECK(call("POST", "/events", "<event><origin>x</origin></event>", NULL, &x) == 400);
  free(x);
  x = NULL;
  CHECK(call("GET", "/jobs", NULL, NULL, &x) == 200 && strstr(x, "AddVm"));
  free(x);
  x = NULL;
  /* a VM's jobs by search: web1's disk attachment, not the VMs' creation (no VM yet) */
  struct api_param qj[] = {{"search", "vm.name=web1"}, {NULL, NULL}};
  CHECK(call("GET", "/jobs", NULL, qj, &x) == 200 && x && strstr(x, "<job ") && !strstr(x, "AddVm"));
  free(x);
  x = NULL;
  AUTOFREE char *qjid = xasprintf("vm.id=%s", vm_id);
  struct api_param qj2[] = {{"search", qjid}, {NULL, NULL}};
  CHECK(count_of("/jobs", "job") > 0);
  CHECK(call("GET", "/jobs", NULL, qj2, &x) == 200 && x && strstr(x, "<job ") && !strstr(x, "AddVm"));
  free(x);
  x = NULL;
  struct api_param qj3[] = {{"search", "vm.colour=red"}, {NULL, NULL}};
  CHECK(call("GET", "/jobs", NULL, qj3, &x) == 400 && x && strstr(x, "vm.name"));
  free(x);
  x = NULL;

  /* control characters are refused anywhere, naming the field; nothing changes */
  int vms_before = count_of("/vms", "vm");
  CHECK(call("POST", "/vms", "<vm><name>a\nb</name><cluster><name>Default</name></cluster></vm>", NULL, &x) == 400);
  CHECK(x && strstr(x, "'vm.name'") && strstr(x, "U+000A"));
  free(x);
  x = NULL;
  CHECK(call("POST", "/vms", "<vm><name>c1</name><description>x\xc2\x85y</description>"
             "<cluster><name>Default</name></cluster></vm>", NULL, &x) == 400);
  CHECK(x && strstr(x, "'vm.description'") && strstr(x, "U+0085"));
  free(x);
  x = NULL;
  CHECK(call("GET", "/vms", NULL, (struct api_param[]){{"search", "name=a\tb"}, {NULL, NULL}}, &x) == 400);
  CHECK(x && strstr(x, "parameter 'search'"));
  free(x);
  x = NULL;
  CHECK(call("GET", "/vms/a\nb", NULL, NULL, &x) == 400);
  CHECK(x && strstr(x, "the path"));
  free(x);
  x = NULL;
  CHECK(count_of("/vms", "vm") == vms_before);
  /* but text that only looks odd passes: quotes, UTF-8, '..' in a description */
  CHECK(call("POST", "/vms", "<vm><name>ok1</name><description>caf\xc3\xa9 \"..\" 'x'</description>"
             "<cluster><name>Default</name></cluster></vm>", NULL, NULL) == 201);

  /* host paths: outside the state directory (no --allow-path here) -> 403 naming the setting */
  CHECK(call("POST", "/storagedomains", "<storage_domain><name>sd2</name><storage><type>localfs</type>"
             "<path>/var/tmp</path></storage></storage_domain>", NULL, &x) == 403);
  CHECK(x && strstr(x, "--allow-path"));
  free(x);
  x = NULL;
  AUTOFREE char *inside = xasprintf("%s/more-storage", tmpl);
  CHECK(mkdir(inside, 0700) == 0);
  AUTOFREE char *sd_in = xasprintf("<storage_domain><name>sd3</name><storage><type>localfs</type>"
                                   "<path>%s/../%s/more-storage</path></storage></storage_domain>",
                                   tmpl, strrchr(tmpl, '/') + 1);
  CHECK(call("POST", "/storagedomains", sd_in, NULL, &x) == 201);
  CHECK(x && strstr(x, inside));
  free(x);
  x = NULL;

  /* rules that live in commands behind thin handlers: migrating a down VM is
   * refused; oVirt 3's DELETE /vms/{}/disks/{} without <detach> removes the disk */
  AUTOFREE char *mig = xasprintf("/vms/%s/migrate", vm_id);
  CHECK(call("POST", mig, "<action/>", NULL, &x) == 409);
  CHECK(x && strstr(x, "not running"));
  free(x);
  x = NULL;
  AUTOFREE char *v3del = xasprintf("/vms/%s/disks/%s", vm_id, disk_id);
  CHECK(call("DELETE", v3del, NULL, NULL, &x) == 200);
  free(x);
  x = NULL;
  CHECK(count_of(att_path, "disk_attachment") == 0);
  CHECK(count_of("/disks", "disk") == 0);

  /* hosts: bad input adds nothing; a host that does not answer is
   * non_responsive; a VM pinned to it does not start; removal rules */
  CHECK(call("POST", "/hosts", "<host><name>h2</name></host>", NULL, &x) == 400 && strstr(x, "host.address"));
  free(x);
  x = NULL;
  CHECK(call("POST", "/hosts", "<host><name>h2</name><address>a;b</address></host>", NULL, &x) == 400);
  free(x);
  x = NULL;
  CHECK(call("POST", "/hosts", "<host><name>h2</name><address>h</address><libvirt_uri>qemu:///system"
             "</libvirt_uri></host>", NULL, &x) == 400 && strstr(x, "qemu+ssh://"));
  free(x);
  x = NULL;
  CHECK(count_of("/hosts", "host") == 1);
  /* port 1 of the loopback refuses at once */
  const char *h2 = "<host><name>h2</name><address>127.0.0.1</address>"
                   "<libvirt_uri>qemu+tcp://127.0.0.1:1/system</libvirt_uri></host>";
  CHECK(call("POST", "/hosts", h2, NULL, &x) == 201);
  CHECK(x && strstr(x, "<status>non_responsive</status>") && strstr(x, "qemu+tcp://127.0.0.1:1/system"));
  char h2_id[UUID_STRLEN + 1];
  fixture_first_id(x, h2_id);
  free(x);
  x = NULL;
  CHECK(call("POST", "/hosts", h2, NULL, &x) == 409);
  free(x);
  x = NULL;
  AUTOFREE char *pinned = xasprintf("<vm><name>pinned</name><cluster><name>Default</name></cluster><template>"
                                    "<name>Blank</name></template><placement_policy><hosts><host id=\"%s\"/>"
                                    "</hosts></placement_policy></vm>", h2_id);
  CHECK(call("POST", "/vms", pinned, NULL, &x) == 201 && strstr(x, "<placement_policy>"));
  char pin_id[UUID_STRLEN + 1];
  fixture_first_id(x, pin_id);
  free(x);
  x = NULL;
  AUTOFREE char *pin_start = xasprintf("/vms/%s/start", pin_id);
  CHECK(call("POST", pin_start, "<action/>", NULL, &x) == 409 && strstr(x, "non_responsive"));
  free(x);
  x = NULL;
  AUTOFREE char *h2_path = xasprintf("/hosts/%s", h2_id);
  CHECK(call("DELETE", h2_path, NULL, NULL, &x) == 409 && strstr(x, "placement policy"));
  free(x);
  x = NULL;
  AUTOFREE char *pin_path = xasprintf("/vms/%s", pin_id);
  CHECK(call("DELETE", pin_path, NULL, NULL, &x) == 200);
  free(x);
  x = NULL;
  CHECK(call("DELETE", h2_path, NULL, NULL, &x) == 200);
  free(x);
  x = NULL;
  CHECK(count_of("/hosts", "host") == 1);

  fixture_close();
  return tap_done();
}
