/* imageio.h: the HTTP data path of image transfers (/images/TICKET), as
 * ovirt-imageio serves it, read from and written to the transfer's NBD
 * export with libnbd.
 *
 *   OPTIONS /images/TICKET         {"features": [...], "max_readers": 8, "max_writers": 8,
 *                                   "unix_socket": PATH, "nbd_url": URL} (the last two
 *                                   only to a client on the same host)
 *   GET     /images/TICKET         the bytes; Range: bytes=A-B answers 206
 *   GET     /images/TICKET/extents [{"start","length","zero","hole"}, ...] (context=zero)
 *                                  [{"start","length","dirty","zero"}, ...] (context=dirty,
 *                                  a transfer with a dirty_context; 404 otherwise)
 *   GET     /images/TICKET/checksum[?algorithm=A&block_size=N]
 *                                  {"algorithm","block_size","checksum"} (util/blkhash.h)
 *   GET     /images/TICKET/checksum/algorithms  {"algorithms": [...]}
 *   PUT     /images/TICKET         upload; Content-Range: bytes A-B/SIZE places the body
 *   PATCH   /images/TICKET         {"op": "zero", "offset", "size"} or {"op": "flush"}
 *
 * The ticket is the credential (no Authorization header), as with imageio.
 * Zero and unallocated ranges are never read from the export: GET fills
 * them with zeroes, and an uploaded all-zero block becomes an NBD zero.
 *
 * unix_socket is what ovirt-imageio's client expects there: the same HTTP
 * API on a unix socket (http.h's imageio_socket), which a local client
 * switches to. nbd_url is the transfer's NBD export itself, for local
 * clients that speak NBD (snapback's CLI). */
#pragma once
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

struct engine;
struct imageio_req;

#define IMAGEIO_PREFIX "/images/"

/* true for a URL below /images/ */
bool imageio_owns(const char *url);

/* what the data path needs from the server that hosts it */
struct imageio_config {
  struct engine *eng;
  const char *unix_socket;   /* the HTTP unix socket serving /images/, or NULL */
};

/* MHD's access handler for /images/ URLs: the same calls and contract as
 * MHD's, with *state this request's imageio state (NULL at the first call).
 * PUT bodies are streamed to the export, never held whole in memory. */
enum MHD_Result imageio_access(const struct imageio_config *cfg, struct MHD_Connection *c, const char *url,
                               const char *method, const char *upload_data, size_t *upload_size,
                               struct imageio_req **state);

/* frees the state when MHD completes the request; NULL-safe */
void imageio_done(struct imageio_req *state);
