/* c_runtime: dlopen'd C functions behind the fn invoke interface. */
#include "c_runtime.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct c_impl {
    void *handle;
    bfg_handler_fn handler;
    bfg_fini_fn fini;
} c_impl;

/* The response accessors a handler reaches through bfg_response.ops. */
typedef struct c_response {
    fn_response *res;
    int refused;
} c_response;

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

static const bfg_response_ops c_response_ops = {c_set_status, c_add_header, c_append_body};

static int c_invoke(fn_function *fn, const fn_call *call, fn_response *res)
{
    c_impl *impl = fn->impl;
    c_response r = {res, 0};
    bfg_response api = {&c_response_ops, &r};
    int rc = impl->handler(call->event, &api);
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

static void c_destroy(fn_function *fn)
{
    c_impl *impl = fn->impl;
    if (impl != NULL) {
        if (impl->fini != NULL)
            impl->fini();
        if (impl->handle != NULL)
            dlclose(impl->handle);
        free(impl);
    }
    fn__function_free(fn);
}

static const fn_runtime_ops c_ops = {c_invoke, c_destroy};

int fn_c_load(const char *name, const char *path, const char *symbol, unsigned nthreads, fn_function **out, char *err,
              size_t cap)
{
    char *content = NULL;
    size_t len = 0;
    int rc = fn_read_file(path, &content, &len);
    if (rc != 0) {
        snprintf(err, cap, "%s: cannot read the C object: %s", path, strerror(-rc));
        return rc;
    }
    fn_function *fn = fn__function_new(&c_ops, FN_KIND_C, name, path, content, len, nthreads);
    free(content);
    c_impl *impl = calloc(1, sizeof(*impl));
    if (fn == NULL || impl == NULL) {
        free(impl);
        fn__function_free(fn);
        snprintf(err, cap, "%s: out of memory", path);
        return -ENOMEM;
    }
    fn->impl = impl;
    impl->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (impl->handle == NULL) {
        snprintf(err, cap, "%s: cannot load the C object: %s", path, dlerror());
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
    *out = fn;
    return 0;
Error:
    c_destroy(fn);
    return rc;
}
