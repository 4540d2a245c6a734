/* c_runtime: dlopen'd C functions behind the fn invoke interface. */
#include "c_runtime.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c_isolated.h"
#include "fn_pool.h"

static char dir_ready[256];
static int dir_errno;

static void remove_private_dir(void)
{
    rmdir(dir_ready); /* empty: every copy is unlinked once mapped */
}

static void make_private_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    char path[256];
    snprintf(path, sizeof(path), "%s/bffgate-objects-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(path) == NULL) {
        dir_errno = errno;
        return;
    }
    snprintf(dir_ready, sizeof(dir_ready), "%s", path);
    atexit(remove_private_dir);
}

typedef struct c_impl {
    void *handle;
    bfg_handler_fn handler;
    bfg_fini_fn fini;
    int inline_calls;
    c_iso *iso; /* isolated: calls go to worker processes (handle and handler unused) */
} c_impl;

/* The response accessors a handler reaches through bfg_response.ops. */
/* Blocks handed out by bfg_alloc carry this header; what the handler does not free is freed after it returns. */
typedef struct c_block {
    struct c_block *prev, *next;
    size_t size;
    max_align_t align[];
} c_block;

typedef struct c_response {
    fn_response *res;
    int refused;
    size_t used; /* bytes handed out by bfg_alloc and not freed */
    size_t peak;
    size_t limit; /* 0 = unlimited */
    c_block *blocks;
} c_response;

static void *c_alloc(void *impl, size_t size)
{
    c_response *r = impl;
    if (size > SIZE_MAX - sizeof(c_block) || (r->limit != 0 && (size > r->limit || r->used > r->limit - size)))
        return NULL;
    c_block *b = malloc(sizeof(c_block) + size);
    if (b == NULL)
        return NULL;
    b->size = size;
    b->prev = NULL;
    b->next = r->blocks;
    if (r->blocks != NULL)
        r->blocks->prev = b;
    r->blocks = b;
    r->used += size;
    if (r->used > r->peak)
        r->peak = r->used;
    return b->align;
}

static void c_free(void *impl, void *p)
{
    c_response *r = impl;
    if (p == NULL)
        return;
    c_block *b = (c_block *)((char *)p - offsetof(c_block, align));
    if (b->prev != NULL)
        b->prev->next = b->next;
    else
        r->blocks = b->next;
    if (b->next != NULL)
        b->next->prev = b->prev;
    r->used -= b->size;
    free(b);
}

static int c_set_status(void *impl, int status)
{
    c_response *r = impl;
    if (fn_response_set_status(r->res, status) != 0) {
        r->refused = 1;
        return -1;
    }
    return 0;
}

static int c_add_header(void *impl, const char *name, size_t name_len, const char *value, size_t value_len)
{
    c_response *r = impl;
    if (name == NULL || (value == NULL && value_len != 0) ||
        fn_response_add_header(r->res, name, name_len, value != NULL ? value : "", value_len) != 0) {
        r->refused = 1;
        return -1;
    }
    return 0;
}

static int c_append_body(void *impl, const char *data, size_t len)
{
    c_response *r = impl;
    if (len == 0)
        return 0;
    if (data == NULL || fn_buf_append(&r->res->body, data, len) != 0) {
        snprintf(r->res->error, sizeof(r->res->error), "cannot append %zu bytes to the body", len);
        r->refused = 1;
        return -1;
    }
    return 0;
}

static const bfg_response_ops c_response_ops = {c_set_status, c_add_header, c_append_body, c_alloc, c_free};

/* Runs the handler and turns its outcome into rc / res->error. */
int fn__c_invoke(bfg_handler_fn handler, const bfg_event *event, size_t memory_limit, fn_response *res)
{
    c_response r = {res, 0, 0, 0, memory_limit, NULL};
    bfg_response api = {&c_response_ops, &r};
    uint64_t started = fn_now_ns();
    int rc = handler(event, &api);
    res->report.duration_ns = fn_now_ns() - started;
    res->report.peak_bytes = r.peak;
    while (r.blocks != NULL)
        c_free(&r, r.blocks->align);
    if (rc != 0) {
        snprintf(res->error, sizeof(res->error), "the C handler returned %d", rc);
        return -EINVAL;
    }
    if (r.refused) {
        if (res->error[0] == '\0')
            snprintf(res->error, sizeof(res->error), "the C handler set a refused value");
        return -EINVAL;
    }
    return 0;
}

static int c_call(c_impl *impl, const bfg_event *event, size_t memory_limit, fn_response *res)
{
    return fn__c_invoke(impl->handler, event, memory_limit, res);
}

/* A call on a pool thread. It owns a deep copy of the event and its own response, so a cancelled
 * call (the client got its 504 and is gone) can finish and be dropped without touching the request. */
typedef struct c_job {
    fn_pool_job super;
    fn_task task;
    fn_function *fn; /* a reference: the object stays loaded until the call returns */
    size_t memory_limit;
    uint64_t deadline_ns; /* isolated calls: when the worker is killed */
    bfg_event event;
    fn_response res;
    int rc;
    fn_response *out;
    fn_done_cb done;
    fn_host_cb released;
    void *data;
} c_job;

static size_t pairs_size(const bfg_pair *pairs, size_t n)
{
    size_t total = n * sizeof(bfg_pair);
    for (size_t i = 0; i < n; ++i)
        total += pairs[i].name.len + pairs[i].value.len;
    return total;
}

static bfg_str copy_str(char **cursor, bfg_str s)
{
    bfg_str out = {*cursor, s.len};
    if (s.len > 0)
        memcpy(*cursor, s.ptr, s.len);
    *cursor += s.len;
    return out;
}

/* Fills `out` (already placed) with copies of the pairs' strings taken from *cursor. */
static const bfg_pair *copy_pairs(bfg_pair *out, char **cursor, const bfg_pair *pairs, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        out[i].name = copy_str(cursor, pairs[i].name);
        out[i].value = copy_str(cursor, pairs[i].value);
    }
    return out;
}

/* Allocates the job with a deep copy of the event in the same block. */
static c_job *job_new(const bfg_event *ev)
{
    size_t size = sizeof(c_job) + pairs_size(ev->params, ev->nparams) + pairs_size(ev->query, ev->nquery) +
                  pairs_size(ev->headers, ev->nheaders) + ev->method.len + ev->path.len + ev->route.len +
                  ev->frontend.len + ev->request_id.len + ev->body.len + ev->claims.len;
    c_job *job = malloc(size);
    if (job == NULL)
        return NULL;
    memset(job, 0, sizeof(*job));
    /* The three arrays first, right after the job (which is pointer-aligned), then every string. */
    bfg_pair *arrays = (bfg_pair *)(job + 1);
    char *cursor = (char *)(arrays + ev->nparams + ev->nquery + ev->nheaders);
    job->event.abi_version = ev->abi_version;
    job->event.params = copy_pairs(arrays, &cursor, ev->params, ev->nparams);
    job->event.nparams = ev->nparams;
    job->event.query = copy_pairs(arrays + ev->nparams, &cursor, ev->query, ev->nquery);
    job->event.nquery = ev->nquery;
    job->event.headers = copy_pairs(arrays + ev->nparams + ev->nquery, &cursor, ev->headers, ev->nheaders);
    job->event.nheaders = ev->nheaders;
    job->event.method = copy_str(&cursor, ev->method);
    job->event.path = copy_str(&cursor, ev->path);
    job->event.route = copy_str(&cursor, ev->route);
    job->event.frontend = copy_str(&cursor, ev->frontend);
    job->event.request_id = copy_str(&cursor, ev->request_id);
    job->event.body = copy_str(&cursor, ev->body);
    job->event.claims = copy_str(&cursor, ev->claims);
    fn_response_init(&job->res);
    return job;
}

static void job_run(fn_pool_job *pool_job)
{
    c_job *job = (c_job *)pool_job;
    c_impl *impl = job->fn->impl;
    if (impl->iso != NULL)
        job->rc = fn__c_iso_call(impl->iso, &job->event, job->memory_limit, job->deadline_ns, &job->res);
    else
        job->rc = c_call(impl, &job->event, job->memory_limit, &job->res);
}

static void job_complete(fn_pool_job *pool_job)
{
    c_job *job = (c_job *)pool_job;
    fn_response_release(job->out);
    *job->out = job->res; /* the response moves to the caller */
    fn_response_init(&job->res);
    job->done(job->data, job->rc);
}

static void job_release(fn_pool_job *pool_job)
{
    c_job *job = (c_job *)pool_job;
    fn_response_release(&job->res);
    fn_function_release(&job->fn);
    free(job);
}

static void job_ended(fn_pool_job *pool_job)
{
    c_job *job = (c_job *)pool_job;
    if (job->released != NULL)
        job->released(job->data);
}

static int job_cancel(fn_task *task)
{
    c_job *job = (c_job *)((char *)task - offsetof(c_job, task));
    fn_pool_cancel(&job->super);
    return 1; /* the pool tells job_ended when the call (or its skipping) is over */
}

/*
 * dlopen returns the object it already has open for a path, so a changed object under the same path
 * would never load. Each load therefore opens a private copy under a unique name (in a directory of
 * this process's), which is unlinked as soon as it is mapped: nothing is left behind on disk.
 */
/* A shared object whose loadable segments reach past its end (a file caught while being written)
 * would be mapped anyway, and touching the missing pages kills the process with SIGBUS: refuse it. */
static int elf_is_whole(const char *content, size_t len)
{
    Elf64_Ehdr eh;
    if (len < sizeof(eh))
        return 0;
    memcpy(&eh, content, sizeof(eh));
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > len ||
        (size_t)eh.e_phnum * sizeof(Elf64_Phdr) > len - eh.e_phoff)
        return 0;
    for (size_t i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph;
        memcpy(&ph, content + eh.e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type == PT_LOAD && (ph.p_offset > len || ph.p_filesz > len - ph.p_offset))
            return 0;
    }
    return eh.e_shoff <= len;
}

/* Writes the object's content to a new file in this process's private directory (copy: cap 512). */
static int write_private_copy(const char *path, const char *content, size_t len, char *copy, char *err, size_t cap)
{
    if (!elf_is_whole(content, len)) {
        snprintf(err, cap, "%s: not a complete 64-bit ELF shared object (truncated, or still being written?)", path);
        return -1;
    }
    static atomic_uint counter;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_private_dir);
    if (dir_ready[0] == '\0') {
        snprintf(err, cap, "%s: cannot create a private directory for C objects: %s", path, strerror(dir_errno));
        return -1;
    }
    snprintf(copy, 512, "%s/%u.so", dir_ready, atomic_fetch_add(&counter, 1));
    int fd = open(copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
    if (fd < 0) {
        snprintf(err, cap, "%s: cannot copy the C object to %s: %s", path, copy, strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, content + off, len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fd);
    if (off != len) {
        snprintf(err, cap, "%s: short write of the private copy", path);
        unlink(copy);
        return -1;
    }
    return 0;
}

static void *dlopen_private_copy(const char *path, const char *content, size_t len, char *err, size_t cap)
{
    char copy[512];
    if (write_private_copy(path, content, len, copy, err, cap) != 0)
        return NULL;
    void *handle = dlopen(copy, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL)
        snprintf(err, cap, "%s: cannot load the C object: %s", path, dlerror());
    unlink(copy);
    return handle;
}

static int c_start(fn_function *fn, const fn_call *call, fn_response *res, fn_done_cb done, void *data, fn_task **task)
{
    c_impl *impl = fn->impl;
    bfg_event ev = *call->event;
    char *claims = NULL;
    if (call->claims != NULL && ev.claims.ptr == NULL) {
        claims = json_dumps(call->claims, JSON_COMPACT);
        if (claims == NULL) {
            snprintf(res->error, sizeof(res->error), "out of memory");
            return -ENOMEM;
        }
        ev.claims = (bfg_str){claims, strlen(claims)};
    }
    if (impl->iso != NULL && (call->host == NULL || done == NULL)) { /* no loop to come back to: wait here */
        int rc = fn__c_iso_call(impl->iso, &ev, call->limits.memory_bytes,
                                call->start_ns + call->limits.timeout_ms * 1000000ULL, res);
        free(claims);
        return rc;
    }
    if (impl->iso == NULL && (impl->inline_calls || call->host == NULL || done == NULL)) {
        int rc = c_call(impl, &ev, call->limits.memory_bytes, res);
        free(claims);
        return rc;
    }
    c_job *job = job_new(&ev);
    free(claims);
    if (job == NULL) {
        snprintf(res->error, sizeof(res->error), "out of memory");
        return -ENOMEM;
    }
    job->super.run = job_run;
    job->super.complete = job_complete;
    job->super.release = job_release;
    job->super.ended = job_ended;
    job->released = call->released;
    job->super.host = call->host;
    job->task.cancel = job_cancel;
    job->fn = fn_function_acquire(fn);
    job->memory_limit = call->limits.memory_bytes;
    job->deadline_ns = call->start_ns + call->limits.timeout_ms * 1000000ULL;
    job->out = res;
    job->done = done;
    job->data = data;
    int rc = fn_pool_submit(&job->super);
    if (rc != 0) {
        snprintf(res->error, sizeof(res->error), "no thread is available to run the C function");
        job_release(&job->super);
        return rc;
    }
    *task = &job->task;
    return FN_PENDING;
}

static void c_destroy(fn_function *fn)
{
    c_impl *impl = fn->impl;
    if (impl != NULL) {
        fn__c_iso_free(impl->iso);
        if (impl->fini != NULL)
            impl->fini();
        if (impl->handle != NULL)
            dlclose(impl->handle);
        free(impl);
    }
    fn__function_free(fn);
}

static const fn_runtime_ops c_ops = {c_start, c_destroy};

/* Reads the object and makes the function around it, without loading anything yet: *content is the caller's. */
static int c_new(const char *name, const char *path, unsigned nthreads, fn_function **out, char **content, size_t *len,
                 char *err, size_t cap)
{
    int rc = fn_read_file(path, content, len);
    if (rc != 0) {
        snprintf(err, cap, "%s: cannot read the C object: %s", path, strerror(-rc));
        return rc;
    }
    fn_function *fn = fn__function_new(&c_ops, FN_KIND_C, name, path, *content, *len, nthreads);
    c_impl *impl = calloc(1, sizeof(*impl));
    if (fn == NULL || impl == NULL) {
        free(impl);
        fn__function_free(fn);
        free(*content);
        *content = NULL;
        snprintf(err, cap, "%s: out of memory", path);
        return -ENOMEM;
    }
    fn->impl = impl;
    *out = fn;
    return 0;
}

int fn_c_load(const char *name, const char *path, const char *symbol, int inline_calls, unsigned nthreads,
              fn_function **out, char *err, size_t cap)
{
    char *content = NULL;
    size_t len = 0;
    fn_function *fn;
    int rc = c_new(name, path, nthreads, &fn, &content, &len, err, cap);
    if (rc != 0)
        return rc;
    c_impl *impl = fn->impl;
    impl->inline_calls = inline_calls;
    impl->handle = dlopen_private_copy(path, content, len, err, cap);
    if (impl->handle == NULL) {
        rc = -EINVAL;
        goto Error;
    }
    const unsigned *abi = dlsym(impl->handle, "bfg_abi_version");
    if (abi == NULL) {
        snprintf(err, cap,
                 "%s: no bfg_abi_version symbol: not a bffgate C function (build it against bffgate/function.h "
                 "and define bfg_abi_version)",
                 path);
        rc = -EINVAL;
        goto Error;
    }
    if (*abi != BFG_ABI_VERSION) {
        snprintf(err, cap, "%s: built for C function ABI version %u, this gateway speaks version %u", path, *abi,
                 BFG_ABI_VERSION);
        rc = -EINVAL;
        goto Error;
    }
    *(void **)&impl->handler = dlsym(impl->handle, symbol);
    if (impl->handler == NULL) {
        snprintf(err, cap, "%s: no handler symbol \"%s\"", path, symbol);
        rc = -EINVAL;
        goto Error;
    }
    bfg_init_fn init;
    *(void **)&init = dlsym(impl->handle, "bfg_init");
    *(void **)&impl->fini = dlsym(impl->handle, "bfg_fini");
    if (init != NULL && (rc = init()) != 0) {
        snprintf(err, cap, "%s: bfg_init failed with %d", path, rc);
        impl->fini = NULL;
        rc = -EINVAL;
        goto Error;
    }
    free(content);
    *out = fn;
    return 0;
Error:
    free(content);
    c_destroy(fn);
    return rc;
}

int fn_c_load_isolated(const char *name, const char *path, const char *symbol, const fn_c_isolation *iso,
                       unsigned nthreads, fn_function **out, char *err, size_t cap)
{
    char *content = NULL;
    size_t len = 0;
    fn_function *fn;
    int rc = c_new(name, path, nthreads, &fn, &content, &len, err, cap);
    if (rc != 0)
        return rc;
    c_impl *impl = fn->impl;
    char copy[512], why[400];
    rc = write_private_copy(path, content, len, copy, err, cap);
    free(content);
    if (rc != 0) {
        c_destroy(fn);
        return -EINVAL;
    }
    /* The copy stays for the workers that start later; fn__c_iso_free unlinks it. */
    impl->iso = fn__c_iso_new(name, copy, symbol, iso, why, sizeof(why));
    if (impl->iso == NULL) {
        unlink(copy);
        snprintf(err, cap, "%s: %s", path, why);
        c_destroy(fn);
        return -EINVAL;
    }
    *out = fn;
    return 0;
}
