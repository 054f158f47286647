/* blocking.h: a guard against blocking work under a lock others wait for.
 *
 * The store's mutex serialises every HTTP worker, the transfer reaper and
 * libvirt's event thread. A qemu-img run or file I/O under it stalls them
 * all, so the store marks its lock here (per thread, nestable) and the
 * places that block (spawning a program, touching a volume file) refuse to
 * run while it is held: the bug shows up as a clear error in tests instead of
 * as a stall under load. */
#pragma once

/* the calling thread takes / drops a lock under which nothing may block */
void blocking_forbid(void);
void blocking_allow(void);
/* 0 when the calling thread may block; else -1 with ERR_INTERNAL recorded
 * naming WHAT (e.g. "run 'qemu-img'") */
int blocking_check(const char *what) __attribute__((warn_unused_result));
