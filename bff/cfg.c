/* cfg: error list, JSON paths and typed field access for config loading. */
#include "cfg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cfg_errors_release(cfg_errors *errs)
{
    for (size_t i = 0; i < errs->count; ++i)
        free(errs->items[i]);
    free(errs->items);
    memset(errs, 0, sizeof(*errs));
}

void cfg_error(cfg_errors *errs, const char *file, const char *path, const char *fmt, ...)
{
    char reason[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);

    char *line = NULL;
    int n = path != NULL && path[0] != '\0' ? asprintf(&line, "%s: %s: %s", file, path, reason)
                                            : asprintf(&line, "%s: %s", file, reason);
    if (n < 0)
        line = NULL;
    if (errs->count == errs->cap) {
        size_t cap = errs->cap ? errs->cap * 2 : 8;
        char **items = realloc(errs->items, cap * sizeof(*items));
        if (items == NULL) {
            free(line);
            return;
        }
        errs->items = items;
        errs->cap = cap;
    }
    errs->items[errs->count++] = line;
}

void cfg_path_key(char *out, size_t cap, const char *path, const char *key)
{
    if (path == NULL || path[0] == '\0')
        snprintf(out, cap, "%s", key);
    else
        snprintf(out, cap, "%s.%s", path, key);
}

void cfg_path_index(char *out, size_t cap, const char *path, size_t index)
{
    snprintf(out, cap, "%s[%zu]", path != NULL ? path : "", index);
}

json_t *cfg_load_file(cfg_errors *errs, const char *file)
{
    json_error_t jerr;
    json_t *root = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (jerr.line > 0)
            cfg_error(errs, file, NULL, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        else
            cfg_error(errs, file, NULL, "%s", jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        cfg_error(errs, file, NULL, "the top level must be a JSON object");
        json_decref(root);
        return NULL;
    }
    return root;
}

size_t cfg_check_keys(cfg_errors *errs, const char *file, const char *path, json_t *obj, const char *const *allowed)
{
    size_t bad = 0;
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        int known = 0;
        for (size_t i = 0; allowed[i] != NULL && !known; ++i)
            known = strcmp(allowed[i], key) == 0;
        if (!known) {
            char p[512];
            cfg_path_key(p, sizeof(p), path, key);
            cfg_error(errs, file, p, "unknown key \"%s\"", key);
            ++bad;
        }
    }
    return bad;
}

static json_t *field(cfg_errors *errs, const char *file, const char *path, json_t *obj, const char *key, int required)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL && required) {
        char p[512];
        cfg_path_key(p, sizeof(p), path, key);
        cfg_error(errs, file, p, "missing required key");
    }
    return v;
}

int cfg_get_string(cfg_errors *errs, const char *file, const char *path, json_t *obj, const char *key, int required,
                   const char **out)
{
    json_t *v = field(errs, file, path, obj, key, required);
    if (v == NULL)
        return 0;
    char p[512];
    cfg_path_key(p, sizeof(p), path, key);
    if (!json_is_string(v)) {
        cfg_error(errs, file, p, "must be a string");
        return -1;
    }
    if (json_string_length(v) == 0) {
        cfg_error(errs, file, p, "must not be empty");
        return -1;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        cfg_error(errs, file, p, "must not contain NUL");
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

int cfg_get_uint(cfg_errors *errs, const char *file, const char *path, json_t *obj, const char *key, uint64_t min,
                 uint64_t max, int required, uint64_t *out)
{
    json_t *v = field(errs, file, path, obj, key, required);
    if (v == NULL)
        return 0;
    char p[512];
    cfg_path_key(p, sizeof(p), path, key);
    if (!json_is_integer(v)) {
        cfg_error(errs, file, p, "must be an integer");
        return -1;
    }
    json_int_t i = json_integer_value(v);
    if (i < 0 || (uint64_t)i < min || (uint64_t)i > max) {
        cfg_error(errs, file, p, "must be between %llu and %llu, got %lld", (unsigned long long)min,
                  (unsigned long long)max, (long long)i);
        return -1;
    }
    *out = (uint64_t)i;
    return 1;
}

int cfg_get_bool(cfg_errors *errs, const char *file, const char *path, json_t *obj, const char *key, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v)) {
        char p[512];
        cfg_path_key(p, sizeof(p), path, key);
        cfg_error(errs, file, p, "must be true or false");
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

int cfg_get_object(cfg_errors *errs, const char *file, const char *path, json_t *obj, const char *key, int required,
                   json_t **out)
{
    json_t *v = field(errs, file, path, obj, key, required);
    if (v == NULL)
        return 0;
    if (!json_is_object(v)) {
        char p[512];
        cfg_path_key(p, sizeof(p), path, key);
        cfg_error(errs, file, p, "must be an object");
        return -1;
    }
    *out = v;
    return 1;
}

char *cfg_resolve_path(const char *base_file, const char *rel)
{
    if (rel[0] == '/')
        return strdup(rel);
    const char *slash = strrchr(base_file, '/');
    if (slash == NULL)
        return strdup(rel);
    char *out = NULL;
    if (asprintf(&out, "%.*s/%s", (int)(slash - base_file), base_file, rel) < 0)
        return NULL;
    return out;
}
