/* ticket.c: image-transfer tickets, the secrets in the data URLs.
 *
 * The store keeps only a ticket's digest (secret_digest()), so a copy of the
 * database opens no transfer. The clear ticket lives in the engine's memory
 * for as long as the transfer is open, so that GET /imagetransfers/ID can
 * still show its URL; a transfer outlives no engine restart (recovery cancels
 * every open one), so nothing is lost with the memory. */
#include "cmd/internal.h"
#include "util/err.h"
#include "util/uuid.h"
#include "util/log.h"
#include <stdio.h>
#include <string.h>

/* drops the tickets of transfers no longer open; the caller holds tickets_mu */
static void tickets_prune(struct engine *eng)
{
  size_t keep = 0;
  for (size_t i = 0; i < eng->tickets.len; i++) {
    struct ticket_entry *e = &eng->tickets.ptr[i];
    int64_t open = image_transfer_count_open_by_id(eng->st, e->id);
    if (open == 0) {
      free(e->ticket);
      continue;
    }
    error_clear();
    eng->tickets.ptr[keep++] = *e;
  }
  eng->tickets.len = keep;
}

void transfer_ticket_remember(struct engine *eng, const char *transfer_id, const char *ticket)
{
  struct ticket_entry e = {.ticket = xstrdup(ticket)};
  snprintf(e.id, sizeof e.id, "%s", transfer_id);
  pthread_mutex_lock(&eng->tickets_mu);
  tickets_prune(eng);
  vec_push(&eng->tickets, e);
  pthread_mutex_unlock(&eng->tickets_mu);
}

char *transfer_ticket(struct engine *eng, const char *transfer_id)
{
  char *found = NULL;
  pthread_mutex_lock(&eng->tickets_mu);
  for (size_t i = 0; i < eng->tickets.len && !found; i++)
    if (strcmp(eng->tickets.ptr[i].id, transfer_id) == 0) found = xstrdup(eng->tickets.ptr[i].ticket);
  pthread_mutex_unlock(&eng->tickets_mu);
  return found;
}

void transfer_tickets_free(struct engine *eng)
{
  for (size_t i = 0; i < eng->tickets.len; i++) free(eng->tickets.ptr[i].ticket);
  free(eng->tickets.ptr);
  eng->tickets = (struct ticket_vec)VEC_INIT;
}

void transfer_tickets_hash_legacy(struct engine *eng)
{
  AUTOLIST(image_transfer) l = image_transfer_list_not_like(eng->st, SECRET_DIGEST_PREFIX "%");
  for (size_t i = 0; l && l[i]; i++) {
    AUTOFREE char *digest = secret_digest(l[i]->ticket);
    free(l[i]->ticket);
    l[i]->ticket = steal_pointer(&digest);
    if (image_transfer_update(eng->st, l[i]) < 0) break;
  }
  if (!l || error_code() != ERR_NONE)
    log_err("cannot replace image-transfer tickets stored in the clear: %s", error_message());
  error_clear();
}
