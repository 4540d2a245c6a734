/* cli: the invoke, routes and openapi subcommands, run on a config loaded like --check. */
#include "cli.h"
#include "respond.h"

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "../functions/fn_log.h"
#include "gw_config.h"

#define MAX_LIB_PATH 16
#define REQUEST_ID_MAX 128

enum { OPT_TIMEOUT_MS = 1000, OPT_MEMORY_MB };

typedef struct cli_options {
    const char *command;
    const char *lib_path[MAX_LIB_PATH];
    size_t nlib_path;
    char *env_path; /* the copy of BFFGATE_LIB_PATH that lib_path entries point into */
    int has_log_level;
    fn_log_level log_level;
    uint64_t timeout_ms; /* 0: from the route or the defaults */
    uint64_t memory_mb;  /* 0: from the route or the defaults */
    char **args;         /* positional arguments */
    int nargs;
} cli_options;

void gw_cli_usage(FILE *out)
{
    fprintf(out, "Subcommands (a first argument that is one of these words selects it):\n"
                 "  bffgate invoke CONFIG FUNCTION [EVENT.json | -] [--timeout-ms N] [--memory-mb N]\n"
                 "                        run FUNCTION once on an event (a file, stdin with '-', or an empty\n"
                 "                        GET /), without a server; prints the answer the server would give as\n"
                 "                        JSON on stdout and a REPORT line on stderr\n"
                 "  bffgate routes CONFIG  list every frontend and its routes with their limits\n"
                 "  bffgate openapi CONFIG FRONTEND\n"
                 "                        write an OpenAPI 3.1.0 document of FRONTEND's routes\n"
                 "  They take -L/--lib-path and -l/--log-level as above.\n");
}

void gw_cli_print_config_errors(const cfg_errors *errs)
{
    for (size_t i = 0; i < errs->count; ++i)
        fprintf(stderr, "%s\n", errs->items[i] != NULL ? errs->items[i] : "(error text lost: out of memory)");
    fprintf(stderr, "bffgate: %zu configuration error%s\n", errs->count, errs->count == 1 ? "" : "s");
}

int gw_cli_is_command(const char *word)
{
    return word != NULL && (strcmp(word, "invoke") == 0 || strcmp(word, "routes") == 0 || strcmp(word, "openapi") == 0);
}

static void command_usage(const char *command, FILE *out)
{
    if (strcmp(command, "invoke") == 0)
        fprintf(out, "Usage: bffgate invoke [-L DIR] [-l LEVEL] [--timeout-ms N] [--memory-mb N] CONFIG FUNCTION "
                     "[EVENT.json | -]\n");
    else if (strcmp(command, "routes") == 0)
        fprintf(out, "Usage: bffgate routes [-L DIR] [-l LEVEL] CONFIG\n");
    else
        fprintf(out, "Usage: bffgate openapi [-L DIR] [-l LEVEL] CONFIG FRONTEND\n");
}

static int parse_limit(const char *command, const char *name, const char *text, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < 1 || v > max) {
        fprintf(stderr, "bffgate %s: %s must be an integer in 1..%llu\n", command, name, (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

/* Returns 0, 2 (usage error, printed) or 3 (help printed). */
static int parse_options(int argc, char **argv, cli_options *o)
{
    static const struct option options[] = {{"lib-path", required_argument, NULL, 'L'},
                                            {"log-level", required_argument, NULL, 'l'},
                                            {"timeout-ms", required_argument, NULL, OPT_TIMEOUT_MS},
                                            {"memory-mb", required_argument, NULL, OPT_MEMORY_MB},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *command = argv[0];
    int invoke = strcmp(command, "invoke") == 0, opt;
    memset(o, 0, sizeof(*o));
    o->command = command;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":L:l:h", options, NULL)) != -1) {
        switch (opt) {
        case 'L':
            if (o->nlib_path < MAX_LIB_PATH)
                o->lib_path[o->nlib_path++] = optarg;
            break;
        case 'l':
            if (fn_log_level_parse(optarg, strlen(optarg), &o->log_level) != 0) {
                fprintf(stderr, "bffgate %s: --log-level must be debug, info, warn or error\n", command);
                return 2;
            }
            o->has_log_level = 1;
            break;
        case OPT_TIMEOUT_MS:
        case OPT_MEMORY_MB:
            if (!invoke) {
                fprintf(stderr, "bffgate %s: --%s is an option of invoke only\n", command,
                        opt == OPT_TIMEOUT_MS ? "timeout-ms" : "memory-mb");
                return 2;
            }
            if (opt == OPT_TIMEOUT_MS ? parse_limit(command, "--timeout-ms", optarg, 600000, &o->timeout_ms)
                                      : parse_limit(command, "--memory-mb", optarg, 65536, &o->memory_mb))
                return 2;
            break;
        case 'h':
            command_usage(command, stdout);
            return 3;
        case ':':
            fprintf(stderr, "bffgate %s: %s needs a value\n", command, argv[optind - 1]);
            command_usage(command, stderr);
            return 2;
        default:
            fprintf(stderr, "bffgate %s: unknown option %s\n", command, argv[optind - 1]);
            command_usage(command, stderr);
            return 2;
        }
    }
    o->args = argv + optind;
    o->nargs = argc - optind;

    const char *env = getenv("BFFGATE_LIB_PATH");
    if (env != NULL && (o->env_path = strdup(env)) != NULL) {
        char *save = NULL;
        for (char *dir = strtok_r(o->env_path, ":", &save); dir != NULL && o->nlib_path < MAX_LIB_PATH;
             dir = strtok_r(NULL, ":", &save))
            o->lib_path[o->nlib_path++] = dir;
    }
    return 0;
}

/* Loads CONFIG like --check does. Returns 0, or -1 with the errors printed. */
static int load_config(const char *config, const cli_options *o, gw_server_config *server, bff_snapshot **snap)
{
    cfg_errors errs = {0};
    if (gw_config_load(config, 1, o->lib_path, o->nlib_path, server, snap, &errs) != 0) {
        gw_cli_print_config_errors(&errs);
        cfg_errors_release(&errs);
        return -1;
    }
    fn_log_set_level(o->has_log_level ? o->log_level : (fn_log_level)server->log_level);
    return 0;
}

static int str_is(bfg_str s, const char *z)
{
    return s.len == strlen(z) && memcmp(s.ptr, z, s.len) == 0;
}

/* application/json or any +json type, parameters aside (the gateway's rule for decoding request bodies). */
static int is_json_type(const char *v, size_t len)
{
    const char *semi = memchr(v, ';', len);
    if (semi != NULL)
        len = (size_t)(semi - v);
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        --len;
    if (len == 16 && strncasecmp(v, "application/json", 16) == 0)
        return 1;
    return len > 5 && strncasecmp(v + len - 5, "+json", 5) == 0;
}

static int request_id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == ':';
}

static int valid_request_id(const char *s, size_t len)
{
    int ok = len > 0 && len <= REQUEST_ID_MAX;
    for (size_t i = 0; ok && i < len; ++i)
        ok = request_id_char((unsigned char)s[i]);
    return ok;
}

static int token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* ---- invoke: the event ---- */

typedef struct cli_event {
    bfg_event ev;
    json_t *json; /* the decoded body the function gets, or NULL */
    char *body;   /* the body text when the event gave "json" */
    bfg_pair *params, *query, *headers;
    char **owned; /* lower-cased header names */
    size_t nowned;
    char request_id[REQUEST_ID_MAX + 1];
} cli_event;

static void event_release(cli_event *ce)
{
    json_decref(ce->json);
    free(ce->body);
    free(ce->params);
    free(ce->query);
    free(ce->headers);
    for (size_t i = 0; i < ce->nowned; ++i)
        free(ce->owned[i]);
    free(ce->owned);
    memset(ce, 0, sizeof(*ce));
}

static const char *const event_keys[] = {
    "method", "path", "route", "frontend", "pathParameters", "query", "headers", "body", "json", "requestId", NULL};

static bfg_str jstr(json_t *s)
{
    return (bfg_str){json_string_value(s), json_string_length(s)};
}

/* Values of query and headers: a string or a list of strings. Returns how many, or -1. */
static long count_values(json_t *v)
{
    if (json_is_string(v))
        return 1;
    if (!json_is_array(v))
        return -1;
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item))
            return -1;
    }
    return (long)json_array_size(v);
}

static int event_string(json_t *root, const char *key, const char *name, bfg_str *out, char *err, size_t cap)
{
    json_t *v = json_object_get(root, key);
    if (v == NULL)
        return 0;
    if (!json_is_string(v)) {
        snprintf(err, cap, "%s: %s: must be a string", name, key);
        return -1;
    }
    *out = jstr(v);
    return 0;
}

/* Fills *pairs with the members of an object whose values are strings (or lists, when `lists`). */
static int event_pairs(json_t *root, const char *key, const char *name, int lists, bfg_pair **pairs, size_t *n,
                       size_t extra, char *err, size_t cap)
{
    json_t *obj = json_object_get(root, key), *v;
    const char *k;
    size_t count = 0;
    if (obj != NULL && !json_is_object(obj)) {
        snprintf(err, cap, "%s: %s: must be an object", name, key);
        return -1;
    }
    json_object_foreach(obj, k, v)
    {
        long c = lists ? count_values(v) : json_is_string(v) ? 1 : -1;
        if (c < 0) {
            snprintf(err, cap, "%s: %s.%s: must be a string%s", name, key, k, lists ? " or a list of strings" : "");
            return -1;
        }
        count += (size_t)c;
    }
    *pairs = calloc(count + extra + 1, sizeof(**pairs));
    if (*pairs == NULL) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    *n = 0;
    json_object_foreach(obj, k, v)
    {
        bfg_str name_str = {k, strlen(k)};
        if (json_is_string(v)) {
            (*pairs)[(*n)++] = (bfg_pair){name_str, jstr(v)};
        } else {
            size_t i;
            json_t *item;
            json_array_foreach(v, i, item)
            {
                (*pairs)[(*n)++] = (bfg_pair){name_str, jstr(item)};
            }
        }
    }
    return 0;
}

/* Header names lower-case (as h2o gives them), checked like a client's request would be. */
static int event_headers(cli_event *ce, json_t *root, const char *name, char *err, size_t cap)
{
    size_t n = 0;
    if (event_pairs(root, "headers", name, 1, &ce->headers, &n, 1, err, cap) != 0)
        return -1;
    ce->owned = calloc(n + 1, sizeof(*ce->owned));
    if (ce->owned == NULL) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; ++i) {
        bfg_pair *h = &ce->headers[i];
        int ok = h->name.len > 0;
        for (size_t k = 0; ok && k < h->name.len; ++k)
            ok = token_char((unsigned char)h->name.ptr[k]);
        if (!ok) {
            snprintf(err, cap, "%s: headers: \"%s\" is not a valid header name", name, h->name.ptr);
            return -1;
        }
        for (size_t k = 0; k < h->value.len; ++k) {
            char c = h->value.ptr[k];
            if (c == '\r' || c == '\n' || c == '\0') {
                snprintf(err, cap, "%s: headers.%s: a header value may not hold CR, LF or NUL", name, h->name.ptr);
                return -1;
            }
        }
        char *lower = strndup(h->name.ptr, h->name.len);
        if (lower == NULL) {
            snprintf(err, cap, "out of memory");
            return -1;
        }
        for (char *p = lower; *p != '\0'; ++p)
            *p = (char)((*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p);
        ce->owned[ce->nowned++] = lower;
        h->name.ptr = lower;
    }
    ce->ev.headers = ce->headers;
    ce->ev.nheaders = n;
    return 0;
}

static const bfg_pair *find_header(const cli_event *ce, const char *name)
{
    for (size_t i = 0; i < ce->ev.nheaders; ++i) {
        if (str_is(ce->headers[i].name, name))
            return &ce->headers[i];
    }
    return NULL;
}

static void random_request_id(char out[33])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t r[2] = {0, 0};
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        r[0] = fn_now_ns() ^ 0x9e3779b97f4a7c15ULL;
        r[1] = (uint64_t)(uintptr_t)out;
    }
    for (int k = 0; k < 32; ++k)
        out[k] = hex[(r[k / 16] >> ((k % 16) * 4)) & 0xf];
    out[32] = '\0';
}

/*
 * Builds the event the gateway would build for the request the JSON describes. `name` names the event's
 * source in messages. Returns 0, or -1 with err set (the event's own mistakes: unknown keys, wrong types).
 */
static int event_build(json_t *root, const char *name, cli_event *ce, char *err, size_t cap)
{
    memset(ce, 0, sizeof(*ce));
    ce->ev.abi_version = BFG_ABI_VERSION;
    ce->ev.method = (bfg_str){"GET", 3};
    ce->ev.path = (bfg_str){"/", 1};
    ce->ev.route = ce->ev.frontend = ce->ev.body = (bfg_str){"", 0};
    if (!json_is_object(root)) {
        snprintf(err, cap, "%s: the event must be a JSON object", name);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        int known = 0;
        for (size_t i = 0; event_keys[i] != NULL && !known; ++i)
            known = strcmp(key, event_keys[i]) == 0;
        if (!known) {
            int n = snprintf(err, cap, "%s: unknown key \"%s\" (known:", name, key);
            for (size_t i = 0; event_keys[i] != NULL && n > 0 && (size_t)n < cap; ++i)
                n += snprintf(err + n, cap - (size_t)n, "%s %s", i == 0 ? "" : ",", event_keys[i]);
            if (n > 0 && (size_t)n < cap)
                snprintf(err + n, cap - (size_t)n, ")");
            return -1;
        }
    }
    bfg_str request_id = {NULL, 0};
    if (event_string(root, "method", name, &ce->ev.method, err, cap) != 0 ||
        event_string(root, "path", name, &ce->ev.path, err, cap) != 0 ||
        event_string(root, "route", name, &ce->ev.route, err, cap) != 0 ||
        event_string(root, "frontend", name, &ce->ev.frontend, err, cap) != 0 ||
        event_string(root, "body", name, &ce->ev.body, err, cap) != 0 ||
        event_string(root, "requestId", name, &request_id, err, cap) != 0)
        return -1;
    if (bff_method_from_name(ce->ev.method.ptr, ce->ev.method.len) == 0) {
        snprintf(err, cap,
                 "%s: method: \"%.*s\" is not a method the gateway routes (GET, HEAD, POST, PUT, PATCH, "
                 "DELETE, OPTIONS)",
                 name, (int)ce->ev.method.len, ce->ev.method.ptr);
        return -1;
    }
    if (ce->ev.path.len == 0 || ce->ev.path.ptr[0] != '/') {
        snprintf(err, cap, "%s: path: must start with '/'", name);
        return -1;
    }
    if (memchr(ce->ev.path.ptr, '?', ce->ev.path.len) != NULL) {
        snprintf(err, cap, "%s: path: holds a query string: give the parameters in \"query\"", name);
        return -1;
    }
    if (request_id.ptr != NULL && !valid_request_id(request_id.ptr, request_id.len)) {
        snprintf(err, cap, "%s: requestId: must be 1..%d of [A-Za-z0-9._:-]", name, REQUEST_ID_MAX);
        return -1;
    }
    json_t *body_json = json_object_get(root, "json");
    if (body_json != NULL && json_object_get(root, "body") != NULL) {
        snprintf(err, cap, "%s: give either \"body\" or \"json\", not both", name);
        return -1;
    }
    if (event_pairs(root, "pathParameters", name, 0, &ce->params, &ce->ev.nparams, 0, err, cap) != 0 ||
        event_pairs(root, "query", name, 1, &ce->query, &ce->ev.nquery, 0, err, cap) != 0 ||
        event_headers(ce, root, name, err, cap) != 0)
        return -1;
    ce->ev.params = ce->params;
    ce->ev.query = ce->query;

    if (body_json != NULL) {
        ce->body = json_dumps(body_json, JSON_COMPACT | JSON_ENCODE_ANY);
        if (ce->body == NULL) {
            snprintf(err, cap, "out of memory");
            return -1;
        }
        ce->ev.body = (bfg_str){ce->body, strlen(ce->body)};
        if (find_header(ce, "content-type") == NULL)
            ce->headers[ce->ev.nheaders++] =
                (bfg_pair){{"content-type", 12}, {"application/json", 16}}; /* room was kept for it */
    }

    /* The request id: the event's, else a well-formed X-Request-Id, else random (as the gateway does). */
    const bfg_pair *xid = find_header(ce, "x-request-id");
    if (request_id.ptr != NULL)
        memcpy(ce->request_id, request_id.ptr, request_id.len);
    else if (xid != NULL && valid_request_id(xid->value.ptr, xid->value.len))
        memcpy(ce->request_id, xid->value.ptr, xid->value.len);
    else
        random_request_id(ce->request_id);
    ce->ev.request_id = (bfg_str){ce->request_id, strlen(ce->request_id)};

    /* The body is decoded for the function exactly when the gateway would decode it. */
    const bfg_pair *ct = find_header(ce, "content-type");
    if (ce->ev.body.len > 0 && ct != NULL && is_json_type(ct->value.ptr, ct->value.len)) {
        json_error_t jerr;
        ce->json = json_loadb(ce->ev.body.ptr, ce->ev.body.len, JSON_DECODE_ANY, &jerr);
        if (ce->json == NULL) {
            snprintf(err, cap, "%s: body: invalid JSON body: line %d, column %d: %s (the gateway answers 400)", name,
                     jerr.line, jerr.column, jerr.text);
            return -1;
        }
    }
    return 0;
}

/* ---- invoke: the answer ---- */

/* A header repeated by the function becomes a list of its values. */
static int add_header(json_t *headers, const char *name, size_t name_len, const char *value, size_t value_len)
{
    char key[256];
    if (name_len >= sizeof(key))
        name_len = sizeof(key) - 1;
    memcpy(key, name, name_len);
    key[name_len] = '\0';
    json_t *v = json_stringn(value, value_len);
    if (v == NULL) { /* not UTF-8 (h2o sends the bytes as they are): shown with '?' for each byte >= 0x80 */
        char *ascii = strndup(value, value_len);
        for (size_t i = 0; ascii != NULL && i < value_len; ++i)
            ascii[i] = (unsigned char)ascii[i] >= 0x80 ? '?' : ascii[i];
        v = ascii != NULL ? json_stringn(ascii, value_len) : NULL;
        free(ascii);
    }
    json_t *old = json_object_get(headers, key);
    if (old == NULL)
        return json_object_set_new(headers, key, v);
    if (json_is_array(old))
        return json_array_append_new(old, v);
    json_t *list = json_array();
    json_array_append(list, old);
    json_array_append_new(list, v);
    return json_object_set_new(headers, key, list);
}

static void base64(const unsigned char *in, size_t len, fn_buf *out)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < len; i += 3) {
        uint32_t n =
            (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
        char quad[4] = {alphabet[n >> 18 & 63], alphabet[n >> 12 & 63], i + 1 < len ? alphabet[n >> 6 & 63] : '=',
                        i + 2 < len ? alphabet[n & 63] : '='};
        fn_buf_append(out, quad, 4);
    }
}

/* The gateway's JSON error body, byte for byte (see gw_send_error). */
static int error_body(fn_buf *body, const char *message, const char *limit, const char *id)
{
    int failed =
        fn_buf_append_str(body, "{\"error\":") != 0 || fn_buf_append_json_string(body, message, strlen(message)) != 0;
    if (limit != NULL)
        failed |=
            fn_buf_append_str(body, ",\"limit\":") != 0 || fn_buf_append_json_string(body, limit, strlen(limit)) != 0;
    failed |= fn_buf_append_str(body, ",\"requestId\":") != 0 || fn_buf_append_json_string(body, id, strlen(id)) != 0 ||
              fn_buf_append_char(body, '}') != 0;
    return failed ? -ENOMEM : 0;
}

/* {"statusCode", "headers", "body", "json"}: what the gateway sends for invocation result rc. */
static json_t *answer_json(const cli_event *ce, const fn_response *res, int rc)
{
    json_t *out = json_object(), *headers = json_object();
    fn_buf error = FN_BUF_INIT;
    const char *body = "";
    size_t body_len = 0;
    int status;
    add_header(headers, "x-request-id", 12, ce->request_id, strlen(ce->request_id));
    if (rc == 0) {
        status = res->status;
        for (size_t i = 0; i < res->nheaders; ++i) {
            const fn_header *h = &res->headers[i];
            if (!gw_is_hop_by_hop(h->name, h->name_len))
                add_header(headers, h->name, h->name_len, h->value, h->value_len);
        }
        if (status >= 200 && status != 204 && status != 304) {
            body = res->body.data != NULL ? res->body.data : "";
            body_len = res->body.len;
        }
    } else {
        const char *message = "the function failed", *limit = NULL;
        status = 500;
        if (rc == -ETIMEDOUT) {
            status = 504;
            message = "the route did not finish before its timeout";
            limit = "timeout_ms";
        } else if (rc == -ENOMEM) {
            message = "the function exceeded its memory limit";
            limit = "memory_mb";
        }
        add_header(headers, "content-type", 12, "application/json", 16);
        if (error_body(&error, message, limit, ce->request_id) != 0) {
            fn_buf_release(&error);
            json_decref(out);
            json_decref(headers);
            return NULL;
        }
        body = error.data;
        body_len = error.len;
    }
    if (str_is(ce->ev.method, "HEAD"))
        body_len = 0; /* h2o sends no body to HEAD */

    json_object_set_new(out, "statusCode", json_integer(status));
    json_object_set_new(out, "headers", headers);
    json_t *text = json_stringn(body, body_len);
    if (text != NULL) {
        json_object_set_new(out, "body", text);
    } else { /* not UTF-8: base64, as Lambda does */
        fn_buf b64 = FN_BUF_INIT;
        base64((const unsigned char *)body, body_len, &b64);
        json_object_set_new(out, "body", json_stringn(b64.data != NULL ? b64.data : "", b64.len));
        json_object_set_new(out, "isBase64Encoded", json_true());
        fn_buf_release(&b64);
    }
    json_t *ct = json_object_get(headers, "content-type");
    if (json_is_array(ct))
        ct = json_array_get(ct, 0);
    if (body_len > 0 && ct != NULL && is_json_type(json_string_value(ct), json_string_length(ct))) {
        json_t *parsed = json_loadb(body, body_len, JSON_DECODE_ANY, NULL);
        if (parsed != NULL)
            json_object_set_new(out, "json", parsed);
    }
    fn_buf_release(&error);
    return out;
}

/* ---- invoke ---- */

static fn_function *find_function(const bff_snapshot *snap, const char *name)
{
    for (size_t i = 0; i < snap->nfunctions; ++i) {
        if (strcmp(snap->functions[i].name, name) == 0)
            return snap->functions[i].fn;
    }
    return NULL;
}

static const bff_frontend *find_frontend(const bff_snapshot *snap, const char *name, size_t len)
{
    for (size_t i = 0; i < snap->nfrontends; ++i) {
        if (strlen(snap->frontends[i].name) == len && memcmp(snap->frontends[i].name, name, len) == 0)
            return &snap->frontends[i];
    }
    return NULL;
}

/* The route the event names (frontend + pattern), preferring one with the event's method; or NULL. */
static const bff_route *find_route(const bff_snapshot *snap, const bfg_event *ev)
{
    const bff_frontend *fe = find_frontend(snap, ev->frontend.ptr, ev->frontend.len);
    if (fe == NULL || ev->route.len == 0)
        return NULL;
    unsigned method = bff_method_from_name(ev->method.ptr, ev->method.len);
    const bff_route *any = NULL;
    for (size_t i = 0; i < fe->nroutes; ++i) {
        const bff_route *r = &fe->routes[i];
        if (!str_is(ev->route, r->pattern))
            continue;
        if ((r->methods & method) != 0)
            return r;
        if (any == NULL || (method == BFF_METHOD_HEAD && (r->methods & BFF_METHOD_GET) != 0))
            any = r;
    }
    return any;
}

/* Whether a C function is declared "inline" (the runtime keeps it private): a pooled call is cut off by the
 * gateway's deadline, an inline one is not. */
static int declared_inline(const char *config, const char *name)
{
    json_t *root = json_load_file(config, 0, NULL);
    int on = json_is_true(json_object_get(json_object_get(json_object_get(root, "functions"), name), "inline"));
    json_decref(root);
    return on;
}

static void list_functions(const bff_snapshot *snap)
{
    fprintf(stderr, "  functions:");
    for (size_t i = 0; i < snap->nfunctions; ++i)
        fprintf(stderr, "%s %s", i == 0 ? "" : ",", snap->functions[i].name);
    fprintf(stderr, "\n");
}

static json_t *read_event(const char *source, char *err, size_t cap)
{
    json_error_t jerr;
    json_t *root = strcmp(source, "-") == 0 ? json_loadf(stdin, JSON_DECODE_ANY, &jerr)
                                            : json_load_file(source, JSON_DECODE_ANY, &jerr);
    if (root == NULL)
        snprintf(err, cap, "%s:%d:%d: %s", strcmp(source, "-") == 0 ? "(stdin)" : source, jerr.line, jerr.column,
                 jerr.text);
    return root;
}

static int run_invoke(const cli_options *o)
{
    if (o->nargs < 2 || o->nargs > 3) {
        command_usage("invoke", stderr);
        return 2;
    }
    const char *config = o->args[0], *name = o->args[1], *source = o->nargs == 3 ? o->args[2] : NULL;
    const char *source_name = source == NULL ? "(empty event)" : strcmp(source, "-") == 0 ? "(stdin)" : source;
    char err[1024];
    json_t *root = source != NULL ? read_event(source, err, sizeof(err)) : json_object();
    if (root == NULL) {
        fprintf(stderr, "bffgate invoke: %s\n", err);
        return 1;
    }
    cli_event ce;
    if (event_build(root, source_name, &ce, err, sizeof(err)) != 0) {
        fprintf(stderr, "bffgate invoke: %s\n", err);
        event_release(&ce);
        json_decref(root);
        return 1;
    }

    int status = 1;
    gw_server_config server = {0};
    bff_snapshot *snap = NULL;
    fn_response res;
    fn_response_init(&res);
    json_t *answer = NULL;
    if (load_config(config, o, &server, &snap) != 0)
        goto Done;
    fn_function *fn = find_function(snap, name);
    if (fn == NULL) {
        fprintf(stderr, "bffgate invoke: no function \"%s\" in %s\n", name, config);
        list_functions(snap);
        goto Done;
    }
    const bff_route *route = find_route(snap, &ce.ev);
    bff_limits limits = route != NULL ? route->limits : snap->defaults;
    if (route != NULL && (route->fn == NULL || strcmp(route->fn->name, fn->name) != 0))
        fprintf(stderr, "bffgate invoke: note: route %s of frontend %.*s runs %s; using its limits for %s\n",
                route->pattern, (int)ce.ev.frontend.len, ce.ev.frontend.ptr, route->target, fn->name);
    if (o->timeout_ms != 0)
        limits.timeout_ms = o->timeout_ms;
    if (o->memory_mb != 0)
        limits.memory_mb = o->memory_mb;

    fn_call call = {.event = &ce.ev,
                    .json = ce.json,
                    .thread = 0,
                    .limits = {limits.timeout_ms, limits.memory_mb << 20},
                    .start_ns = fn_now_ns(),
                    .host = NULL,
                    .released = NULL};
    int rc = fn_invoke(fn, &call, &res);
    uint64_t elapsed_ns = fn_now_ns() - call.start_ns;
    /* Without an event loop a C function runs inline, where nothing can stop it; on the server, a pooled one
     * is cut off at the deadline and its late result dropped. */
    int late = fn->kind == FN_KIND_C && elapsed_ns > limits.timeout_ms * 1000000ULL && !declared_inline(config, name);
    if (late) {
        snprintf(res.error, sizeof(res.error),
                 "ran %.2f ms, past its %llu ms timeout: the gateway answers 504 at the deadline and drops the result",
                 (double)elapsed_ns / 1e6, (unsigned long long)limits.timeout_ms);
        rc = -ETIMEDOUT;
    }

    answer = answer_json(&ce, &res, rc);
    char *text = answer != NULL ? json_dumps(answer, JSON_INDENT(2)) : NULL;
    if (text == NULL) {
        fprintf(stderr, "bffgate invoke: out of memory\n");
        goto Done;
    }
    fputs(text, stdout);
    fputc('\n', stdout);
    free(text);
    fflush(stdout);

    static const char *const outcomes[] = {"ok", "error", "timeout", "memory_limit"};
    int outcome = rc == 0 ? 0 : rc == -ETIMEDOUT ? 2 : rc == -ENOMEM ? 3 : 1;
    if (rc != 0)
        fprintf(stderr, "bffgate invoke: %s: %s%s\n", fn->name, res.error,
                strstr(res.error, "ctx.sleep") != NULL
                    ? " -- bffgate invoke has no event loop: ctx.sleep works only on the server"
                    : "");
    fprintf(stderr, "REPORT function=%s version=%s duration=%.2fms peakMemory=%zuB start=%s outcome=%s\n", fn->name,
            fn->version, (double)res.report.duration_ns / 1e6, res.report.peak_bytes, res.report.cold ? "cold" : "warm",
            outcomes[outcome]);
    status = 0;
Done:
    bff_snapshot_release(&snap);
    gw_server_config_release(&server);
    json_decref(answer);
    fn_response_release(&res);
    event_release(&ce);
    json_decref(root);
    return status;
}

/* ---- routes ---- */

enum {
    COL_METHODS,
    COL_PATH,
    COL_FUNCTION,
    COL_TIMEOUT,
    COL_CONCURRENCY,
    COL_QUEUE,
    COL_WAIT,
    COL_MEMORY,
    COL_RATE,
    NCOLS
};

static const char *const col_titles[NCOLS] = {"METHODS", "PATH",       "FUNCTION", "TIMEOUT",   "CONCURRENCY",
                                              "QUEUE",   "QUEUE_WAIT", "MEMORY",   "RATE_LIMIT"};

typedef struct route_row {
    char methods[64], timeout[24], concurrency[24], queue[24], wait[24], memory[24], rate[64];
    const char *cols[NCOLS];
} route_row;

static void route_row_format(const bff_route *r, route_row *row)
{
    size_t n = bff_method_list(r->methods, row->methods, sizeof(row->methods)), k = 0;
    for (size_t i = 0; i < n; ++i) /* "GET, HEAD" -> "GET,HEAD": one word per column */
        if (row->methods[i] != ' ')
            row->methods[k++] = row->methods[i];
    row->methods[k] = '\0';
    const bff_limits *l = &r->limits;
    snprintf(row->timeout, sizeof(row->timeout), "%llums", (unsigned long long)l->timeout_ms);
    snprintf(row->concurrency, sizeof(row->concurrency), "%llu", (unsigned long long)l->concurrency);
    snprintf(row->queue, sizeof(row->queue), "%llu", (unsigned long long)l->queue_max);
    snprintf(row->wait, sizeof(row->wait), "%llums", (unsigned long long)l->queue_wait_ms);
    snprintf(row->memory, sizeof(row->memory), "%lluMB", (unsigned long long)l->memory_mb);
    if (l->rate_rps > 0)
        snprintf(row->rate, sizeof(row->rate), "%.0frps/burst%.0f", l->rate_rps, l->rate_burst);
    else
        snprintf(row->rate, sizeof(row->rate), "-");
    const char *cols[NCOLS] = {row->methods, r->pattern, r->target,   row->timeout, row->concurrency,
                               row->queue,   row->wait,  row->memory, row->rate};
    memcpy(row->cols, cols, sizeof(cols));
}

static void print_row(const char *const *cols, const size_t *width)
{
    fputs("  ", stdout);
    for (int c = 0; c < NCOLS; ++c) {
        if (c == NCOLS - 1)
            printf("%s\n", cols[c]);
        else
            printf("%-*s  ", (int)width[c], cols[c]);
    }
}

static void print_match(const bff_frontend *fe)
{
    int any = 0;
    if (fe->path_prefix_len > 0)
        printf("%spath_prefix %s", any++ ? ", " : "", fe->path_prefix);
    if (fe->host != NULL)
        printf("%shost %s", any++ ? ", " : "", fe->host);
    if (fe->header_name != NULL)
        printf("%sheader %s: %s", any++ ? ", " : "", fe->header_name, fe->header_value);
    if (!any)
        printf("every request");
}

static int run_routes(const cli_options *o)
{
    if (o->nargs != 1) {
        command_usage("routes", stderr);
        return 2;
    }
    gw_server_config server;
    bff_snapshot *snap = NULL;
    if (load_config(o->args[0], o, &server, &snap) != 0)
        return 1;
    size_t width[NCOLS], nroutes = 0;
    for (int c = 0; c < NCOLS; ++c)
        width[c] = strlen(col_titles[c]);
    for (size_t f = 0; f < snap->nfrontends; ++f) {
        for (size_t i = 0; i < snap->frontends[f].nroutes; ++i) {
            route_row row;
            route_row_format(&snap->frontends[f].routes[i], &row);
            for (int c = 0; c < NCOLS; ++c)
                if (strlen(row.cols[c]) > width[c])
                    width[c] = strlen(row.cols[c]);
            ++nroutes;
        }
    }
    for (size_t f = 0; f < snap->nfrontends; ++f) {
        const bff_frontend *fe = &snap->frontends[f];
        printf("%sfrontend %s (", f == 0 ? "" : "\n", fe->name);
        print_match(fe);
        printf(")\n");
        print_row(col_titles, width);
        for (size_t i = 0; i < fe->nroutes; ++i) {
            route_row row;
            route_row_format(&fe->routes[i], &row);
            print_row(row.cols, width);
        }
    }
    printf("\n%zu frontend%s, %zu route%s, %zu function%s\n", snap->nfrontends, snap->nfrontends == 1 ? "" : "s",
           nroutes, nroutes == 1 ? "" : "s", snap->nfunctions, snap->nfunctions == 1 ? "" : "s");
    bff_snapshot_release(&snap);
    gw_server_config_release(&server);
    return 0;
}

/* ---- openapi ---- */

static json_t *error_response(const char *description, int retry_after)
{
    json_t *r = json_pack("{s:s, s:{s:{s:{s:s}}}}", "description", description, "content", "application/json", "schema",
                          "$ref", "#/components/schemas/Error");
    if (retry_after)
        json_object_set_new(r, "headers",
                            json_pack("{s:{s:s, s:{s:s}}}", "Retry-After", "description",
                                      "seconds to wait before trying again", "schema", "type", "integer"));
    return r;
}

static json_t *operation_responses(void)
{
    json_t *responses = json_object();
    json_object_set_new(responses, "200",
                        json_pack("{s:s, s:{s:{s:{}}}}", "description",
                                  "the function's answer (a function may choose another status)", "content",
                                  "application/json", "schema"));
    json_object_set_new(responses, "429",
                        error_response("the route is at its concurrency limit (limit \"concurrency\") or the client "
                                       "is over its rate limit (limit \"rate_limit\")",
                                       1));
    json_object_set_new(responses, "500",
                        error_response("the function failed, or exceeded its memory limit (limit \"memory_mb\")", 0));
    json_object_set_new(responses, "504",
                        error_response("the route did not finish before its timeout (limit \"timeout_ms\")", 0));
    return responses;
}

static json_t *error_schema(void)
{
    return json_pack("{s:s, s:[s, s], s:{s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:[s, s, s, s], s:s}}}", "type", "object",
                     "required", "error", "requestId", "properties", "error", "type", "string", "description",
                     "what went wrong", "requestId", "type", "string", "description",
                     "the request id (also in the X-Request-Id response header)", "limit", "type", "string", "enum",
                     "timeout_ms", "concurrency", "rate_limit", "memory_mb", "description",
                     "the limit that refused or stopped the request");
}

/* The OpenAPI path template of a route pattern ({name*} -> {name}) and its path parameters. */
static int route_template(const char *pattern, char *path, size_t cap, json_t *params)
{
    size_t n = 0;
    for (const char *p = pattern; *p != '\0'; ++p) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (close == NULL)
                return -1;
            int wildcard = close > p + 1 && close[-1] == '*';
            size_t name_len = (size_t)(close - p - 1) - (size_t)wildcard;
            if (n + name_len + 3 > cap)
                return -1;
            path[n++] = '{';
            memcpy(path + n, p + 1, name_len);
            n += name_len;
            path[n++] = '}';
            json_t *param = json_pack("{s:s%, s:s, s:b, s:{s:s}}", "name", p + 1, name_len, "in", "path", "required", 1,
                                      "schema", "type", "string");
            if (wildcard) {
                char text[300];
                snprintf(text, sizeof(text),
                         "the rest of the path (route pattern {%.*s*}): spans any number of segments, slashes "
                         "included, and may be empty",
                         (int)name_len, p + 1);
                json_object_set_new(param, "description", json_string(text));
            }
            json_array_append_new(params, param);
            p = close;
        } else {
            if (n + 2 > cap)
                return -1;
            path[n++] = *p;
        }
    }
    path[n] = '\0';
    return 0;
}

static json_t *limits_json(const bff_limits *l)
{
    json_t *limits = json_pack("{s:I, s:I, s:I, s:I, s:I}", "timeout_ms", (json_int_t)l->timeout_ms, "concurrency",
                               (json_int_t)l->concurrency, "queue_max", (json_int_t)l->queue_max, "queue_wait_ms",
                               (json_int_t)l->queue_wait_ms, "memory_mb", (json_int_t)l->memory_mb);
    if (l->rate_rps > 0)
        json_object_set_new(limits, "rate_limit", json_pack("{s:f, s:f}", "rps", l->rate_rps, "burst", l->rate_burst));
    return limits;
}

static json_t *openapi_document(const bff_snapshot *snap, const bff_frontend *fe, const char *config)
{
    char title[256], version[32], description[1024];
    snprintf(title, sizeof(title), "bffgate %s", fe->name);
    /* The config has no version of its own: the snapshot's, 1 in a one-shot process. */
    snprintf(version, sizeof(version), "%llu", (unsigned long long)snap->version);
    snprintf(description, sizeof(description),
             "The routes of the frontend \"%s\" in %s. Every answer carries an X-Request-Id header; the gateway's "
             "own errors have the Error schema.",
             fe->name, config);
    json_t *doc = json_pack("{s:s, s:{s:s, s:s, s:s}, s:[{s:s, s:s}]}", "openapi", "3.1.0", "info", "title", title,
                            "version", version, "description", description, "servers", "url",
                            fe->path_prefix_len > 0 ? fe->path_prefix : "/", "description", fe->name);
    json_t *paths = json_object(), *counters = json_object();
    for (size_t i = 0; i < fe->nroutes; ++i) {
        const bff_route *r = &fe->routes[i];
        char path[1024];
        json_t *params = json_array();
        if (route_template(r->pattern, path, sizeof(path), params) != 0) {
            fprintf(stderr, "bffgate openapi: route %s: pattern too long, left out\n", r->pattern);
            json_decref(params);
            continue;
        }
        json_t *item = json_object_get(paths, path);
        if (item == NULL) {
            item = json_object();
            json_object_set_new(paths, path, item);
        }
        for (unsigned bit = 1; bit < (1u << BFF_METHOD_COUNT); bit <<= 1) {
            if ((r->methods & bit) == 0)
                continue;
            const char *method = bff_method_name(bit);
            char lower[16], key[512], id[600];
            size_t k = 0;
            for (; method[k] != '\0' && k + 1 < sizeof(lower); ++k)
                lower[k] = (char)(method[k] - 'A' + 'a');
            lower[k] = '\0';
            if (json_object_get(item, lower) != NULL) {
                fprintf(stderr, "bffgate openapi: route %s %s: %s already has this method, left out\n", method,
                        r->pattern, path);
                continue;
            }
            const char *runs = r->fn != NULL ? r->fn->name : "compose";
            snprintf(key, sizeof(key), "%s_%s", method, runs);
            json_int_t n = json_integer_value(json_object_get(counters, key)) + 1;
            json_object_set_new(counters, key, json_integer(n));
            snprintf(id, sizeof(id), "%s_%lld", key, (long long)n);
            char summary[600];
            if (r->fn != NULL)
                snprintf(summary, sizeof(summary), "calls the function %s", r->fn->name);
            else
                snprintf(summary, sizeof(summary), "composes %s", r->plan->summary);
            json_t *op =
                json_pack("{s:s, s:s, s:s, s:o}", "operationId", id, "summary", summary,
                          r->fn != NULL ? "x-bffgate-function" : "x-bffgate-steps",
                          r->fn != NULL ? r->fn->name : r->plan->summary, "x-bffgate-limits", limits_json(&r->limits));
            if (json_array_size(params) > 0)
                json_object_set(op, "parameters", params);
            if (bit == BFF_METHOD_POST || bit == BFF_METHOD_PUT || bit == BFF_METHOD_PATCH)
                json_object_set_new(
                    op, "requestBody",
                    json_pack("{s:b, s:{s:{s:{}}}}", "required", 0, "content", "application/json", "schema"));
            json_object_set_new(op, "responses", operation_responses());
            json_object_set_new(item, lower, op);
        }
        json_decref(params);
    }
    json_decref(counters);
    json_object_set_new(doc, "paths", paths);
    json_object_set_new(doc, "components", json_pack("{s:{s:o}}", "schemas", "Error", error_schema()));
    return doc;
}

static int run_openapi(const cli_options *o)
{
    if (o->nargs != 2) {
        command_usage("openapi", stderr);
        return 2;
    }
    const char *config = o->args[0], *name = o->args[1];
    gw_server_config server;
    bff_snapshot *snap = NULL;
    if (load_config(config, o, &server, &snap) != 0)
        return 1;
    int status = 1;
    const bff_frontend *fe = find_frontend(snap, name, strlen(name));
    if (fe == NULL) {
        fprintf(stderr, "bffgate openapi: no frontend \"%s\" in %s; frontends:", name, config);
        for (size_t i = 0; i < snap->nfrontends; ++i)
            fprintf(stderr, "%s %s", i == 0 ? "" : ",", snap->frontends[i].name);
        fprintf(stderr, "\n");
    } else {
        json_t *doc = openapi_document(snap, fe, config);
        if (doc != NULL && json_dumpf(doc, stdout, JSON_INDENT(2)) == 0 && fputc('\n', stdout) != EOF &&
            fflush(stdout) == 0)
            status = 0;
        else
            fprintf(stderr, "bffgate openapi: cannot write the document\n");
        json_decref(doc);
    }
    bff_snapshot_release(&snap);
    gw_server_config_release(&server);
    return status;
}

int gw_cli_run(int argc, char **argv)
{
    cli_options o;
    int rc = parse_options(argc, argv, &o);
    if (rc == 0) {
        if (strcmp(o.command, "invoke") == 0)
            rc = run_invoke(&o);
        else if (strcmp(o.command, "routes") == 0)
            rc = run_routes(&o);
        else
            rc = run_openapi(&o);
    } else if (rc == 3) {
        rc = 0;
    }
    free(o.env_path);
    return rc;
}
