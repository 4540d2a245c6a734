/* cors: loads a frontend's CORS policy and matches request origins against it. */
#include "cors.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../functions/fn_buf.h"
#include "route_table.h"

static const char *const cors_keys[] = {"origins",   "methods", "allow_headers", "expose_headers", "credentials",
                                        "max_age_s", NULL};

static int host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* "http(s)://host[:port]" with an optional leading "*." on the host; lower-cases it in place. */
static int valid_origin(char *o)
{
    for (char *p = o; *p != '\0'; ++p)
        *p = (char)tolower((unsigned char)*p);
    char *host = strncmp(o, "http://", 7) == 0 ? o + 7 : strncmp(o, "https://", 8) == 0 ? o + 8 : NULL;
    if (host == NULL)
        return 0;
    if (strncmp(host, "*.", 2) == 0 && host[2] != '[')
        host += 2;
    char *end = host;
    if (*end == '[') { /* an IPv6 literal */
        end = strchr(end, ']');
        if (end == NULL || end == host + 1)
            return 0;
        ++end;
    } else {
        while (host_char(*end))
            ++end;
        if (end == host || *host == '.' || end[-1] == '.')
            return 0;
    }
    if (*end == ':') {
        char *digits = ++end;
        while (*end >= '0' && *end <= '9')
            ++end;
        if (end == digits || end - digits > 5)
            return 0;
        /* Browsers leave the scheme's default port out of Origin: such an entry would never match. */
        if (*end == '\0' && strcmp(digits, o[4] == 's' ? "443" : "80") == 0)
            return 0;
    }
    return *end == '\0';
}

static int pattern_matches(const char *pattern, const char *origin, size_t len)
{
    const char *star = strstr(pattern, "://*.");
    size_t scheme = (size_t)(star - pattern) + 3; /* "https://" */
    const char *suffix = star + 4;                /* ".shop.example[:port]" */
    size_t slen = strlen(suffix);
    if (len <= scheme + slen || strncasecmp(origin, pattern, scheme) != 0 ||
        strncasecmp(origin + len - slen, suffix, slen) != 0)
        return 0;
    /* What the star covers: one or more DNS labels. */
    const char *sub = origin + scheme, *sub_end = origin + len - slen;
    if (*sub == '.')
        return 0;
    for (const char *c = sub; c < sub_end; ++c) {
        if (!host_char((char)tolower((unsigned char)*c)))
            return 0;
    }
    return 1;
}

int bff_cors_origin_allowed(const bff_cors *cors, const char *origin, size_t len)
{
    if (cors->any_origin)
        return 1;
    for (size_t i = 0; i < cors->norigins; ++i) {
        const char *o = cors->origins[i];
        if (strstr(o, "://*.") != NULL ? pattern_matches(o, origin, len)
                                       : strlen(o) == len && strncasecmp(o, origin, len) == 0)
            return 1;
    }
    return 0;
}

/* A list of strings joined with ", " (NULL when absent); every item must be an HTTP token, or "*" (any
 * header; browsers honour it only on requests without credentials). */
static char *header_list(json_t *list, int wildcard_ok, const char *file, const char *path, cfg_errors *errs)
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
        int ok = name != NULL && name[0] != '\0' && (strcmp(name, "*") != 0 || wildcard_ok);
        for (const char *c = name; ok && *c != '\0' && strcmp(name, "*") != 0; ++c)
            ok = isalnum((unsigned char)*c) || *c == '-' || *c == '_';
        if (!ok) {
            char p[600];
            cfg_path_index(p, sizeof(p), path, i);
            cfg_error(errs, file, p, "must be a header name (or \"*\" without credentials)");
            continue;
        }
        if (out.len > 0)
            fn_buf_append_str(&out, ", ");
        fn_buf_append_str(&out, name);
    }
    return out.len > 0 ? fn_buf_steal(&out) : (fn_buf_release(&out), NULL);
}

static void load_origins(bff_cors *cors, json_t *origins, const char *file, cfg_errors *errs)
{
    if (!json_is_array(origins) || json_array_size(origins) == 0) {
        cfg_error(errs, file, "cors.origins",
                  origins == NULL ? "missing required key" : "must be a non-empty list of origins");
        return;
    }
    cors->origins = calloc(json_array_size(origins), sizeof(char *));
    for (size_t i = 0; cors->origins != NULL && i < json_array_size(origins); ++i) {
        const char *o = json_string_value(json_array_get(origins, i));
        if (o != NULL && strcmp(o, "*") == 0) {
            cors->any_origin = 1;
            continue;
        }
        char *copy = o != NULL ? strdup(o) : NULL;
        if (copy == NULL || !valid_origin(copy)) {
            char p[64];
            cfg_path_index(p, sizeof(p), "cors.origins", i);
            cfg_error(errs, file, p,
                      "must be \"*\", an origin such as \"https://shop.example\" or \"http://localhost:8080\" (no "
                      "path, no default port), or a pattern such as \"https://*.shop.example\"");
            free(copy);
            continue;
        }
        cors->origins[cors->norigins++] = copy;
    }
}

static void load_methods(bff_cors *cors, json_t *list, const char *file, cfg_errors *errs)
{
    if (list == NULL)
        return;
    size_t n = json_is_array(list) ? json_array_size(list) : 0;
    if (n == 0)
        cfg_error(errs, file, "cors.methods", "must be a non-empty list of method names");
    for (size_t i = 0; i < n; ++i) {
        json_t *m = json_array_get(list, i);
        unsigned bit = json_is_string(m) ? bff_method_from_name(json_string_value(m), json_string_length(m)) : 0;
        if (bit == 0) {
            char p[64];
            cfg_path_index(p, sizeof(p), "cors.methods", i);
            cfg_error(errs, file, p, "unknown method (use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS)");
        }
        cors->methods |= bit;
    }
}

bff_cors *bff_cors_load(json_t *def, const char *file, cfg_errors *errs)
{
    size_t errors_before = errs->count;
    cfg_check_keys(errs, file, "cors", def, cors_keys);
    bff_cors *cors = calloc(1, sizeof(*cors));
    if (cors == NULL) {
        cfg_error(errs, file, "cors", "out of memory");
        return NULL;
    }
    load_origins(cors, json_object_get(def, "origins"), file, errs);
    load_methods(cors, json_object_get(def, "methods"), file, errs);
    cfg_get_bool(errs, file, "cors", def, "credentials", &cors->credentials);
    cors->allow_headers =
        header_list(json_object_get(def, "allow_headers"), !cors->credentials, file, "cors.allow_headers", errs);
    cors->expose_headers =
        header_list(json_object_get(def, "expose_headers"), !cors->credentials, file, "cors.expose_headers", errs);
    uint64_t age = 600;
    cfg_get_uint(errs, file, "cors", def, "max_age_s", 0, 86400, 0, &age);
    cors->max_age_s = age;
    if (cors->credentials && cors->any_origin)
        cfg_error(errs, file, "cors",
                  "\"credentials\": true cannot be combined with the origin \"*\" (list the origins)");
    if (errs->count != errors_before) {
        bff_cors_free(cors);
        return NULL;
    }
    return cors;
}

void bff_cors_free(bff_cors *cors)
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
