/* uuid.h: random (v4) UUIDs as 36-char lowercase strings, from OpenSSL's CSPRNG */
#pragma once
#include <stdbool.h>
#define UUID_STRLEN 36
/* writes 37 bytes into out; returns 0, or -1 with an error when no entropy */
int uuid_generate_str(char out[UUID_STRLEN + 1]);
/* true when s has the 8-4-4-4-12 hex form */
bool uuid_is_valid(const char *s);
/* random lowercase hex token of nbytes bytes (2*nbytes chars); caller frees; NULL on error */
char *random_hex(size_t nbytes);
