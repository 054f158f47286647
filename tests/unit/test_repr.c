/* representation tests: XML/JSON rendering against golden files, parsing */
#include "tap.h"
#include "golden.h"
#include "repr/node.h"
#include "util/err.h"
#include <time.h>
#include <stdlib.h>
#include <string.h>

/* CPU ms of this thread (not wall time: tests run in parallel on a busy box) */
static int64_t cpu_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* CPU ms to render a collection of N events as JSON and XML (best of three) */
static int64_t render_ms(size_t n)
{
  int64_t best = -1;
  for (int run = 0; run < 3; run++) {
    AUTOPTR(node) list = node_new("events");
    list->is_list = true;
    for (size_t i = 0; i < n; i++) {
      struct node *e = node_add(list, "event");
      node_set_attr(e, "id", "1");
      node_add_text(e, "description", "VM e2e-x is down");
    }
    /* and one element with as many differently named children */
    struct node *wide = node_add(list, "statistics");
    for (size_t i = 0; i < n; i++) {
      char name[32];
      snprintf(name, sizeof name, "k%zu", i);
      node_add_text(wide, name, "1");
    }
    int64_t t0 = cpu_ms();
    AUTOBUF struct buf j = BUF_INIT, x = BUF_INIT;
    node_to_json(list, &j);
    node_to_xml(list, &x);
    int64_t ms = cpu_ms() - t0;
    if (best < 0 || ms < best) best = ms;
  }
  return best;
}


int main(void)
{
  AUTOPTR(node) vms = node_new("vms");
  vms->is_list = true;
  struct node *vm = node_add(vms, "vm");
  node_set_attr(vm, "href", "/ovirt-engine/api/vms/123");
  node_set_attr(vm, "id", "123");
  node_add_text(vm, "name", "db & <web>");
  node_add_int(vm, "memory", 1073741824);
  struct node *topo = node_add(node_add(vm, "cpu"), "topology");
  node_add_int(topo, "cores", 2);
  node_add_link(vm, "diskattachments", "/ovirt-engine/api/vms/123/diskattachments");
  node_add_ref(vm, "cluster", "c1", "/ovirt-engine/api/clusters/c1");

  AUTOBUF struct buf x = BUF_INIT, j = BUF_INIT;
  node_to_xml(vms, &x);
  golden("vms.xml", buf_str(&x));
  node_to_json(vms, &j);
  golden("vms.json", buf_str(&j));

  const char *in = "<disk_attachment><active>true</active><interface>virtio</interface>"
                   "<disk id=\"D1\"><snapshot id=\"S1\"/></disk><unknown>x</unknown></disk_attachment>";
  AUTOPTR(node) a = node_from_xml(in, strlen(in));
  CHECK(a != NULL);
  CHECK_STR(a->name, "disk_attachment");
  CHECK_STR(node_text(a, "interface"), "virtio");
  CHECK_STR(node_attr(node_child(a, "disk"), "id"), "D1");
  CHECK_STR(node_attr(node_child(node_child(a, "disk"), "snapshot"), "id"), "S1");
  bool active = false;
  CHECK(node_get_bool(a, "active", &active) == 1 && active);

  const char *bad = "<vm><name>x</vm>";
  CHECK(node_from_xml(bad, strlen(bad)) == NULL);
  CHECK(error_code() == ERR_INVALID);

  const char *xxe = "<!DOCTYPE v [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><vm><name>&e;</name></vm>";
  AUTOPTR(node) xx = node_from_xml(xxe, strlen(xxe));
  CHECK(xx == NULL && error_code() == ERR_INVALID && strstr(error_message(), "DOCTYPE"));
  /* billion laughs: refused at the DOCTYPE, before any entity exists */
  struct buf lol = BUF_INIT;
  buf_puts(&lol, "<?xml version=\"1.0\"?><!DOCTYPE vm [<!ENTITY l0 \"lol\">");
  for (int i = 1; i < 10; i++)
    buf_printf(&lol, "<!ENTITY l%d \"&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;\">", i, i - 1,
               i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
  buf_puts(&lol, "]><vm><name>&l9;</name></vm>");
  AUTOPTR(node) lx = node_from_xml(lol.data, lol.len);
  CHECK(lx == NULL && error_code() == ERR_INVALID && strstr(error_message(), "DOCTYPE"));
  buf_free(&lol);
  const char *ext = "<!DOCTYPE vm SYSTEM \"file:///etc/passwd\"><vm><name>x</name></vm>";
  AUTOPTR(node) ex = node_from_xml(ext, strlen(ext));
  CHECK(ex == NULL && strstr(error_message(), "DOCTYPE"));
  error_clear();

  const char *js = "{\"name\":\"v1\",\"memory\":1024,\"cpu\":{\"topology\":{\"cores\":\"2\"}},"
                   "\"disk\":{\"id\":\"D2\"},\"active\":true}";
  AUTOPTR(node) jn = node_from_json(js, strlen(js), "vm");
  CHECK(jn != NULL);
  CHECK_STR(node_text(jn, "name"), "v1");
  int64_t mem = 0;
  CHECK(node_get_int64(jn, "memory", &mem) == 1 && mem == 1024);
  CHECK_STR(node_text(jn, "cpu/topology/cores"), "2");
  CHECK_STR(node_attr(node_child(jn, "disk"), "id"), "D2");

  const char *badjs = "{\"name\": ";
  CHECK(node_from_json(badjs, strlen(badjs), "vm") == NULL);
  int64_t bogus;
  AUTOPTR(node) bn = node_from_json("{\"memory\":\"lots\"}", 17, "vm");
  CHECK(node_get_int64(bn, "memory", &bogus) == -1 && error_code() == ERR_INVALID);
  /* rendering is linear: 8x the entities costs about 8x, not 64x (it was
   * quadratic in the number of kids with distinct names) */
  int64_t small = render_ms(5000), big = render_ms(40000);
  CHECK(big < 24 * (small + 5));
  if (big >= 24 * (small + 5)) fprintf(stderr, "render 5k: %lld ms, 40k: %lld ms\n", (long long)small, (long long)big);
  return tap_done();
}
