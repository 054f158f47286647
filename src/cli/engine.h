/* engine.h: the engine calls that backup and restore share: VMs by name,
 * snapshots (create, wait, remove), audit events. */
#pragma once
#include "cli/client.h"

/* the id of the VM named name (exact match); NULL with ERR_NOT_FOUND */
char *engine_vm_id(struct client *api, const char *name);
/* POST /events with origin snapback; best effort: a failure is only noted */
void engine_event(struct client *api, const char *vm_id, const char *severity, const char *fmt, ...)
    PRINTF(4, 5);
/* creates a snapshot without memory and waits until it is ok; *snap_id is
 * set as soon as the engine accepted it, so a caller can remove it even when
 * waiting failed */
int engine_snapshot_create(struct client *api, const char *vm_id, const char *description,
                           char **snap_id) WARN_UNUSED;
/* removes the snapshot and waits until the engine answers 404 for it */
int engine_snapshot_remove(struct client *api, const char *vm_id, const char *snap_id) WARN_UNUSED;
/* polls GET path until node_text(field) is want, at most timeout_ms */
int engine_wait_field(struct client *api, const char *path, const char *field, const char *want,
                      int64_t timeout_ms) WARN_UNUSED;
