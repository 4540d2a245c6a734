/* fn: shared parts of the function runtimes (reference counting, responses, file reading). */
#include "fn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void fn_response_init(fn_response *res)
{
    memset(res, 0, sizeof(*res));
    res->status = 200;
}

void fn_response_release(fn_response *res)
{
    for (size_t i = 0; i < res->nheaders; ++i) {
        free(res->headers[i].name); /* the value lives in the same block */
    }
    free(res->headers);
    fn_buf_release(&res->body);
    res->headers = NULL;
    res->nheaders = res->headers_cap = 0;
}

static int is_token_char(unsigned char c)
{
    if (c >= 'a' && c <= 'z')
        return 1;
    if (c >= 'A' && c <= 'Z')
        return 1;
    if (c >= '0' && c <= '9')
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int fn_response_add_header(fn_response *res, const char *name, size_t name_len, const char *value, size_t value_len)
{
    if (name_len == 0) {
        snprintf(res->error, sizeof(res->error), "response header with an empty name");
        return -EINVAL;
    }
    for (size_t i = 0; i < name_len; ++i) {
        if (!is_token_char((unsigned char)name[i])) {
            snprintf(res->error, sizeof(res->error), "response header name \"%.*s\" has a forbidden character",
                     (int)(name_len > 64 ? 64 : name_len), name);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < value_len; ++i) {
        unsigned char c = (unsigned char)value[i];
        if (c == '\r' || c == '\n' || c == '\0') {
            snprintf(res->error, sizeof(res->error), "response header \"%.*s\" has CR, LF or NUL in its value",
                     (int)(name_len > 64 ? 64 : name_len), name);
            return -EINVAL;
        }
    }
    if (res->nheaders == res->headers_cap) {
        size_t cap = res->headers_cap ? res->headers_cap * 2 : 8;
        fn_header *h = realloc(res->headers, cap * sizeof(*h));
        if (h == NULL)
            return -ENOMEM;
        res->headers = h;
        res->headers_cap = cap;
    }
    char *n = malloc(name_len + value_len + 2); /* one block: the name, then the value */
    if (n == NULL)
        return -ENOMEM;
    char *v = n + name_len + 1;
    for (size_t i = 0; i < name_len; ++i)
        n[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
    n[name_len] = '\0';
    memcpy(v, value, value_len);
    v[value_len] = '\0';
    if (name_len == 12 && memcmp(n, "content-type", 12) == 0)
        res->has_content_type = 1;
    res->headers[res->nheaders++] = (fn_header){n, name_len, v, value_len};
    return 0;
}

int fn_response_set_status(fn_response *res, int status)
{
    /* 1xx are not final answers: a function that sent one would leave the client waiting. */
    if (status < 200 || status > 599) {
        snprintf(res->error, sizeof(res->error), "status %d is outside 200..599", status);
        return -EINVAL;
    }
    res->status = status;
    return 0;
}

fn_function *fn_function_acquire(fn_function *fn)
{
    atomic_fetch_add_explicit(&fn->refs, 1, memory_order_relaxed);
    return fn;
}

void fn_function_release(fn_function **pfn)
{
    fn_function *fn = *pfn;
    if (fn == NULL)
        return;
    *pfn = NULL;
    if (atomic_fetch_sub_explicit(&fn->refs, 1, memory_order_acq_rel) == 1)
        fn->ops->destroy(fn);
}

/* FNV-1a 64: a version tag for operators, not a security property. */
static uint64_t content_hash(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; ++i) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

fn_function *fn__function_new(const fn_runtime_ops *ops, fn_kind kind, const char *name, const char *path,
                              const void *content, size_t content_len, unsigned nthreads)
{
    fn_function *fn = calloc(1, sizeof(*fn));
    if (fn == NULL)
        return NULL;
    fn->ops = ops;
    fn->kind = kind;
    fn->name = strdup(name);
    fn->path = strdup(path);
    if (fn->name == NULL || fn->path == NULL) {
        fn__function_free(fn);
        return NULL;
    }
    snprintf(fn->version, sizeof(fn->version), "%016llx", (unsigned long long)content_hash(content, content_len));
    fn->loaded_at = (int64_t)time(NULL);
    fn->nthreads = nthreads;
    atomic_init(&fn->refs, 1);
    return fn;
}

void fn__function_free(fn_function *fn)
{
    if (fn == NULL)
        return;
    free(fn->name);
    free(fn->path);
    free(fn);
}

int fn_file_version(const char *path, char version[17])
{
    char *data;
    size_t len;
    int rc = fn_read_file(path, &data, &len);
    if (rc != 0)
        return rc;
    snprintf(version, 17, "%016llx", (unsigned long long)content_hash(data, len));
    free(data);
    return 0;
}

uint64_t fn_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int fn_read_file(const char *path, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -EISDIR;
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *data = malloc(size + 1);
    if (data == NULL) {
        close(fd);
        return -ENOMEM;
    }
    while (got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    data[got] = '\0';
    *out = data;
    *len = got;
    return 0;
}

static int in_list(const char *const *names, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; ++i) {
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
            return 1;
    }
    return 0;
}

int fn_header_is_hop_by_hop(const char *name, size_t len)
{
    static const char *const names[] = {"connection", "content-length", "keep-alive",        "proxy-connection",
                                        "te",         "trailer",        "transfer-encoding", "upgrade"};
    return in_list(names, sizeof(names) / sizeof(names[0]), name, len);
}

int fn_header_settable_upstream(const char *name, size_t len)
{
    static const char *const names[] = {"host", "content-type", "expect", "x-request-id", "traceparent"};
    return !fn_header_is_hop_by_hop(name, len) && !in_list(names, sizeof(names) / sizeof(names[0]), name, len);
}
