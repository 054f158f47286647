/* notify.h: systemd's readiness protocol (sd_notify), spoken directly.
 *
 * When systemd starts a Type=notify service it sets NOTIFY_SOCKET to a unix
 * datagram socket (a path, or "@name" for the abstract namespace). The
 * service sends "READY=1" there once it serves, "STOPPING=1" when it begins
 * to shut down. Without NOTIFY_SOCKET (started by hand) these do nothing. */
#pragma once

/* daemon_notify sends STATE ("READY=1", "STOPPING=1", "STATUS=...") to
 * $NOTIFY_SOCKET. Returns 1 when sent, 0 when NOTIFY_SOCKET is unset, -1 with
 * the error recorded when it is set but the message cannot be delivered (a
 * relative path, a name too long, or a send that fails). Thread-safe. */
int daemon_notify(const char *state);
