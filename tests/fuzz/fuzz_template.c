/* fuzz_template: composition references. The input is a JSON value compiled as a template and evaluated, as a
 * value and as text in each encoding, against a fixed context; it is also taken whole as a JSON Pointer. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "bff/template.h"
#include "fuzz.h"

static json_t *ctx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ctx == NULL)
        ctx = json_loads("{\"request\": {\"params\": {\"id\": \"4 2/x?\"}, \"query\": {\"q\": [1, 2.5, null]},"
                         " \"headers\": {\"x-a\": \"v\\r\\nx\"}, \"body\": {\"a~b\": {\"c/d\": true}, \"\": 0},"
                         " \"claims\": {\"sub\": 7}},"
                         " \"user\": {\"items\": [{\"id\": 1}, {\"id\": 2, \"tags\": [\"a\", \"b\"]}], \"n\": 1e300}}",
                         0, NULL);
    bff_json_pointer_valid((const char *)data, size);
    bff_json_pointer(ctx, (const char *)data, size);
    json_t *def = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (def == NULL)
        return 0;
    char err[256];
    /* CR or LF in the template's own text is the config's doing (the plan loader refuses it in paths and
     * queries); only what references insert is checked below. */
    int literal_crlf = json_is_string(def) && (memchr(json_string_value(def), '\r', json_string_length(def)) != NULL ||
                                               memchr(json_string_value(def), '\n', json_string_length(def)) != NULL);
    bff_template *t = bff_template_compile(def, err, sizeof(err));
    json_decref(def);
    if (t == NULL)
        return 0;
    json_t *v = bff_template_eval(t, ctx, err, sizeof(err));
    json_decref(v);
    static const bff_template_encoding encs[] = {BFF_TEMPLATE_RAW, BFF_TEMPLATE_PATH, BFF_TEMPLATE_QUERY,
                                                 BFF_TEMPLATE_HEADER};
    for (size_t i = 0; i < 4; ++i) {
        size_t len = 0;
        char *s = bff_template_eval_string(t, ctx, encs[i], &len, err, sizeof(err));
        if (s != NULL && encs[i] == BFF_TEMPLATE_HEADER &&
            (memchr(s, '\r', len) != NULL || memchr(s, '\n', len) != NULL || memchr(s, '\0', len) != NULL))
            abort(); /* a header value never carries CR, LF or NUL */
        if (s != NULL && !literal_crlf && (encs[i] == BFF_TEMPLATE_PATH || encs[i] == BFF_TEMPLATE_QUERY) &&
            (memchr(s, '\r', len) != NULL || memchr(s, '\n', len) != NULL))
            abort(); /* inserted values are percent-encoded; literal text comes from the config */
        free(s);
    }
    bff_template_free(t);
    return 0;
}
