/* fn_log: JSON-lines logging shared by the gateway and the function runtimes. */
#ifndef FN_LOG_H
#define FN_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include "fn_buf.h"

/*
 * Every log record is one JSON object on one line, written whole with a single write(2) to the log
 * file descriptor (stderr by default, or a file), so lines from several threads never interleave.
 * Records below the current level are dropped before any formatting. Thread-safe; never blocks
 * beyond the write itself.
 */

typedef enum fn_log_level { FN_LOG_DEBUG, FN_LOG_INFO, FN_LOG_WARN, FN_LOG_ERROR } fn_log_level;

void fn_log_set_level(fn_log_level level);
fn_log_level fn_log_get_level(void);
/* Parses "debug", "info", "warn", "error". Returns 0, or -1 for another word. */
int fn_log_level_parse(const char *name, size_t len, fn_log_level *out);
const char *fn_log_level_name(fn_log_level level);
static inline int fn_log_enabled(fn_log_level level)
{
    return level >= fn_log_get_level();
}

/* Starts a record in buf: {"time":"...","level":"...". Append fields with fn_log_field_*,
 * then fn_log_write finishes the object, writes the line and releases buf. */
int fn_log_begin(fn_buf *buf, fn_log_level level);
int fn_log_field_str(fn_buf *buf, const char *key, const char *value, size_t len);
int fn_log_field_int(fn_buf *buf, const char *key, long long value);
/* Appends `"key":` followed by raw JSON text that the caller guarantees is valid. */
int fn_log_field_raw(fn_buf *buf, const char *key, const char *json, size_t len);
void fn_log_write(fn_buf *buf);

/* Sends records to `path` (appended; created 0644) instead of stderr. Returns 0 or -errno. */
int fn_log_open(const char *path);
/* Reopens the log file (after logrotate moved it: SIGUSR1). No-op on stderr. Returns 0 or -errno. */
int fn_log_reopen(void);

/* Per-thread batching for event-loop threads: after fn_log_batch_begin, this thread's records are
 * collected and written by fn_log_batch_flush (call it once per loop iteration) in one write, or as
 * soon as 4 KiB are waiting. fn_log_batch_end flushes and stops batching. */
void fn_log_batch_begin(void);
void fn_log_batch_flush(void);
void fn_log_batch_end(void);

/* Convenience: one record with "msg" formatted printf-style. */
void fn_log_msg(fn_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
