/* log.h: daemon logging to stderr with a level and a timestamp.
 * Log what happened, not errors already reported: an error is reported once,
 * by whoever finally handles it (the HTTP layer logs failed requests). */
#pragma once
#include "util/cleanup.h"
enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
void log_set_level(enum log_level l);
void log_msg(enum log_level l, const char *fmt, ...) PRINTF(2, 3);
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_err(...) log_msg(LOG_ERROR, __VA_ARGS__)
