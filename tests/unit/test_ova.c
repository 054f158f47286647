/* test_ova.c: the OVA format: ustar headers (GNU base-256 sizes beyond 8 GiB),
 * the member index (checksums, truncation, pax), and the OVF reader. */
#include "tap.h"
#include "cmd/ova.h"
#include "repr/ovf.h"
#include "store/store.h"
#include "util/err.h"
#include "util/spawn.h"
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char OVF[] =
  "<?xml version=\"1.0\"?>\n"
  "<ovf:Envelope xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1/\" "
  "xmlns:rasd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData\" "
  "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">"
  "<References><File ovf:href=\"d1/v1\" ovf:id=\"v1\"/><File ovf:href=\"d2/v2\" ovf:id=\"v2\"/></References>"
  "<Section xsi:type=\"ovf:DiskSection_Type\">"
  "<Disk ovf:diskId=\"v1\" ovf:fileRef=\"d1/v1\" ovf:size=\"1\" ovf:disk-interface=\"VirtIO_SCSI\" "
  "ovf:boot=\"true\" ovf:disk-alias=\"root &amp; boot\" ovf:provisioned-size=\"1073741824\"/>"
  "<Disk ovf:diskId=\"v2\" ovf:fileRef=\"v2\" ovf:size=\"2\"/>"
  "</Section>"
  "<Content ovf:id=\"out\" xsi:type=\"ovf:VirtualSystem_Type\"><Name>web-1</Name>"
  "<Section xsi:type=\"ovf:OperatingSystemSection_Type\"><Description>rhel_8x64</Description></Section>"
  "<Section xsi:type=\"ovf:VirtualHardwareSection_Type\">"
  "<Item><rasd:ResourceType>3</rasd:ResourceType><rasd:num_of_sockets>2</rasd:num_of_sockets>"
  "<rasd:cpu_per_socket>4</rasd:cpu_per_socket><rasd:threads_per_cpu>1</rasd:threads_per_cpu></Item>"
  "<Item><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>512</rasd:VirtualQuantity></Item>"
  "<Item><rasd:ResourceType>17</rasd:ResourceType><rasd:InstanceId>v2</rasd:InstanceId>"
  "<IsReadOnly>true</IsReadOnly><IsPlugged>false</IsPlugged></Item>"
  "</Section></Content></ovf:Envelope>";

static int write_file(const char *path, const void *data, size_t len)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return -1;
  ssize_t w = write(fd, data, len);
  close(fd);
  return w == (ssize_t)len ? 0 : -1;
}

/* builds an archive with two members in memory */
static size_t build(unsigned char *out, const char *n1, const char *d1, const char *n2, const char *d2)
{
  size_t off = 0;
  const char *names[] = {n1, n2}, *datas[] = {d1, d2};
  for (int i = 0; i < 2; i++) {
    size_t len = strlen(datas[i]);
    tar_header_encode(out + off, names[i], (int64_t)len, 1700000000);
    off += TAR_BLOCK;
    memcpy(out + off, datas[i], len);
    off += (len + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
  }
  memset(out + off, 0, 2 * TAR_BLOCK);
  return off + 2 * TAR_BLOCK;
}

static int index_of(const void *data, size_t len, struct tar_members *m)
{
  char path[] = "/tmp/test-ova-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return -2;
  if (write(fd, data, len) != (ssize_t)len) { close(fd); unlink(path); return -2; }
  int rc = tar_index(fd, (int64_t)len, path, m);
  close(fd);
  unlink(path);
  return rc;
}

int main(void)
{
  static unsigned char ar[16 * TAR_BLOCK];
  unsigned char hdr[TAR_BLOCK];

  /* small sizes are octal; 8 GiB and more use base-256 */
  CHECK(tar_header_encode(hdr, "vm.ovf", 1234, 0) == 0);
  CHECK(memcmp(hdr + 124, "00000002322", 11) == 0);
  CHECK(memcmp(hdr + 257, "ustar", 6) == 0);
  int64_t big = (int64_t)64 << 30;
  CHECK(tar_header_encode(hdr, "images/big", big, 0) == 0);
  CHECK(hdr[124] == 0x80);
  int64_t v = 0;
  for (int i = 1; i < 12; i++) v = (v << 8) | hdr[124 + i];
  CHECK(v == big);
  CHECK(tar_header_encode(hdr, "x", ((int64_t)8 << 30) - 1, 0) == 0 && hdr[124] == '7');
  CHECK(tar_header_encode(hdr, "", 1, 0) == -1 && error_code() == ERR_INVALID);
  /* long names go to the ustar prefix; unsplittable ones are refused */
  char longname[200];
  memset(longname, 'a', 120);
  longname[60] = '/';
  longname[120] = 0;
  CHECK(tar_header_encode(hdr, longname, 1, 0) == 0);
  memset(longname, 'a', 150);
  longname[150] = 0;
  CHECK(tar_header_encode(hdr, longname, 1, 0) == -1);

  /* round trip through our reader */
  size_t len = build(ar, "vm.ovf", "<ovf/>", "d1/v1", "QFI\xfb and more");
  struct tar_members m = VEC_INIT;
  CHECK(index_of(ar, len, &m) == 0);
  CHECK(m.len == 2);
  if (m.len == 2) {
    CHECK_STR(m.ptr[0].name, "vm.ovf");
    CHECK(m.ptr[0].offset == TAR_BLOCK && m.ptr[0].size == 6);
    CHECK_STR(m.ptr[1].name, "d1/v1");
    CHECK(m.ptr[1].offset == 3 * TAR_BLOCK && m.ptr[1].size == 13);
    CHECK(tar_find(&m, "d1/v1") == &m.ptr[1]);
    CHECK(tar_find(&m, "nope") == NULL);
  }
  tar_members_free(&m);

  /* and through GNU tar, both ways */
  char dir[] = "/tmp/test-ova-dir-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char *ova = NULL, *xdir = NULL, *src = NULL, *src2 = NULL;
  CHECK(asprintf(&ova, "%s/a.ova", dir) > 0 && asprintf(&xdir, "%s/x", dir) > 0);
  CHECK(write_file(ova, ar, len) == 0 && mkdir(xdir, 0700) == 0);
  const char *untar[] = {"tar", "-xf", ova, "-C", xdir, NULL};
  CHECK(spawn_run(untar, NULL, NULL) == 0);
  AUTOBUF struct buf listing = BUF_INIT;
  const char *tlist[] = {"tar", "-tvf", ova, NULL};
  CHECK(spawn_run(tlist, &listing, NULL) == 0);
  CHECK(strstr(buf_str(&listing), "d1/v1") != NULL);
  CHECK(asprintf(&src, "%s/big.ova", dir) > 0 && asprintf(&src2, "%s/g.tar", dir) > 0);
  /* a 9 GiB member (base-256 size), as a sparse file: we and GNU tar read it */
  int64_t nine = (int64_t)9 << 30;
  int fd = open(src, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0 && tar_header_encode(hdr, "images/big", nine, 0) == 0);
  CHECK(fd >= 0 && write(fd, hdr, TAR_BLOCK) == TAR_BLOCK && ftruncate(fd, TAR_BLOCK + nine + 2 * TAR_BLOCK) == 0);
  if (fd >= 0) close(fd);
  int gfd = open(src, O_RDONLY);
  CHECK(gfd >= 0 && tar_index(gfd, TAR_BLOCK + nine + 2 * TAR_BLOCK, src, &m) == 0 && m.len == 1 &&
        m.ptr[0].size == nine);
  tar_members_free(&m);
  if (gfd >= 0) close(gfd);
  AUTOBUF struct buf biglist = BUF_INIT;
  const char *tbig[] = {"tar", "-tvf", src, NULL};
  CHECK(spawn_run(tbig, &biglist, NULL) == 0);
  CHECK(strstr(buf_str(&biglist), "9663676416") != NULL);
  /* pax headers (GNU tar --format=pax) with a name ustar cannot hold */
  char *deep = NULL;
  CHECK(asprintf(&deep, "%s/%0150d", dir, 7) > 0 && write_file(deep, "pax!", 4) == 0);
  const char *mkpax[] = {"tar", "--format=pax", "-cf", src2, "-C", dir, strrchr(deep, '/') + 1, NULL};
  CHECK(spawn_run(mkpax, NULL, NULL) == 0);
  struct stat sb;
  gfd = open(src2, O_RDONLY);
  CHECK(gfd >= 0 && fstat(gfd, &sb) == 0);
  CHECK(tar_index(gfd, (int64_t)sb.st_size, src2, &m) == 0 && m.len == 1 && m.ptr[0].size == 4 &&
        strlen(m.ptr[0].name) == 150);
  tar_members_free(&m);
  if (gfd >= 0) close(gfd);
  free(deep);
  const char *rm[] = {"rm", "-rf", dir, NULL};
  spawn_run(rm, NULL, NULL);
  free(ova); free(xdir); free(src); free(src2);

  /* damage: a flipped byte breaks the checksum; a short file is truncated */
  len = build(ar, "vm.ovf", "<ovf/>", "d1/v1", "data");
  ar[TAR_BLOCK * 2 + 10] ^= 0x40;
  CHECK(index_of(ar, len, &m) == -1 && error_code() == ERR_INVALID);
  CHECK(strstr(error_message(), "checksum") != NULL);
  len = build(ar, "vm.ovf", "<ovf/>", "d1/v1", "data");
  CHECK(index_of(ar, 3 * TAR_BLOCK - 100, &m) == -1 && error_code() == ERR_INVALID);
  CHECK(index_of("not a tar file at all, just text", 32, &m) == -1);
  memset(ar, 0, sizeof ar);
  CHECK(index_of(ar, 4 * TAR_BLOCK, &m) == -1);  /* empty archive */

  /* OVF */
  struct ovf_vm *o = ovf_parse(OVF, strlen(OVF));
  CHECK(o != NULL);
  if (o) {
    CHECK_STR(o->name, "web-1");
    CHECK_STR(o->os_type, "rhel_8x64");
    CHECK(o->memory == (int64_t)512 << 20);
    CHECK(o->sockets == 2 && o->cores == 4 && o->threads == 1);
    CHECK(o->ndisks == 2);
    if (o->ndisks == 2) {
      CHECK_STR(o->disks[0].href, "d1/v1");
      CHECK_STR(o->disks[0].alias, "root & boot");
      CHECK_STR(o->disks[0].interface, "VirtIO_SCSI");
      CHECK_STR(o->disks[0].disk_id, "d1");
      CHECK_STR(o->disks[0].volume_id, "v1");
      CHECK(o->disks[0].bootable);
      CHECK(o->disks[0].provisioned_size == (int64_t)1 << 30 && o->disks[0].active);
      CHECK_STR(o->disks[1].href, "d2/v2");   /* fileRef by File id */
      CHECK_STR(o->disks[1].disk_id, "d2");
      CHECK_STR(o->disks[1].interface, "virtio");
      CHECK(ovf_find_disk(o, "d2") == &o->disks[1] && ovf_find_disk(o, "v2") == NULL);
      CHECK(o->disks[1].provisioned_size == (int64_t)2 << 30);
      CHECK(o->disks[1].read_only && !o->disks[1].active && !o->disks[1].bootable);
    }
  }
  ovf_vm_free(o);
  CHECK(ovf_parse("<a><b>", 6) == NULL && error_code() == ERR_INVALID);
  CHECK(ovf_parse("<html/>", 7) == NULL && error_code() == ERR_INVALID);
  static const char dangling[] =
    "<Envelope><References/><DiskSection><Disk fileRef=\"nope\"/></DiskSection><Content/></Envelope>";
  CHECK(ovf_parse(dangling, strlen(dangling)) == NULL && strstr(error_message(), "nope"));
  return tap_done();
}
