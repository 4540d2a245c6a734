/* fn_log: JSON-lines log records written atomically to stderr. */
#include "fn_log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = FN_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void fn_log_set_level(fn_log_level level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

fn_log_level fn_log_get_level(void)
{
    return (fn_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

int fn_log_level_parse(const char *name, size_t len, fn_log_level *out)
{
    for (int i = 0; i < 4; ++i) {
        if (strlen(level_names[i]) == len && memcmp(level_names[i], name, len) == 0) {
            *out = (fn_log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *fn_log_level_name(fn_log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "info";
}

int fn_log_begin(fn_buf *buf, fn_log_level level)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char stamp[40];
    size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof(stamp) - n, ".%03dZ", (int)(tv.tv_usec / 1000));
    if (fn_buf_append_str(buf, "{\"time\":\"") != 0 || fn_buf_append_str(buf, stamp) != 0 ||
        fn_buf_append_str(buf, "\",\"level\":\"") != 0 || fn_buf_append_str(buf, fn_log_level_name(level)) != 0 ||
        fn_buf_append_char(buf, '"') != 0)
        return -1;
    return 0;
}

static int append_key(fn_buf *buf, const char *key)
{
    if (fn_buf_append_char(buf, ',') != 0 || fn_buf_append_json_string(buf, key, strlen(key)) != 0 ||
        fn_buf_append_char(buf, ':') != 0)
        return -1;
    return 0;
}

int fn_log_field_str(fn_buf *buf, const char *key, const char *value, size_t len)
{
    if (append_key(buf, key) != 0)
        return -1;
    return fn_buf_append_json_string(buf, value, len);
}

int fn_log_field_int(fn_buf *buf, const char *key, long long value)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%lld", value);
    if (append_key(buf, key) != 0)
        return -1;
    return fn_buf_append(buf, num, (size_t)n);
}

int fn_log_field_raw(fn_buf *buf, const char *key, const char *json, size_t len)
{
    if (append_key(buf, key) != 0)
        return -1;
    return fn_buf_append(buf, json, len);
}

void fn_log_write(fn_buf *buf)
{
    if (fn_buf_append_str(buf, "}\n") == 0) {
        size_t off = 0;
        while (off < buf->len) {
            ssize_t n = write(STDERR_FILENO, buf->data + off, buf->len - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
    }
    fn_buf_release(buf);
}

void fn_log_msg(fn_log_level level, const char *fmt, ...)
{
    if (!fn_log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(msg))
        n = sizeof(msg) - 1;
    fn_buf buf = FN_BUF_INIT;
    fn_log_begin(&buf, level);
    fn_log_field_str(&buf, "msg", msg, (size_t)n);
    fn_log_write(&buf);
}
