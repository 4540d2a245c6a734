/* snapshot: compiles the config (functions, frontends, routes) into an immutable snapshot. */
#include "snapshot.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../functions/c_runtime.h"
#include "../functions/lua_runtime.h"

static atomic_uint_fast64_t snapshot_versions;

static const char *const entry_keys[] = {"server", "defaults", "functions", "upstreams", "frontends", NULL};
static const char *const limit_keys[] = {"timeout_ms", "concurrency", "queue_max", "queue_wait_ms",
                                         "memory_mb",  "rate_limit",  NULL};
static const char *const rate_keys[] = {"rps", "burst", "by_claim", NULL};
static const char *const frontend_keys[] = {"name", "match", "defaults", "routes", "auth", "cors", NULL};
static const char *const auth_keys[] = {"jwt", NULL};
static const char *const route_auth_keys[] = {"jwt", "require", NULL};
static const char *const match_keys[] = {"path_prefix", "host", "header", NULL};
static const char *const header_match_keys[] = {"name", "value", NULL};
static const char *const route_keys[] = {
    "method",     "path",        "function",  "steps",         "response",  "call_status", "shape", "auth",
    "timeout_ms", "concurrency", "queue_max", "queue_wait_ms", "memory_mb", "rate_limit",  "cache", NULL};
static const char *const lua_fn_keys[] = {"lua", NULL};
static const char *const c_fn_keys[] = {"c", "symbol", "inline", "isolated", "processes", "memory_mb", "cpu_s", NULL};

/* Reads limit keys from obj into `limits`, keeping the inherited value of any key that is absent. */
static void parse_limits(cfg_errors *errs, const char *file, const char *path, json_t *obj, bff_limits *limits)
{
    uint64_t v;
    if (cfg_get_uint(errs, file, path, obj, "timeout_ms", 1, 600000, 0, &v) == 1)
        limits->timeout_ms = v;
    if (cfg_get_uint(errs, file, path, obj, "concurrency", 1, 1000000, 0, &v) == 1)
        limits->concurrency = v;
    if (cfg_get_uint(errs, file, path, obj, "queue_max", 0, 1000000, 0, &v) == 1)
        limits->queue_max = v;
    if (cfg_get_uint(errs, file, path, obj, "queue_wait_ms", 1, 600000, 0, &v) == 1)
        limits->queue_wait_ms = v;
    if (cfg_get_uint(errs, file, path, obj, "memory_mb", 1, 65536, 0, &v) == 1)
        limits->memory_mb = v;
    json_t *rate;
    char p[512];
    cfg_path_key(p, sizeof(p), path, "rate_limit");
    if (json_is_null(json_object_get(obj, "rate_limit"))) {
        limits->rate_rps = limits->rate_burst = 0; /* null: no rate limit here, whatever is inherited */
        limits->rate_claim[0] = '\0';
    } else if (cfg_get_object(errs, file, path, obj, "rate_limit", 0, &rate) == 1) {
        cfg_check_keys(errs, file, p, rate, rate_keys);
        uint64_t rps = 0, burst = 0;
        const char *claim = NULL;
        limits->rate_claim[0] = '\0';
        if (cfg_get_string(errs, file, p, rate, "by_claim", 0, &claim) == 1) {
            if (claim[0] == '\0' || strlen(claim) >= sizeof(limits->rate_claim)) {
                char q[600];
                cfg_path_key(q, sizeof(q), p, "by_claim");
                cfg_error(errs, file, q, "must be a claim name of 1 to %zu characters", sizeof(limits->rate_claim) - 1);
            } else {
                strcpy(limits->rate_claim, claim);
            }
        }
        if (cfg_get_uint(errs, file, p, rate, "rps", 1, 10000000, 1, &rps) == 1) {
            limits->rate_rps = (double)rps;
            /* Default burst: one second's worth. */
            limits->rate_burst =
                cfg_get_uint(errs, file, p, rate, "burst", 1, 10000000, 0, &burst) == 1 ? (double)burst : (double)rps;
        }
    }
}

static void parse_defaults(cfg_errors *errs, const char *file, json_t *obj, bff_limits *limits)
{
    json_t *defaults;
    if (cfg_get_object(errs, file, "", obj, "defaults", 0, &defaults) == 1) {
        cfg_check_keys(errs, file, "defaults", defaults, limit_keys);
        parse_limits(errs, file, "defaults", defaults, limits);
    }
}

/* Resolves a C object name: with a '/', relative to the config file; without, searched in the lib path. */
static char *resolve_object(const char *file, const char *name, const bff_snapshot_options *opts)
{
    if (strchr(name, '/') == NULL) {
        for (size_t i = 0; i < opts->nlib_path; ++i) {
            char *candidate = NULL;
            if (asprintf(&candidate, "%s/%s", opts->lib_path[i], name) < 0)
                return NULL;
            if (access(candidate, R_OK) == 0)
                return candidate;
            free(candidate);
        }
    }
    return cfg_resolve_path(file, name);
}

static int function_index(const bff_snapshot *snap, const char *name)
{
    for (size_t i = 0; i < snap->nfunctions; ++i) {
        if (strcmp(snap->functions[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

/* The previous snapshot's function with this definition and unchanged content, to keep it warm. */
static fn_function *reusable(const bff_snapshot_options *opts, const char *key, const char *path)
{
    const bff_snapshot *prev = opts->previous;
    if (prev == NULL)
        return NULL;
    for (size_t i = 0; i < prev->nfunctions; ++i) {
        const bff_snapshot_function *f = &prev->functions[i];
        if (f->fn == NULL || f->key == NULL || strcmp(f->key, key) != 0)
            continue;
        char version[17];
        if (fn_file_version(path, version) == 0 && strcmp(version, f->fn->version) == 0)
            return fn_function_acquire(f->fn);
    }
    return NULL;
}

static void load_functions(bff_snapshot *snap, json_t *functions, const char *file, const bff_snapshot_options *opts,
                           cfg_errors *errs)
{
    snap->functions = calloc(json_object_size(functions) + 1, sizeof(*snap->functions));
    if (snap->functions == NULL) {
        cfg_error(errs, file, "functions", "out of memory");
        return;
    }
    const char *name;
    json_t *def;
    json_object_foreach(functions, name, def)
    {
        char path[512], err[1024];
        cfg_path_key(path, sizeof(path), "functions", name);
        if (!json_is_object(def)) {
            cfg_error(errs, file, path, "a function must be an object with \"lua\" or \"c\"");
            continue;
        }
        const char *src = NULL, *obj = NULL, *symbol = NULL;
        int has_lua = json_object_get(def, "lua") != NULL, has_c = json_object_get(def, "c") != NULL;
        if (has_lua == has_c) {
            cfg_error(errs, file, path, "give exactly one of \"lua\" (a Lua file) or \"c\" (a shared object)");
            continue;
        }
        fn_function *fn = NULL;
        char *key = NULL; /* what must be equal, besides the content, to reuse a previous version */
        if (has_lua) {
            cfg_check_keys(errs, file, path, def, lua_fn_keys);
            if (cfg_get_string(errs, file, path, def, "lua", 1, &src) != 1)
                continue;
            char *resolved = cfg_resolve_path(file, src);
            if (resolved != NULL && asprintf(&key, "lua\n%s\n%s", name, resolved) > 0)
                fn = reusable(opts, key, resolved);
            if (fn == NULL && (resolved == NULL || fn_lua_load(name, resolved, opts->nthreads, opts->prewarm, &fn, err,
                                                               sizeof(err)) != 0)) {
                char p[600];
                cfg_path_key(p, sizeof(p), path, "lua");
                cfg_error(errs, file, p, "%s", resolved != NULL ? err : "out of memory");
            }
            free(resolved);
        } else {
            cfg_check_keys(errs, file, path, def, c_fn_keys);
            int inline_calls = 0, isolated = 0;
            uint64_t processes = 2, memory_mb = 256, cpu_s = 60;
            int ok = cfg_get_string(errs, file, path, def, "c", 1, &obj) == 1;
            ok &= cfg_get_string(errs, file, path, def, "symbol", 1, &symbol) == 1;
            ok &= cfg_get_bool(errs, file, path, def, "inline", &inline_calls) >= 0;
            ok &= cfg_get_bool(errs, file, path, def, "isolated", &isolated) >= 0;
            ok &= cfg_get_uint(errs, file, path, def, "processes", 1, 64, 0, &processes) >= 0;
            ok &= cfg_get_uint(errs, file, path, def, "memory_mb", 1, 65536, 0, &memory_mb) >= 0;
            ok &= cfg_get_uint(errs, file, path, def, "cpu_s", 1, 86400, 0, &cpu_s) >= 0;
            if (!isolated && (json_object_get(def, "processes") != NULL || json_object_get(def, "memory_mb") != NULL ||
                              json_object_get(def, "cpu_s") != NULL)) {
                cfg_error(errs, file, path,
                          "\"processes\", \"memory_mb\" and \"cpu_s\" belong to an isolated "
                          "function (\"isolated\": true)");
                ok = 0;
            }
            if (isolated && inline_calls) {
                cfg_error(errs, file, path, "a C function is \"inline\" or \"isolated\", not both");
                ok = 0;
            }
            if (!ok)
                continue;
            char *resolved = resolve_object(file, obj, opts);
            fn_c_isolation iso = {(unsigned)processes, memory_mb, cpu_s};
            if (resolved != NULL &&
                asprintf(&key, "c\n%s\n%s\n%s\n%d\n%d/%llu/%llu/%llu", name, resolved, symbol, inline_calls, isolated,
                         (unsigned long long)processes, (unsigned long long)memory_mb, (unsigned long long)cpu_s) > 0)
                fn = reusable(opts, key, resolved);
            if (fn == NULL &&
                (resolved == NULL ||
                 (isolated
                      ? fn_c_load_isolated(name, resolved, symbol, &iso, opts->nthreads, &fn, err, sizeof(err))
                      : fn_c_load(name, resolved, symbol, inline_calls, opts->nthreads, &fn, err, sizeof(err))) != 0)) {
                char p[600];
                cfg_path_key(p, sizeof(p), path, "c");
                cfg_error(errs, file, p, "%s", resolved != NULL ? err : "out of memory");
            }
            free(resolved);
        }
        /* A function that failed to load keeps its name (with fn NULL) so that routes naming it do not
         * report a second, misleading "unknown function" error. */
        bff_snapshot_function *slot = &snap->functions[snap->nfunctions];
        slot->name = strdup(name);
        slot->fn = fn;
        slot->key = key;
        ++snap->nfunctions;
        if (slot->name == NULL)
            cfg_error(errs, file, path, "out of memory");
    }
}

/* The route's "auth": false (public), {"require": [...]} (rules on top of the frontend's), {"jwt": {...}} (its
 * own settings instead of the frontend's), or absent (the frontend's). */
static void load_route_auth(bff_route *route, const bff_frontend *fe, json_t *def, const char *file, const char *path,
                            cfg_errors *errs)
{
    route->auth = json_is_false(def) ? NULL : fe->auth;
    json_t *jwt = json_is_object(def) ? json_object_get(def, "jwt") : NULL;
    if (jwt != NULL) {
        char p[640];
        cfg_path_key(p, sizeof(p), path, "jwt");
        route->own_auth = bff_auth_load(jwt, file, p, errs);
        route->auth = route->own_auth;
    }
    json_t *require = json_is_object(def) ? json_object_get(def, "require") : NULL;
    if (require != NULL) {
        char p[640];
        cfg_path_key(p, sizeof(p), path, "require");
        bff_auth_parse_rules(require, file, p, &route->rules, &route->nrules, errs);
    }
}

static void route_auth_free(bff_route *route)
{
    bff_jwt_rules_free(route->rules, route->nrules);
    route->rules = NULL;
    route->nrules = 0;
    bff_auth_free(route->own_auth);
    route->own_auth = NULL;
    route->auth = NULL;
}

static unsigned parse_methods(cfg_errors *errs, const char *file, const char *path, json_t *route)
{
    char p[512];
    cfg_path_key(p, sizeof(p), path, "method");
    json_t *m = json_object_get(route, "method");
    if (m == NULL)
        return BFF_METHOD_GET;
    unsigned mask = 0;
    size_t n = json_is_array(m) ? json_array_size(m) : 1;
    if (!json_is_string(m) && !(json_is_array(m) && n > 0)) {
        cfg_error(errs, file, p, "must be a method name or a non-empty list of them");
        return 0;
    }
    for (size_t i = 0; i < n; ++i) {
        json_t *one = json_is_array(m) ? json_array_get(m, i) : m;
        unsigned bit = json_is_string(one) ? bff_method_from_name(json_string_value(one), json_string_length(one)) : 0;
        if (bit == 0) {
            cfg_error(errs, file, p, "unknown method %s%s%s (use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS)",
                      json_is_string(one) ? "\"" : "", json_is_string(one) ? json_string_value(one) : "(not a string)",
                      json_is_string(one) ? "\"" : "");
            return 0;
        }
        mask |= bit;
    }
    return mask;
}

static void route_target_free(bff_route *route)
{
    bff_plan_free(route->plan);
    route->plan = NULL;
    free(route->target);
    route->target = NULL;
}

/* Name resolution for plans: the snapshot's functions and upstreams. */
typedef struct plan_names {
    const bff_snapshot *snap;
    const bff_snapshot_options *opts;
} plan_names;

static fn_function *plan_function(void *data, const char *name, int *known)
{
    const plan_names *names = data;
    int idx = function_index(names->snap, name);
    *known = idx >= 0;
    return idx >= 0 ? names->snap->functions[idx].fn : NULL;
}

static uint32_t plan_function_stats(void *data, const char *name)
{
    const plan_names *names = data;
    return names->opts->route_stats_id != NULL ? names->opts->route_stats_id("", name) : 0;
}

static const bff_upstream *plan_upstream(void *data, const char *name)
{
    const plan_names *names = data;
    for (size_t i = 0; i < names->snap->nupstreams; ++i) {
        if (strcmp(names->snap->upstreams[i].name, name) == 0)
            return &names->snap->upstreams[i];
    }
    return NULL;
}

static void load_routes(bff_snapshot *snap, bff_frontend *fe, json_t *routes, const char *file,
                        const bff_snapshot_options *opts, cfg_errors *errs)
{
    size_t n = json_array_size(routes);
    fe->routes = calloc(n + 1, sizeof(*fe->routes));
    fe->table = bff_route_table_new();
    if (fe->routes == NULL || fe->table == NULL) {
        cfg_error(errs, file, "routes", "out of memory");
        return;
    }
    for (size_t i = 0; i < n; ++i) {
        char path[512];
        cfg_path_index(path, sizeof(path), "routes", i);
        json_t *def = json_array_get(routes, i);
        if (!json_is_object(def)) {
            cfg_error(errs, file, path, "a route must be an object");
            continue;
        }
        cfg_check_keys(errs, file, path, def, route_keys);
        json_t *route_auth = json_object_get(def, "auth");
        char auth_path[600];
        cfg_path_key(auth_path, sizeof(auth_path), path, "auth");
        if (route_auth != NULL && !json_is_false(route_auth) && !json_is_object(route_auth)) {
            cfg_error(errs, file, auth_path,
                      "must be false (a public route), {\"require\": [claim rules]} or {\"jwt\": {...}} (the "
                      "route's own JWT settings)");
            route_auth = NULL;
        } else if (json_is_object(route_auth)) {
            cfg_check_keys(errs, file, auth_path, route_auth, route_auth_keys);
            if (fe->auth == NULL && json_object_get(route_auth, "jwt") == NULL) {
                cfg_error(errs, file, auth_path, "claim rules need JWT on the frontend (auth.jwt) or the route");
                route_auth = NULL;
            }
        }
        const char *pattern = NULL, *fn_name = NULL;
        int ok = cfg_get_string(errs, file, path, def, "path", 1, &pattern) == 1;
        int composed = json_object_get(def, "steps") != NULL;
        if (composed && json_object_get(def, "function") != NULL) {
            cfg_error(errs, file, path, "a route has \"function\" or \"steps\", not both");
            continue;
        }
        if (!composed)
            ok &= cfg_get_string(errs, file, path, def, "function", 1, &fn_name) == 1;
        for (size_t k = 0; !composed && k < 3; ++k) {
            static const char *const plan_only[] = {"response", "call_status", "shape"};
            if (json_object_get(def, plan_only[k]) != NULL) {
                char p[600];
                cfg_path_key(p, sizeof(p), path, plan_only[k]);
                cfg_error(errs, file, p, "belongs to a composed route (one with \"steps\")");
            }
        }
        unsigned methods = parse_methods(errs, file, path, def);
        bff_route *route = &fe->routes[fe->nroutes];
        route->limits = fe->defaults;
        parse_limits(errs, file, path, def, &route->limits);
        if (!ok || methods == 0)
            continue;
        int idx = -1;
        if (composed) {
            plan_names names = {snap, opts};
            bff_plan_env env = {&names, plan_function, plan_function_stats, plan_upstream};
            if ((route->plan = bff_plan_load(def, file, path, &env, errs)) == NULL)
                continue;
        } else {
            idx = function_index(snap, fn_name);
            if (idx < 0) {
                char p[600];
                cfg_path_key(p, sizeof(p), path, "function");
                cfg_error(errs, file, p, "unknown function \"%s\"", fn_name);
                continue;
            }
            if (snap->functions[idx].fn == NULL)
                continue; /* its load error is already reported */
        }
        if (composed)
            ok = asprintf(&route->target, "steps: %s", route->plan->summary) > 0;
        else
            ok = (route->target = strdup(fn_name)) != NULL;
        route->pattern = ok ? strdup(pattern) : NULL;
        route->methods = methods;
        load_route_auth(route, fe, route_auth, file, auth_path, errs);
        if (route->pattern == NULL) {
            cfg_error(errs, file, path, "out of memory");
            route_auth_free(route);
            route_target_free(route);
            continue;
        }
        char err[256];
        int rc = bff_route_table_add(fe->table, methods, pattern, route, err, sizeof(err));
        if (rc != 0) {
            char p[600];
            cfg_path_key(p, sizeof(p), path, "path");
            cfg_error(errs, file, p, "%s", err);
            free(route->pattern);
            route->pattern = NULL;
            route_auth_free(route);
            route_target_free(route);
            continue;
        }
        if (idx >= 0)
            route->fn = fn_function_acquire(snap->functions[idx].fn);
        bff_admission_init(&route->admission, route->limits.concurrency, route->limits.queue_max, opts->admit);
        if (opts->route_stats_id != NULL && fe->name != NULL) {
            route->stats_id = opts->route_stats_id(fe->name, pattern);
            route->fn_stats_id = fn_name != NULL ? opts->route_stats_id("", fn_name) : 0;
        }
        bff_cache_config cache;
        if (bff_cache_config_load(def, file, path, &cache, errs) == 1) {
            if (!(methods & BFF_METHOD_GET)) {
                char p[600];
                cfg_path_key(p, sizeof(p), path, "cache");
                cfg_error(errs, file, p, "caches answers to GET, which this route does not take");
            } else if ((route->cache = bff_cache_new(&cache)) == NULL) {
                cfg_error(errs, file, path, "out of memory");
            }
        }
        if (route->limits.rate_rps > 0 && (route->ratelimit = malloc(sizeof(*route->ratelimit))) != NULL)
            bff_ratelimit_init(route->ratelimit, route->limits.rate_rps, route->limits.rate_burst);
        ++fe->nroutes;
    }
}

static char *lower_dup(const char *s)
{
    char *out = strdup(s);
    for (char *p = out; p != NULL && *p != '\0'; ++p)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

static int valid_prefix(const char *prefix)
{
    size_t len = strlen(prefix);
    return prefix[0] == '/' && (len == 1 || prefix[len - 1] != '/') && strchr(prefix, '?') == NULL &&
           strchr(prefix, '{') == NULL;
}

static void load_match(bff_frontend *fe, json_t *match, const char *file, cfg_errors *errs)
{
    cfg_check_keys(errs, file, "match", match, match_keys);
    const char *prefix = NULL, *host = NULL;
    if (cfg_get_string(errs, file, "match", match, "path_prefix", 0, &prefix) == 1) {
        if (!valid_prefix(prefix))
            cfg_error(errs, file, "match.path_prefix",
                      "must start with '/', not end with '/' and hold no '?' or '{' (e.g. \"/web\")");
        else if (strcmp(prefix, "/") != 0 && (fe->path_prefix = strdup(prefix)) != NULL)
            fe->path_prefix_len = strlen(prefix);
    }
    if (cfg_get_string(errs, file, "match", match, "host", 0, &host) == 1)
        fe->host = lower_dup(host);
    json_t *header;
    if (cfg_get_object(errs, file, "match", match, "header", 0, &header) == 1) {
        const char *name = NULL, *value = NULL;
        cfg_check_keys(errs, file, "match.header", header, header_match_keys);
        int ok = cfg_get_string(errs, file, "match.header", header, "name", 1, &name) == 1;
        ok &= cfg_get_string(errs, file, "match.header", header, "value", 1, &value) == 1;
        if (ok) {
            fe->header_name = lower_dup(name);
            fe->header_value = strdup(value);
        }
    }
}

static void load_frontend(bff_snapshot *snap, const char *file, const bff_snapshot_options *opts, cfg_errors *errs)
{
    json_t *root = cfg_load_file(errs, file);
    if (root == NULL)
        return;
    bff_frontend *fe = &snap->frontends[snap->nfrontends];
    memset(fe, 0, sizeof(*fe));
    fe->file = strdup(file);
    fe->defaults = snap->defaults;
    ++snap->nfrontends;

    cfg_check_keys(errs, file, "", root, frontend_keys);
    const char *name = NULL;
    if (cfg_get_string(errs, file, "", root, "name", 1, &name) == 1 && strlen(name) > BFF_NAME_MAX) {
        cfg_error(errs, file, "name", "a frontend name is at most %d characters", BFF_NAME_MAX);
    } else if (name != NULL) {
        for (size_t i = 0; i + 1 < snap->nfrontends; ++i) {
            if (snap->frontends[i].name != NULL && strcmp(snap->frontends[i].name, name) == 0)
                cfg_error(errs, file, "name", "frontend \"%s\" is already defined in %s", name,
                          snap->frontends[i].file);
        }
        fe->name = strdup(name);
    }
    json_t *match;
    if (cfg_get_object(errs, file, "", root, "match", 0, &match) == 1)
        load_match(fe, match, file, errs);
    parse_defaults(errs, file, root, &fe->defaults);
    json_t *auth, *jwt, *cors;
    if (cfg_get_object(errs, file, "", root, "auth", 0, &auth) == 1) {
        cfg_check_keys(errs, file, "auth", auth, auth_keys);
        if (cfg_get_object(errs, file, "auth", auth, "jwt", 1, &jwt) == 1)
            fe->auth = bff_auth_load(jwt, file, "auth.jwt", errs);
    }
    if (cfg_get_object(errs, file, "", root, "cors", 0, &cors) == 1)
        fe->cors = bff_cors_load(cors, file, errs);
    json_t *routes = json_object_get(root, "routes");
    if (!json_is_array(routes))
        cfg_error(errs, file, "routes", routes == NULL ? "missing required key" : "must be a list of routes");
    else
        load_routes(snap, fe, routes, file, opts, errs);
    json_decref(root);
}

/* Expands the "frontends" list (files or glob patterns) and loads each file. */
static void load_frontends(bff_snapshot *snap, json_t *list, const char *file, const bff_snapshot_options *opts,
                           cfg_errors *errs)
{
    char **files = NULL;
    size_t nfiles = 0;
    for (size_t i = 0; i < json_array_size(list); ++i) {
        char path[64];
        cfg_path_index(path, sizeof(path), "frontends", i);
        json_t *item = json_array_get(list, i);
        if (!json_is_string(item)) {
            cfg_error(errs, file, path, "must be a file name or glob pattern");
            continue;
        }
        char *pattern = cfg_resolve_path(file, json_string_value(item));
        glob_t g;
        int rc = pattern != NULL ? glob(pattern, GLOB_ERR, NULL, &g) : GLOB_NOSPACE;
        if (rc != 0 || g.gl_pathc == 0) {
            cfg_error(errs, file, path, "no frontend file matches \"%s\"", pattern != NULL ? pattern : "?");
        } else {
            char **grown = realloc(files, (nfiles + g.gl_pathc) * sizeof(*files));
            if (grown != NULL) {
                files = grown;
                for (size_t k = 0; k < g.gl_pathc; ++k)
                    files[nfiles++] = strdup(g.gl_pathv[k]);
            }
        }
        if (rc == 0)
            globfree(&g);
        free(pattern);
    }
    snap->frontends = calloc(nfiles + 1, sizeof(*snap->frontends));
    for (size_t i = 0; i < nfiles; ++i) {
        if (snap->frontends != NULL && files[i] != NULL)
            load_frontend(snap, files[i], opts, errs);
        free(files[i]);
    }
    free(files);
    if (nfiles > 0 && snap->nfrontends == 0 && errs->count == 0)
        cfg_error(errs, file, "frontends", "no frontend could be loaded");
}

static void frontend_free(bff_frontend *fe)
{
    for (size_t i = 0; i < fe->nroutes; ++i) {
        route_auth_free(&fe->routes[i]);
        route_target_free(&fe->routes[i]);
        bff_cache_free(fe->routes[i].cache);
        bff_admission_dispose(&fe->routes[i].admission);
        if (fe->routes[i].ratelimit != NULL) {
            bff_ratelimit_dispose(fe->routes[i].ratelimit);
            free(fe->routes[i].ratelimit);
        }
        free(fe->routes[i].pattern);
        fn_function_release(&fe->routes[i].fn);
    }
    free(fe->routes);
    bff_route_table_free(&fe->table);
    free(fe->name);
    free(fe->file);
    free(fe->path_prefix);
    free(fe->host);
    free(fe->header_name);
    free(fe->header_value);
    bff_auth_free(fe->auth);
    bff_cors_free(fe->cors);
}

static void snapshot_free(bff_snapshot *snap)
{
    for (size_t i = 0; i < snap->nfrontends; ++i)
        frontend_free(&snap->frontends[i]);
    free(snap->frontends);
    for (size_t i = 0; i < snap->nfunctions; ++i) {
        free(snap->functions[i].name);
        free(snap->functions[i].key);
        fn_function_release(&snap->functions[i].fn);
    }
    free(snap->functions);
    bff_upstreams_free(snap->upstreams, snap->nupstreams);
    free(snap);
}

int bff_snapshot_build(json_t *root, const char *file, const bff_snapshot_options *opts, bff_snapshot **out,
                       cfg_errors *errs)
{
    size_t errors_before = errs->count;
    bff_snapshot *snap = calloc(1, sizeof(*snap));
    if (snap == NULL) {
        cfg_error(errs, file, "", "out of memory");
        return -1;
    }
    atomic_init(&snap->refs, 1);
    snap->defaults = (bff_limits){BFF_DEFAULT_TIMEOUT_MS,
                                  BFF_DEFAULT_CONCURRENCY,
                                  BFF_DEFAULT_QUEUE_MAX,
                                  BFF_DEFAULT_QUEUE_WAIT_MS,
                                  BFF_DEFAULT_MEMORY_MB,
                                  0,
                                  0,
                                  ""};

    cfg_check_keys(errs, file, "", root, entry_keys);
    parse_defaults(errs, file, root, &snap->defaults);

    json_t *functions;
    int has_functions = cfg_get_object(errs, file, "", root, "functions", 1, &functions);
    if (has_functions == 1)
        load_functions(snap, functions, file, opts, errs);

    bff_upstreams_load(json_object_get(root, "upstreams"), file, &snap->upstreams, &snap->nupstreams, errs);
    for (size_t i = 0; opts->route_stats_id != NULL && opts->upstream_stats_prefix != NULL && i < snap->nupstreams; ++i)
        snap->upstreams[i].stats_id = opts->route_stats_id(opts->upstream_stats_prefix, snap->upstreams[i].name);

    json_t *frontends = json_object_get(root, "frontends");
    if (!json_is_array(frontends) || json_array_size(frontends) == 0)
        cfg_error(errs, file, "frontends",
                  frontends == NULL ? "missing required key" : "must be a non-empty list of frontend files");
    else
        load_frontends(snap, frontends, file, opts, errs);

    if (errs->count != errors_before) {
        snapshot_free(snap);
        return -1;
    }
    snap->version = atomic_fetch_add(&snapshot_versions, 1) + 1;
    snap->version_len =
        (size_t)snprintf(snap->version_text, sizeof(snap->version_text), "%llu", (unsigned long long)snap->version);
    *out = snap;
    return 0;
}

bff_snapshot *bff_snapshot_acquire(bff_snapshot *snap)
{
    atomic_fetch_add_explicit(&snap->refs, 1, memory_order_relaxed);
    return snap;
}

void bff_snapshot_release(bff_snapshot **psnap)
{
    bff_snapshot *snap = *psnap;
    if (snap == NULL)
        return;
    *psnap = NULL;
    if (atomic_fetch_sub_explicit(&snap->refs, 1, memory_order_acq_rel) == 1)
        snapshot_free(snap);
}

static int host_matches(const char *want, const char *host, size_t len)
{
    const char *colon = memchr(host, ':', len);
    if (colon != NULL && host[0] != '[')
        len = (size_t)(colon - host);
    return strlen(want) == len && strncasecmp(want, host, len) == 0;
}

const bff_frontend *bff_snapshot_select(const bff_snapshot *snap, const char *host, size_t host_len, const char *path,
                                        size_t path_len, bff_header_lookup lookup, void *lookup_ctx, const char **rest,
                                        size_t *rest_len)
{
    for (size_t i = 0; i < snap->nfrontends; ++i) {
        const bff_frontend *fe = &snap->frontends[i];
        if (fe->path_prefix != NULL) {
            size_t n = fe->path_prefix_len;
            if (path_len < n || memcmp(path, fe->path_prefix, n) != 0 || (path_len > n && path[n] != '/'))
                continue;
        }
        if (fe->host != NULL && (host == NULL || !host_matches(fe->host, host, host_len)))
            continue;
        if (fe->header_name != NULL) {
            size_t vlen = 0;
            const char *v = lookup != NULL ? lookup(lookup_ctx, fe->header_name, strlen(fe->header_name), &vlen) : NULL;
            if (v == NULL || vlen != strlen(fe->header_value) || memcmp(v, fe->header_value, vlen) != 0)
                continue;
        }
        size_t skip = fe->path_prefix != NULL ? fe->path_prefix_len : 0;
        if (path_len == skip) {
            *rest = "/";
            *rest_len = 1;
        } else {
            *rest = path + skip;
            *rest_len = path_len - skip;
        }
        return fe;
    }
    return NULL;
}
