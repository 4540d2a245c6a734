/* plan: loads composed routes (steps of calls, response template, shape) and the upstreams they call. */
#include "plan.h"

#include <ctype.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../functions/fn_buf.h"

static const char *const upstream_keys[] = {
    "url",     "timeout_ms", "max_connections", "keepalive_ms", "max_body_bytes",
    "headers", "cache",      "collapse",        "ca_file",      NULL};
static const char *const function_call_keys[] = {"name",     "function", "input", "timeout_ms",
                                                 "optional", "fallback", NULL};
static const char *const upstream_call_keys[] = {"name", "upstream",   "method",   "path",     "query", "headers",
                                                 "body", "timeout_ms", "optional", "fallback", NULL};

#define MAX_STEPS 64
#define MAX_CALLS 256

static int valid_name(const char *s)
{
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (const char *c = s; *c != '\0'; ++c) {
        if (!(isalnum((unsigned char)*c) || *c == '_' || *c == '-'))
            return 0;
    }
    return strlen(s) <= 64;
}

static int valid_header_name(const char *s)
{
    if (s[0] == '\0')
        return 0;
    for (const char *c = s; *c != '\0'; ++c) {
        if (!(isalnum((unsigned char)*c) || strchr("!#$%&'*+-.^_`|~", *c) != NULL))
            return 0;
    }
    return 1;
}

static char *lower_dup(const char *s)
{
    char *out = strdup(s);
    for (char *p = out; p != NULL && *p != '\0'; ++p)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

/* ---- upstreams ---- */

/* Whether the file holds at least one PEM certificate OpenSSL can load as a trust anchor. */
static int pem_certificates(const char *path)
{
    X509_STORE *store = X509_STORE_new();
    ERR_set_mark();
    int ok = store != NULL && X509_STORE_load_locations(store, path, NULL) == 1;
    ERR_pop_to_mark();
    X509_STORE_free(store);
    return ok;
}

/* "http://host[:port][/path]": fills host, port and base path. Returns NULL or a reason. */
static const char *parse_url(const char *url, bff_upstream *u)
{
    u->https = strncmp(url, "https://", 8) == 0;
    if (!u->https && strncmp(url, "http://", 7) != 0)
        return "must be an http:// or https:// URL such as \"http://users.internal:8080/api\"";
    const char *host = url + (u->https ? 8 : 7), *end = host;
    if (*host == '[') {
        end = strchr(host, ']');
        if (end == NULL)
            return "has an unterminated IPv6 address";
        ++end;
    } else {
        while (*end != '\0' && *end != ':' && *end != '/' && *end != '?' && *end != '#')
            ++end;
    }
    if (end == host)
        return "has no host";
    unsigned long port = u->https ? 443 : 80;
    const char *rest = end;
    if (*rest == ':') {
        char *stop;
        port = strtoul(rest + 1, &stop, 10);
        if (stop == rest + 1 || port == 0 || port > 65535)
            return "has an invalid port";
        rest = stop;
    }
    if (*rest != '\0' && *rest != '/')
        return "may not have a query or fragment";
    for (const char *c = host; c < end; ++c) {
        if (isspace((unsigned char)*c) || *c == '@')
            return "has an invalid host";
    }
    size_t plen = strlen(rest);
    while (plen > 0 && rest[plen - 1] == '/')
        --plen;
    /* An IPv6 literal is kept without its brackets (to connect); the Host header puts them back. */
    u->host = host[0] == '[' ? strndup(host + 1, (size_t)(end - host - 2)) : strndup(host, (size_t)(end - host));
    u->port = (uint16_t)port;
    u->base_path = strndup(rest, plen);
    return NULL;
}

static void load_upstream_headers(bff_upstream *u, json_t *headers, const char *file, const char *path,
                                  cfg_errors *errs)
{
    if (!json_is_object(headers)) {
        cfg_error(errs, file, path, "must be an object of header names and values");
        return;
    }
    size_t n = json_object_size(headers);
    u->header_names = calloc(n + 1, sizeof(char *));
    u->header_values = calloc(n + 1, sizeof(char *));
    const char *name;
    json_t *value;
    json_object_foreach(headers, name, value)
    {
        char p[600];
        cfg_path_key(p, sizeof(p), path, name);
        const char *v = json_string_value(value);
        char *lower = lower_dup(name);
        int settable = lower != NULL && fn_header_settable_upstream(lower, strlen(lower));
        free(lower);
        if (!valid_header_name(name) || v == NULL || strpbrk(v, "\r\n") != NULL) {
            cfg_error(errs, file, p, "must be a header name with a string value (no CR or LF)");
            continue;
        }
        if (!settable) {
            cfg_error(errs, file, p, "is set by the gateway itself");
            continue;
        }
        if (u->header_names != NULL && u->header_values != NULL) {
            u->header_names[u->nheaders] = lower_dup(name);
            u->header_values[u->nheaders++] = strdup(v);
        }
    }
}

static void upstream_release(bff_upstream *u)
{
    free(u->name);
    free(u->host);
    free(u->base_path);
    for (size_t i = 0; i < u->nheaders; ++i) {
        free(u->header_names[i]);
        free(u->header_values[i]);
    }
    free(u->header_names);
    free(u->header_values);
    bff_cache_free(u->cache);
    free(u->ca_file);
}

int bff_upstreams_load(json_t *def, const char *file, bff_upstream **out, size_t *n, cfg_errors *errs)
{
    size_t errors_before = errs->count;
    *out = NULL;
    *n = 0;
    if (def == NULL)
        return 0;
    if (!json_is_object(def)) {
        cfg_error(errs, file, "upstreams", "must be an object of upstream names and definitions");
        return -1;
    }
    bff_upstream *ups = calloc(json_object_size(def) + 1, sizeof(*ups));
    if (ups == NULL) {
        cfg_error(errs, file, "upstreams", "out of memory");
        return -1;
    }
    size_t count = 0;
    const char *name;
    json_t *u;
    json_object_foreach(def, name, u)
    {
        char path[600], p[700];
        cfg_path_key(path, sizeof(path), "upstreams", name);
        if (!valid_name(name)) {
            cfg_error(errs, file, path, "an upstream name is a letter or '_' then letters, digits, '_' or '-'");
            continue;
        }
        if (!json_is_object(u)) {
            cfg_error(errs, file, path, "an upstream must be an object with \"url\"");
            continue;
        }
        cfg_check_keys(errs, file, path, u, upstream_keys);
        bff_upstream *up = &ups[count++];
        up->name = strdup(name);
        const char *url = NULL;
        if (cfg_get_string(errs, file, path, u, "url", 1, &url) == 1) {
            const char *why = parse_url(url, up);
            if (why != NULL) {
                cfg_path_key(p, sizeof(p), path, "url");
                cfg_error(errs, file, p, "%s", why);
            }
        }
        up->timeout_ms = BFF_UPSTREAM_DEFAULT_TIMEOUT_MS;
        up->max_connections = BFF_UPSTREAM_DEFAULT_MAX_CONNECTIONS;
        up->keepalive_ms = BFF_UPSTREAM_DEFAULT_KEEPALIVE_MS;
        uint64_t max_body = BFF_UPSTREAM_DEFAULT_MAX_BODY;
        cfg_get_uint(errs, file, path, u, "timeout_ms", 1, 600000, 0, &up->timeout_ms);
        cfg_get_uint(errs, file, path, u, "max_connections", 1, 100000, 0, &up->max_connections);
        cfg_get_uint(errs, file, path, u, "keepalive_ms", 0, 3600000, 0, &up->keepalive_ms);
        cfg_get_uint(errs, file, path, u, "max_body_bytes", 1, 1u << 30, 0, &max_body);
        up->max_body_bytes = (size_t)max_body;
        json_t *headers = json_object_get(u, "headers");
        if (headers != NULL) {
            cfg_path_key(p, sizeof(p), path, "headers");
            load_upstream_headers(up, headers, file, p, errs);
        }
        cfg_get_bool(errs, file, path, u, "collapse", &up->collapse);
        const char *ca = NULL;
        if (cfg_get_string(errs, file, path, u, "ca_file", 0, &ca) == 1) {
            cfg_path_key(p, sizeof(p), path, "ca_file");
            up->ca_file = cfg_resolve_path(file, ca);
            if (!up->https)
                cfg_error(errs, file, p, "belongs to an https:// upstream");
            else if (up->ca_file == NULL || access(up->ca_file, R_OK) != 0)
                cfg_error(errs, file, p, "cannot read %s", up->ca_file != NULL ? up->ca_file : ca);
            else if (!pem_certificates(up->ca_file))
                cfg_error(errs, file, p, "%s holds no PEM certificate", up->ca_file);
        }
        bff_cache_config cache;
        if (bff_cache_config_load(u, file, path, &cache, errs) == 1 && (up->cache = bff_cache_new(&cache)) == NULL)
            cfg_error(errs, file, path, "out of memory");
    }
    /* Kept even with errors (the snapshot frees them): routes naming a valid upstream then report nothing
     * misleading about it. */
    *out = ups;
    *n = count;
    return errs->count != errors_before ? -1 : 0;
}

void bff_upstreams_free(bff_upstream *ups, size_t n)
{
    for (size_t i = 0; ups != NULL && i < n; ++i)
        upstream_release(&ups[i]);
    free(ups);
}

/* ---- calls ---- */

/* What a template may refer to: "request", or a call of an earlier step. */
typedef struct ref_check {
    const bff_plan *plan;
    size_t step;             /* the step being loaded */
    const bff_step *current; /* its calls loaded so far */
    const char *file;
    const char *path;
    cfg_errors *errs;
} ref_check;

static int call_in_step(const bff_step *step, const char *name, size_t len)
{
    for (size_t i = 0; i < step->ncalls; ++i) {
        const char *have = step->calls[i].name;
        if (have != NULL && strlen(have) == len && memcmp(have, name, len) == 0)
            return 1;
    }
    return 0;
}

static void check_ref(void *data, const char *pointer)
{
    ref_check *rc = data;
    const char *first = pointer + 1;
    const char *slash = strchr(first, '/');
    size_t len = slash != NULL ? (size_t)(slash - first) : strlen(first);
    if (len == 7 && memcmp(first, "request", 7) == 0)
        return;
    for (size_t s = 0; s < rc->step; ++s) {
        if (call_in_step(&rc->plan->steps[s], first, len))
            return;
    }
    if (rc->current != NULL && call_in_step(rc->current, first, len))
        cfg_error(rc->errs, rc->file, rc->path,
                  "${%s} refers to \"%.*s\", which runs in the same step (move it to an earlier step)", pointer,
                  (int)len, first);
    else
        cfg_error(rc->errs, rc->file, rc->path,
                  "${%s} refers to \"%.*s\", which is neither \"request\" nor a call of an earlier step", pointer,
                  (int)len, first);
}

/* Compiles obj[key] as a template (NULL when absent); `string` requires a JSON string. */
static bff_template *load_template(json_t *value, int string, ref_check *rc, const char *file, const char *path,
                                   cfg_errors *errs)
{
    if (value == NULL)
        return NULL;
    if (string && !json_is_string(value)) {
        cfg_error(errs, file, path, "must be a string (it may hold ${/references})");
        return NULL;
    }
    char err[512];
    bff_template *t = bff_template_compile(value, err, sizeof(err));
    if (t == NULL) {
        cfg_error(errs, file, path, "%s", err);
        return NULL;
    }
    if (rc != NULL) {
        ref_check here = *rc;
        here.path = path;
        bff_template_foreach_ref(t, check_ref, &here);
    }
    return t;
}

static void call_release(bff_call *c)
{
    free(c->name);
    fn_function_release(&c->fn);
    free(c->method);
    bff_template_free(c->path);
    for (size_t i = 0; i < c->nquery; ++i) {
        free(c->query[i].name);
        bff_template_free(c->query[i].value);
    }
    free(c->query);
    for (size_t i = 0; i < c->nheaders; ++i) {
        free(c->headers[i].name);
        bff_template_free(c->headers[i].value);
    }
    free(c->headers);
    bff_template_free(c->body);
    json_decref(c->fallback);
}

/* Text the config puts into a request line (a path or a query) as it is: no spaces, no control characters.
 * What references insert is percent-encoded at evaluation. */
static int url_text(const json_t *s)
{
    const char *t = json_string_value(s);
    size_t n = json_string_length(s);
    for (size_t i = 0; t != NULL && i < n; ++i) {
        unsigned char c = (unsigned char)t[i];
        if (c <= 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

static void load_upstream_parts(bff_call *c, json_t *def, ref_check *rc, const char *file, const char *path,
                                cfg_errors *errs)
{
    char p[700];
    const char *method = "GET";
    if (cfg_get_string(errs, file, path, def, "method", 0, &method) == 1) {
        static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
        int ok = 0;
        for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); ++i)
            ok |= strcmp(methods[i], method) == 0;
        if (!ok) {
            cfg_path_key(p, sizeof(p), path, "method");
            cfg_error(errs, file, p, "unknown method \"%s\" (GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS)", method);
        }
    }
    c->method = strdup(method);
    json_t *path_def = json_object_get(def, "path");
    cfg_path_key(p, sizeof(p), path, "path");
    if (path_def != NULL && json_is_string(path_def) && json_string_value(path_def)[0] != '/')
        cfg_error(errs, file, p, "must start with '/' (it is appended to the upstream's URL)");
    else if (path_def != NULL && json_is_string(path_def) && !url_text(path_def))
        cfg_error(errs, file, p, "must not hold spaces or control characters (they would break the request line)");
    json_t *slash = path_def == NULL ? json_string("/") : NULL; /* the default path */
    c->path = load_template(path_def != NULL ? path_def : slash, 1, rc, file, p, errs);
    json_decref(slash);
    json_t *query = json_object_get(def, "query");
    if (query != NULL) {
        cfg_path_key(p, sizeof(p), path, "query");
        if (!json_is_object(query)) {
            cfg_error(errs, file, p, "must be an object of parameter names and string templates");
        } else {
            c->query = calloc(json_object_size(query) + 1, sizeof(*c->query));
            const char *name;
            json_t *v;
            json_object_foreach(query, name, v)
            {
                char q[800];
                cfg_path_key(q, sizeof(q), p, name);
                json_t *name_text = json_string(name);
                if (!url_text(name_text) || (json_is_string(v) && !url_text(v)))
                    cfg_error(errs, file, q,
                              "must not hold spaces or control characters (they would break the request line)");
                json_decref(name_text);
                bff_template *t = load_template(v, 1, rc, file, q, errs);
                if (t != NULL && c->query != NULL) {
                    c->query[c->nquery].name = strdup(name);
                    c->query[c->nquery++].value = t;
                } else {
                    bff_template_free(t);
                }
            }
        }
    }
    json_t *headers = json_object_get(def, "headers");
    if (headers != NULL) {
        cfg_path_key(p, sizeof(p), path, "headers");
        if (!json_is_object(headers) || json_object_size(headers) > 32) {
            cfg_error(errs, file, p, "must be an object of at most 32 header names and string templates");
        } else {
            c->headers = calloc(json_object_size(headers) + 1, sizeof(*c->headers));
            const char *name;
            json_t *v;
            json_object_foreach(headers, name, v)
            {
                char q[800];
                cfg_path_key(q, sizeof(q), p, name);
                char *lower = lower_dup(name);
                int settable = lower != NULL && fn_header_settable_upstream(lower, strlen(lower));
                free(lower);
                if (!valid_header_name(name)) {
                    cfg_error(errs, file, q, "is not a valid header name");
                    continue;
                }
                if (!settable) {
                    cfg_error(errs, file, q,
                              "is set by the gateway itself (host, content-type, content-length, "
                              "x-request-id, traceparent and hop-by-hop headers)");
                    continue;
                }
                bff_template *t = load_template(v, 1, rc, file, q, errs);
                if (t != NULL && c->headers != NULL) {
                    c->headers[c->nheaders].name = lower_dup(name);
                    c->headers[c->nheaders++].value = t;
                } else {
                    bff_template_free(t);
                }
            }
        }
    }
    cfg_path_key(p, sizeof(p), path, "body");
    c->body = load_template(json_object_get(def, "body"), 0, rc, file, p, errs);
}

static int load_call(bff_call *c, json_t *def, ref_check *rc, const bff_plan_env *env, const char *file,
                     const char *path, cfg_errors *errs)
{
    size_t errors_before = errs->count;
    char p[700];
    if (!json_is_object(def)) {
        cfg_error(errs, file, path, "a call must be an object with \"name\" and \"function\" or \"upstream\"");
        return -1;
    }
    const char *name = NULL, *fn_name = NULL, *up_name = NULL;
    if (cfg_get_string(errs, file, path, def, "name", 1, &name) == 1) {
        cfg_path_key(p, sizeof(p), path, "name");
        if (!valid_name(name))
            cfg_error(errs, file, p, "a call name is a letter or '_' then letters, digits, '_' or '-' (at most 64)");
        else if (strcmp(name, "request") == 0 || strcmp(name, "_calls") == 0)
            cfg_error(errs, file, p, "\"%s\" is reserved", name);
        c->name = strdup(name);
    }
    cfg_get_string(errs, file, path, def, "function", 0, &fn_name);
    cfg_get_string(errs, file, path, def, "upstream", 0, &up_name);
    if ((fn_name != NULL) == (up_name != NULL)) {
        cfg_error(errs, file, path, "a call names exactly one of \"function\" or \"upstream\"");
        return -1;
    }
    cfg_check_keys(errs, file, path, def, fn_name != NULL ? function_call_keys : upstream_call_keys);
    if (fn_name != NULL) {
        c->kind = BFF_CALL_FUNCTION;
        int known = 0;
        fn_function *fn = env->function(env->data, fn_name, &known);
        cfg_path_key(p, sizeof(p), path, "function");
        if (!known)
            cfg_error(errs, file, p, "unknown function \"%s\"", fn_name);
        /* known but NULL: its load error is already reported, and the plan fails with it */
        c->fn = fn != NULL ? fn_function_acquire(fn) : NULL;
        c->fn_stats_id = env->function_stats_id != NULL ? env->function_stats_id(env->data, fn_name) : 0;
        cfg_path_key(p, sizeof(p), path, "input");
        c->body = load_template(json_object_get(def, "input"), 0, rc, file, p, errs);
        if (known && fn == NULL)
            return -1;
    } else {
        c->kind = BFF_CALL_UPSTREAM;
        c->upstream = env->upstream(env->data, up_name);
        if (c->upstream == NULL) {
            cfg_path_key(p, sizeof(p), path, "upstream");
            cfg_error(errs, file, p, "unknown upstream \"%s\" (define it under \"upstreams\" in the entry file)",
                      up_name);
        }
        load_upstream_parts(c, def, rc, file, path, errs);
    }
    cfg_get_uint(errs, file, path, def, "timeout_ms", 1, 600000, 0, &c->timeout_ms);
    cfg_get_bool(errs, file, path, def, "optional", &c->optional);
    json_t *fallback = json_object_get(def, "fallback");
    if (fallback != NULL && !c->optional) {
        cfg_path_key(p, sizeof(p), path, "fallback");
        cfg_error(errs, file, p, "only an optional call has a fallback (add \"optional\": true)");
    }
    c->fallback = fallback != NULL ? json_deep_copy(fallback) : json_null();
    return errs->count == errors_before ? 0 : -1;
}

/* ---- the plan ---- */

static void summary_add(fn_buf *out, const bff_step *step)
{
    if (out->len > 0)
        fn_buf_append_str(out, ", ");
    if (step->group)
        fn_buf_append_str(out, "[");
    for (size_t i = 0; i < step->ncalls; ++i) {
        if (i > 0)
            fn_buf_append_str(out, ", ");
        fn_buf_append_str(out, step->calls[i].name != NULL ? step->calls[i].name : "?");
    }
    if (step->group)
        fn_buf_append_str(out, "]");
}

static int name_taken(const bff_plan *plan, const bff_step *current, const char *name)
{
    for (size_t s = 0; s < plan->nsteps; ++s) {
        if (call_in_step(&plan->steps[s], name, strlen(name)))
            return 1;
    }
    return current != NULL && call_in_step(current, name, strlen(name));
}

static void load_step(bff_plan *plan, json_t *def, const bff_plan_env *env, const char *file, const char *path,
                      cfg_errors *errs)
{
    bff_step *step = &plan->steps[plan->nsteps];
    step->group = json_is_array(def);
    size_t n = step->group ? json_array_size(def) : 1;
    if (step->group && n == 0) {
        cfg_error(errs, file, path, "a parallel group must hold at least one call");
        return;
    }
    if (plan->ncalls + n > MAX_CALLS) {
        cfg_error(errs, file, path, "a route makes at most %d calls", MAX_CALLS);
        return;
    }
    step->calls = calloc(n, sizeof(*step->calls));
    if (step->calls == NULL) {
        cfg_error(errs, file, path, "out of memory");
        return;
    }
    ref_check rc = {plan, plan->nsteps, step, file, path, errs};
    for (size_t i = 0; i < n; ++i) {
        char p[900];
        if (step->group)
            cfg_path_index(p, sizeof(p), path, i);
        else
            snprintf(p, sizeof(p), "%s", path);
        bff_call *c = &step->calls[step->ncalls];
        json_t *call_def = step->group ? json_array_get(def, i) : def;
        const char *name = json_string_value(json_object_get(call_def, "name"));
        if (name != NULL && name_taken(plan, step, name)) {
            char q[1000];
            cfg_path_key(q, sizeof(q), p, "name");
            cfg_error(errs, file, q, "another call of this route is already named \"%s\"", name);
        }
        load_call(c, call_def, &rc, env, file, p, errs);
        ++step->ncalls; /* kept even when broken, so that its name is known and everything is freed */
    }
    plan->ncalls += step->ncalls;
    ++plan->nsteps;
}

bff_plan *bff_plan_load(json_t *def, const char *file, const char *path, const bff_plan_env *env, cfg_errors *errs)
{
    size_t errors_before = errs->count;
    char p[700];
    json_t *steps = json_object_get(def, "steps");
    cfg_path_key(p, sizeof(p), path, "steps");
    if (!json_is_array(steps) || json_array_size(steps) == 0) {
        cfg_error(errs, file, p, "must be a non-empty list of calls and parallel groups (lists of calls)");
        return NULL;
    }
    if (json_array_size(steps) > MAX_STEPS) {
        cfg_error(errs, file, p, "a route has at most %d steps", MAX_STEPS);
        return NULL;
    }
    bff_plan *plan = calloc(1, sizeof(*plan));
    if (plan == NULL || (plan->steps = calloc(json_array_size(steps), sizeof(*plan->steps))) == NULL) {
        free(plan);
        cfg_error(errs, file, p, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < json_array_size(steps); ++i) {
        char q[800];
        cfg_path_index(q, sizeof(q), p, i);
        load_step(plan, json_array_get(steps, i), env, file, q, errs);
    }
    ref_check rc = {plan, plan->nsteps, NULL, file, path, errs};
    cfg_path_key(p, sizeof(p), path, "response");
    plan->response = load_template(json_object_get(def, "response"), 0, &rc, file, p, errs);
    cfg_get_bool(errs, file, path, def, "call_status", &plan->call_status);
    json_t *shape = json_object_get(def, "shape");
    if (shape != NULL) {
        cfg_path_key(p, sizeof(p), path, "shape");
        plan->shape = bff_shape_compile(shape, file, p, errs);
    }
    fn_buf summary = FN_BUF_INIT;
    for (size_t s = 0; s < plan->nsteps; ++s)
        summary_add(&summary, &plan->steps[s]);
    plan->summary = fn_buf_steal(&summary);
    if (errs->count != errors_before) {
        bff_plan_free(plan);
        return NULL;
    }
    return plan;
}

void bff_plan_free(bff_plan *plan)
{
    if (plan == NULL)
        return;
    for (size_t s = 0; s < plan->nsteps; ++s) {
        for (size_t i = 0; i < plan->steps[s].ncalls; ++i)
            call_release(&plan->steps[s].calls[i]);
        free(plan->steps[s].calls);
    }
    free(plan->steps);
    bff_template_free(plan->response);
    bff_shape_free(plan->shape);
    free(plan->summary);
    free(plan);
}
