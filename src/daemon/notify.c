/* notify.c: sd_notify without libsystemd. One datagram per call, to the
 * socket named by $NOTIFY_SOCKET; see notify.h and sd_notify(3). */
#include "daemon/notify.h"
#include "util/err.h"
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int daemon_notify(const char *state)
{
  const char *path = getenv("NOTIFY_SOCKET");
  if (!path || !*path) return 0;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t len = strlen(path);
  if (path[0] != '/' && path[0] != '@')
    return error(ERR_INVALID, "NOTIFY_SOCKET '%s' is neither an absolute path nor an abstract name", path);
  if (len >= sizeof sa.sun_path)
    return error(ERR_INVALID, "NOTIFY_SOCKET '%s' is too long", path);
  memcpy(sa.sun_path, path, len);
  if (path[0] == '@') sa.sun_path[0] = '\0'; /* abstract: no terminating NUL counted */
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return error(ERR_INTERNAL, "cannot notify systemd: socket: %s", strerror(errno));
  ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
  int saved = errno;
  close(fd);
  if (n < 0)
    return error(ERR_UNAVAILABLE, "cannot notify systemd at '%s': %s", path, strerror(saved));
  return 1;
}
