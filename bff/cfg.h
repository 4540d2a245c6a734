/* cfg: shared pieces of config loading: JSON files, JSON paths, typed fields and the error list. */
#ifndef BFF_CFG_H
#define BFF_CFG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Config loading never stops at the first problem: every error found is appended to a
 * cfg_errors list as "FILE: JSON.PATH: reason" (or "FILE:LINE:COL: reason" for JSON syntax),
 * and the caller prints them all. Unknown keys are errors.
 *
 * JSON paths are written the way a reader finds them: `routes[3].function`, `server.listen[0].port`;
 * the root of a file is the empty path and is printed as the file name alone.
 *
 * Nothing here touches live state; every function runs on the loading thread.
 */

typedef struct cfg_errors {
    char **items;
    size_t count;
    size_t cap;
} cfg_errors;

void cfg_errors_release(cfg_errors *errs);
/* Appends "file: path: reason". `path` may be "" (root). Never fails visibly: on ENOMEM the error
 * is counted but its text lost. */
void cfg_error(cfg_errors *errs, const char *file, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Joins a path and a key ("routes[3]" + "function" -> "routes[3].function") or an index. */
void cfg_path_key(char *out, size_t cap, const char *path, const char *key);
void cfg_path_index(char *out, size_t cap, const char *path, size_t index);

/* Loads a JSON file whose root must be an object. Returns the object (caller decrefs), or NULL with
 * an error appended (unreadable file, syntax error with line and column, root not an object). */
json_t *cfg_load_file(cfg_errors *errs, const char *file);

/* Reports every key of obj not in `allowed` (NULL-terminated). Returns the number reported. */
size_t cfg_check_keys(cfg_errors *errs, const char *file, const char *path, json_t *obj, const char *const *allowed);

/*
 * Typed getters for obj[key]. Each returns 1 when the key is present and valid (out set),
 * 0 when absent (out untouched; an error is appended when `required`), -1 when present but
 * invalid (error appended).
 */
int cfg_get_string(cfg_errors *errs, const char *file, const char *path, json_t *obj, const char *key, int required,
                   const char **out);
int cfg_get_uint(cfg_errors *errs, const char *file, const char *path, json_t *obj, const char *key, uint64_t min,
                 uint64_t max, int required, uint64_t *out);
int cfg_get_bool(cfg_errors *errs, const char *file, const char *path, json_t *obj, const char *key, int *out);
/* obj[key] must be an object (1), absent (0), or it is an error (-1). */
int cfg_get_object(cfg_errors *errs, const char *file, const char *path, json_t *obj, const char *key, int required,
                   json_t **out);

/* Resolves `rel` against the directory of `base_file` ("config/gateway.json" + "functions/a.lua" ->
 * "config/functions/a.lua"); absolute paths are returned as they are. Returns malloc'd text or NULL. */
char *cfg_resolve_path(const char *base_file, const char *rel);

#endif
