/* timeutil.h: wall and monotonic clocks, and oVirt's date format */
#pragma once
#include <stdint.h>
int64_t now_ms(void);       /* wall clock, ms since epoch */
int64_t mono_ms(void);      /* monotonic clock, ms */
/* formats ms-since-epoch as oVirt does: 2026-11-25T18:54:18.123+00:00 (out >= 32 bytes) */
void time_format_iso(int64_t ms, char out[32]);
