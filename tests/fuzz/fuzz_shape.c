/* fuzz_shape: per-frontend shaping. The input's first line is a "shape" object, the rest the value it shapes;
 * a value held elsewhere too must come out of shaping unchanged. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "bff/cfg.h"
#include "bff/shape.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (nl == NULL)
        return 0;
    json_t *def = json_loadb((const char *)data, (size_t)(nl - data), 0, NULL);
    json_t *value =
        json_loadb((const char *)nl + 1, size - (size_t)(nl + 1 - data), JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (def != NULL && value != NULL) {
        cfg_errors errs = {0};
        bff_shape *shape = bff_shape_compile(def, "fuzz.json", "shape", &errs);
        if (shape != NULL) {
            char *before = json_dumps(value, JSON_ENCODE_ANY | JSON_SORT_KEYS);
            json_incref(value); /* held here too: shaping must copy, not change it */
            json_t *out = bff_shape_apply(shape, value);
            char *after = json_dumps(value, JSON_ENCODE_ANY | JSON_SORT_KEYS);
            if (before != NULL && after != NULL && strcmp(before, after) != 0)
                abort();
            free(before);
            free(after);
            json_decref(out);
            bff_shape_free(shape);
        }
        cfg_errors_release(&errs);
    }
    json_decref(def);
    json_decref(value);
    return 0;
}
