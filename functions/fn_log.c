/* fn_log: JSON-lines log records written atomically to stderr or a file, batched per event-loop thread. */
#include "fn_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = FN_LOG_INFO;
/* Where records go. A reopen dup2()s the new file onto this descriptor, so writers never see a gap. */
static atomic_int log_fd = STDERR_FILENO;
static char *log_path;

/* A thread that called fn_log_batch_begin collects its records here until fn_log_batch_flush. */
static _Thread_local fn_buf *batch;
static _Thread_local fn_buf batch_storage;
#define BATCH_FLUSH_AT 4096

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

static void write_all(const char *data, size_t len)
{
    int fd = atomic_load_explicit(&log_fd, memory_order_relaxed);
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
}

void fn_log_batch_begin(void)
{
    batch = &batch_storage;
}

void fn_log_batch_flush(void)
{
    if (batch != NULL && batch->len > 0) {
        write_all(batch->data, batch->len);
        batch->len = 0;
    }
}

void fn_log_batch_end(void)
{
    fn_log_batch_flush();
    if (batch != NULL)
        fn_buf_release(batch);
    batch = NULL;
}

void fn_log_write(fn_buf *buf)
{
    if (fn_buf_append_str(buf, "}\n") == 0) {
        /* Batched: whole lines, written together once per loop iteration (or when 4 KiB are waiting),
         * so a write stays within PIPE_BUF and lines never interleave. */
        if (batch != NULL && buf->len < BATCH_FLUSH_AT) {
            if (batch->len + buf->len > BATCH_FLUSH_AT)
                fn_log_batch_flush();
            if (fn_buf_append(batch, buf->data, buf->len) == 0) {
                fn_buf_release(buf);
                return;
            }
        }
        write_all(buf->data, buf->len);
    }
    fn_buf_release(buf);
}

int fn_log_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    free(log_path);
    log_path = strdup(path);
    int old = atomic_load(&log_fd);
    if (old == STDERR_FILENO) {
        atomic_store(&log_fd, fd);
    } else {
        dup3(fd, old, O_CLOEXEC);
        close(fd);
    }
    return 0;
}

int fn_log_reopen(void)
{
    if (log_path == NULL)
        return 0;
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    /* dup3 replaces the descriptor atomically: concurrent writers go to the old or the new file. */
    dup3(fd, atomic_load(&log_fd), O_CLOEXEC);
    close(fd);
    return 0;
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
