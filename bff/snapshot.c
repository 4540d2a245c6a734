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

static const char *const entry_keys[] = {"server", "defaults", "functions", "frontends", NULL};
static const char *const limit_keys[] = {"timeout_ms", "concurrency", "queue_max", "queue_wait_ms",
                                         "memory_mb",  "rate_limit",  NULL};
static const char *const rate_keys[] = {"rps", "burst", NULL};
static const char *const frontend_keys[] = {"name", "match", "defaults", "routes", "auth", "cors", NULL};
static const char *const cors_keys[] = {"origins", "allow_headers", "expose_headers", "credentials", "max_age_s", NULL};
static const char *const auth_keys[] = {"jwt", NULL};
static const char *const jwt_keys[] = {"keys",   "issuer",          "audience", "leeway_s",
                                       "cookie", "max_token_bytes", "require",  NULL};
static const char *const rule_keys[] = {"claim", "equals", "contains", NULL};
static const char *const route_auth_keys[] = {"require", NULL};
static const char *const jwt_key_keys[] = {"alg", "kid", "secret_env", "secret_file", "public_key_file", NULL};
static const char *const match_keys[] = {"path_prefix", "host", "header", NULL};
static const char *const header_match_keys[] = {"name", "value", NULL};
static const char *const route_keys[] = {"method",      "path",      "function",      "timeout_ms",
                                         "concurrency", "queue_max", "queue_wait_ms", "memory_mb",
                                         "rate_limit",  "steps",     "auth",          NULL};
static const char *const lua_fn_keys[] = {"lua", NULL};
static const char *const c_fn_keys[] = {"c", "symbol", "inline", NULL};

static void parse_rules(json_t *list, const char *file, const char *path, bff_claim_rule **out, size_t *nout,
                        cfg_errors *errs);

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
    } else if (cfg_get_object(errs, file, path, obj, "rate_limit", 0, &rate) == 1) {
        cfg_check_keys(errs, file, p, rate, rate_keys);
        uint64_t rps = 0, burst = 0;
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
            int inline_calls = 0;
            int ok = cfg_get_string(errs, file, path, def, "c", 1, &obj) == 1;
            ok &= cfg_get_string(errs, file, path, def, "symbol", 1, &symbol) == 1;
            ok &= cfg_get_bool(errs, file, path, def, "inline", &inline_calls) >= 0;
            if (!ok)
                continue;
            char *resolved = resolve_object(file, obj, opts);
            if (resolved != NULL && asprintf(&key, "c\n%s\n%s\n%s\n%d", name, resolved, symbol, inline_calls) > 0)
                fn = reusable(opts, key, resolved);
            if (fn == NULL && (resolved == NULL || fn_c_load(name, resolved, symbol, inline_calls, opts->nthreads, &fn,
                                                             err, sizeof(err)) != 0)) {
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
        if (route_auth != NULL && !json_is_false(route_auth)) {
            if (!json_is_object(route_auth)) {
                cfg_error(errs, file, auth_path, "must be false (a public route) or {\"require\": [claim rules]}");
                route_auth = NULL;
            } else if (fe->jwt == NULL) {
                cfg_error(errs, file, auth_path, "claim rules need JWT on the frontend (auth.jwt)");
                route_auth = NULL;
            } else {
                cfg_check_keys(errs, file, auth_path, route_auth, route_auth_keys);
            }
        }
        static const char *const reserved[] = {"steps"};
        for (size_t r = 0; r < 1; ++r) {
            if (json_object_get(def, reserved[r]) != NULL) {
                char p[600];
                cfg_path_key(p, sizeof(p), path, reserved[r]);
                cfg_error(errs, file, p, "is reserved for a later version of bffgate and not supported yet");
            }
        }
        const char *pattern = NULL, *fn_name = NULL;
        int ok = cfg_get_string(errs, file, path, def, "path", 1, &pattern) == 1;
        ok &= cfg_get_string(errs, file, path, def, "function", 1, &fn_name) == 1;
        unsigned methods = parse_methods(errs, file, path, def);
        bff_route *route = &fe->routes[fe->nroutes];
        route->limits = fe->defaults;
        parse_limits(errs, file, path, def, &route->limits);
        if (!ok || methods == 0)
            continue;
        int idx = function_index(snap, fn_name);
        if (idx < 0) {
            char p[600];
            cfg_path_key(p, sizeof(p), path, "function");
            cfg_error(errs, file, p, "unknown function \"%s\"", fn_name);
            continue;
        }
        if (snap->functions[idx].fn == NULL)
            continue; /* its load error is already reported */
        route->pattern = strdup(pattern);
        route->methods = methods;
        route->public_route = json_is_false(route_auth);
        json_t *require = json_is_object(route_auth) ? json_object_get(route_auth, "require") : NULL;
        if (require != NULL) {
            char q[640];
            cfg_path_key(q, sizeof(q), auth_path, "require");
            parse_rules(require, file, q, &route->rules, &route->nrules, errs);
        }
        if (route->pattern == NULL) {
            cfg_error(errs, file, path, "out of memory");
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
            bff_jwt_rules_free(route->rules, route->nrules);
            route->rules = NULL;
            route->nrules = 0;
            continue;
        }
        route->fn = fn_function_acquire(snap->functions[idx].fn);
        bff_admission_init(&route->admission, route->limits.concurrency, route->limits.queue_max, opts->admit);
        if (opts->route_stats_id != NULL && fe->name != NULL) {
            route->stats_id = opts->route_stats_id(fe->name, pattern);
            route->fn_stats_id = opts->route_stats_id("", fn_name);
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

/* "require": [{"claim": "sub"}, {"claim": "scope", "contains": "orders:read"}, {"claim": "role", "equals": "x"}] */
static void parse_rules(json_t *list, const char *file, const char *path, bff_claim_rule **out, size_t *nout,
                        cfg_errors *errs)
{
    if (!json_is_array(list)) {
        cfg_error(errs, file, path, "must be a list of {\"claim\": ..., \"equals\"|\"contains\": ...}");
        return;
    }
    size_t n = json_array_size(list);
    bff_claim_rule *rules = calloc(n + 1, sizeof(*rules));
    if (rules == NULL) {
        cfg_error(errs, file, path, "out of memory");
        return;
    }
    size_t count = 0;
    for (size_t i = 0; i < n; ++i) {
        char p[600];
        cfg_path_index(p, sizeof(p), path, i);
        json_t *def = json_array_get(list, i);
        if (!json_is_object(def)) {
            cfg_error(errs, file, p, "a rule must be an object with \"claim\"");
            continue;
        }
        cfg_check_keys(errs, file, p, def, rule_keys);
        const char *claim = NULL, *equals = NULL, *contains = NULL;
        if (cfg_get_string(errs, file, p, def, "claim", 1, &claim) != 1)
            continue;
        cfg_get_string(errs, file, p, def, "equals", 0, &equals);
        cfg_get_string(errs, file, p, def, "contains", 0, &contains);
        if (equals != NULL && contains != NULL) {
            cfg_error(errs, file, p, "give \"equals\" or \"contains\", not both");
            continue;
        }
        bff_claim_rule *r = &rules[count++];
        r->claim = strdup(claim);
        r->op = equals != NULL ? BFF_CLAIM_EQUALS : contains != NULL ? BFF_CLAIM_CONTAINS : BFF_CLAIM_PRESENT;
        r->value = equals != NULL ? strdup(equals) : contains != NULL ? strdup(contains) : NULL;
    }
    *out = rules;
    *nout = count;
}

/* One key: {"alg": "HS256", "secret_env" | "secret_file": ...} or {"alg": "RS256", "public_key_file": ...}. */
static void load_jwt_key(bff_jwt_config *jwt, json_t *def, const char *file, const char *path, cfg_errors *errs)
{
    if (!json_is_object(def)) {
        cfg_error(errs, file, path, "a key must be an object with \"alg\" and its material");
        return;
    }
    cfg_check_keys(errs, file, path, def, jwt_key_keys);
    const char *alg_name = NULL, *kid = NULL, *env = NULL, *secret_file = NULL, *pem_file = NULL;
    bff_jwt_alg alg;
    char p[600];
    if (cfg_get_string(errs, file, path, def, "alg", 1, &alg_name) != 1)
        return;
    cfg_path_key(p, sizeof(p), path, "alg");
    if (bff_jwt_alg_parse(alg_name, &alg) != 0) {
        cfg_error(errs, file, p, "unknown algorithm \"%s\" (HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384)",
                  alg_name);
        return;
    }
    cfg_get_string(errs, file, path, def, "kid", 0, &kid);
    cfg_get_string(errs, file, path, def, "secret_env", 0, &env);
    cfg_get_string(errs, file, path, def, "secret_file", 0, &secret_file);
    cfg_get_string(errs, file, path, def, "public_key_file", 0, &pem_file);
    int hmac = alg <= BFF_JWT_HS512;
    if ((env != NULL) + (secret_file != NULL) + (pem_file != NULL) != 1 || (hmac && pem_file != NULL) ||
        (!hmac && pem_file == NULL)) {
        cfg_error(errs, file, path,
                  hmac ? "an HMAC key needs exactly one of \"secret_env\" or \"secret_file\""
                       : "an RSA or EC key needs \"public_key_file\" (a PEM public key)");
        return;
    }
    char *material = NULL;
    size_t len = 0;
    if (env != NULL) {
        const char *value = getenv(env);
        cfg_path_key(p, sizeof(p), path, "secret_env");
        if (value == NULL || value[0] == '\0') {
            /* libjwt skips verification for an empty key: never accept one. */
            cfg_error(errs, file, p, "environment variable %s is unset or empty", env);
            return;
        }
        material = strdup(value);
        len = strlen(value);
    } else {
        char *resolved = cfg_resolve_path(file, secret_file != NULL ? secret_file : pem_file);
        cfg_path_key(p, sizeof(p), path, secret_file != NULL ? "secret_file" : "public_key_file");
        int rc = resolved != NULL ? fn_read_file(resolved, &material, &len) : -ENOMEM;
        if (rc != 0) {
            cfg_error(errs, file, p, "cannot read %s: %s", resolved != NULL ? resolved : "?", strerror(-rc));
            free(resolved);
            return;
        }
        free(resolved);
        if (secret_file != NULL) /* a trailing newline is not part of the secret */
            while (len > 0 && (material[len - 1] == '\n' || material[len - 1] == '\r'))
                material[--len] = '\0';
        if (len == 0) {
            cfg_error(errs, file, p, "the key is empty");
            free(material);
            return;
        }
    }
    if (material == NULL || bff_jwt_config_add_key(jwt, kid, alg, material, len) != 0)
        cfg_error(errs, file, path, "cannot add the key");
    if (material != NULL)
        memset(material, 0, len);
    free(material);
}

static void load_auth(bff_frontend *fe, json_t *auth, const char *file, cfg_errors *errs)
{
    cfg_check_keys(errs, file, "auth", auth, auth_keys);
    json_t *jwt_def;
    if (cfg_get_object(errs, file, "auth", auth, "jwt", 1, &jwt_def) != 1)
        return;
    cfg_check_keys(errs, file, "auth.jwt", jwt_def, jwt_keys);
    bff_jwt_config *jwt = calloc(1, sizeof(*jwt));
    if (jwt == NULL) {
        cfg_error(errs, file, "auth.jwt", "out of memory");
        return;
    }
    fe->jwt = jwt;
    json_t *keys = json_object_get(jwt_def, "keys");
    if (!json_is_array(keys) || json_array_size(keys) == 0) {
        cfg_error(errs, file, "auth.jwt.keys", keys == NULL ? "missing required key" : "must be a non-empty list");
    } else {
        for (size_t i = 0; i < json_array_size(keys); ++i) {
            char p[64];
            cfg_path_index(p, sizeof(p), "auth.jwt.keys", i);
            load_jwt_key(jwt, json_array_get(keys, i), file, p, errs);
        }
        size_t without_kid = 0;
        for (size_t i = 0; i < jwt->nkeys; ++i)
            without_kid += jwt->keys[i].kid == NULL;
        if (jwt->nkeys > 1 && without_kid > 0)
            cfg_error(errs, file, "auth.jwt.keys", "with several keys, every key needs a \"kid\"");
    }
    const char *issuer = NULL, *cookie = NULL;
    if (cfg_get_string(errs, file, "auth.jwt", jwt_def, "issuer", 0, &issuer) == 1)
        jwt->issuer = strdup(issuer);
    if (cfg_get_string(errs, file, "auth.jwt", jwt_def, "cookie", 0, &cookie) == 1)
        fe->jwt_cookie = strdup(cookie);
    uint64_t v;
    if (cfg_get_uint(errs, file, "auth.jwt", jwt_def, "leeway_s", 0, 3600, 0, &v) == 1)
        jwt->leeway_s = v;
    if (cfg_get_uint(errs, file, "auth.jwt", jwt_def, "max_token_bytes", 256, 65536, 0, &v) == 1)
        jwt->max_token_bytes = (size_t)v;
    json_t *require = json_object_get(jwt_def, "require");
    if (require != NULL)
        parse_rules(require, file, "auth.jwt.require", &fe->rules, &fe->nrules, errs);
    json_t *aud = json_object_get(jwt_def, "audience");
    if (aud != NULL) {
        size_t n = json_is_array(aud) ? json_array_size(aud) : 1;
        jwt->audiences = calloc(n, sizeof(char *));
        for (size_t i = 0; i < n && jwt->audiences != NULL; ++i) {
            json_t *a = json_is_array(aud) ? json_array_get(aud, i) : aud;
            if (!json_is_string(a)) {
                cfg_error(errs, file, "auth.jwt.audience", "must be a string or a list of strings");
                break;
            }
            jwt->audiences[jwt->naudiences++] = strdup(json_string_value(a));
        }
    }
}

int bff_cors_origin_allowed(const bff_cors *cors, const char *origin, size_t len)
{
    if (cors->any_origin)
        return 1;
    for (size_t i = 0; i < cors->norigins; ++i) {
        if (strlen(cors->origins[i]) == len && memcmp(cors->origins[i], origin, len) == 0)
            return 1;
    }
    return 0;
}

/* A list of strings joined with ", " (NULL when absent); every item must be an HTTP token. */
static char *header_list(json_t *list, const char *file, const char *path, cfg_errors *errs)
{
    if (list == NULL)
        return NULL;
    if (!json_is_array(list)) {
        cfg_error(errs, file, path, "must be a list of header names");
        return NULL;
    }
    fn_buf out = FN_BUF_INIT;
    for (size_t i = 0; i < json_array_size(list); ++i) {
        const char *name = json_string_value(json_array_get(list, i));
        int ok = name != NULL && name[0] != '\0';
        for (const char *c = name; ok && *c != '\0'; ++c)
            ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ||
                 *c == '_';
        if (!ok) {
            char p[600];
            cfg_path_index(p, sizeof(p), path, i);
            cfg_error(errs, file, p, "must be a header name");
            continue;
        }
        if (out.len > 0)
            fn_buf_append_str(&out, ", ");
        fn_buf_append_str(&out, name);
    }
    return out.len > 0 ? fn_buf_steal(&out) : (fn_buf_release(&out), NULL);
}

static void load_cors(bff_frontend *fe, json_t *def, const char *file, cfg_errors *errs)
{
    cfg_check_keys(errs, file, "cors", def, cors_keys);
    bff_cors *cors = calloc(1, sizeof(*cors));
    if (cors == NULL) {
        cfg_error(errs, file, "cors", "out of memory");
        return;
    }
    fe->cors = cors;
    json_t *origins = json_object_get(def, "origins");
    if (!json_is_array(origins) || json_array_size(origins) == 0) {
        cfg_error(errs, file, "cors.origins",
                  origins == NULL ? "missing required key" : "must be a non-empty list of origins");
    } else {
        cors->origins = calloc(json_array_size(origins), sizeof(char *));
        for (size_t i = 0; cors->origins != NULL && i < json_array_size(origins); ++i) {
            const char *o = json_string_value(json_array_get(origins, i));
            char p[64];
            cfg_path_index(p, sizeof(p), "cors.origins", i);
            if (o == NULL || (strcmp(o, "*") != 0 && strncmp(o, "http://", 7) != 0 && strncmp(o, "https://", 8) != 0) ||
                strchr(o + (o[0] == '*' ? 1 : 8), '/') != NULL) {
                cfg_error(errs, file, p, "must be \"*\" or an origin such as \"https://shop.example\" (no path)");
                continue;
            }
            if (strcmp(o, "*") == 0)
                cors->any_origin = 1;
            else
                cors->origins[cors->norigins++] = strdup(o);
        }
    }
    cors->allow_headers = header_list(json_object_get(def, "allow_headers"), file, "cors.allow_headers", errs);
    cors->expose_headers = header_list(json_object_get(def, "expose_headers"), file, "cors.expose_headers", errs);
    cfg_get_bool(errs, file, "cors", def, "credentials", &cors->credentials);
    cors->max_age_s = 600;
    cfg_get_uint(errs, file, "cors", def, "max_age_s", 0, 86400, 0, &cors->max_age_s);
    if (cors->credentials && cors->any_origin)
        cfg_error(errs, file, "cors",
                  "\"credentials\": true cannot be combined with the origin \"*\" (list the origins)");
}

static void cors_free(bff_cors *cors)
{
    if (cors == NULL)
        return;
    for (size_t i = 0; i < cors->norigins; ++i)
        free(cors->origins[i]);
    free(cors->origins);
    free(cors->allow_headers);
    free(cors->expose_headers);
    free(cors);
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
    json_t *auth, *cors;
    if (cfg_get_object(errs, file, "", root, "auth", 0, &auth) == 1)
        load_auth(fe, auth, file, errs);
    if (cfg_get_object(errs, file, "", root, "cors", 0, &cors) == 1)
        load_cors(fe, cors, file, errs);
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
        bff_jwt_rules_free(fe->routes[i].rules, fe->routes[i].nrules);
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
    if (fe->jwt != NULL) {
        bff_jwt_config_release(fe->jwt);
        free(fe->jwt);
    }
    bff_jwt_rules_free(fe->rules, fe->nrules);
    cors_free(fe->cors);
    free(fe->jwt_cookie);
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
                                  0};

    cfg_check_keys(errs, file, "", root, entry_keys);
    parse_defaults(errs, file, root, &snap->defaults);

    json_t *functions;
    int has_functions = cfg_get_object(errs, file, "", root, "functions", 1, &functions);
    if (has_functions == 1)
        load_functions(snap, functions, file, opts, errs);

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
