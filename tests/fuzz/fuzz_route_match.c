/* fuzz_route_match: route patterns and paths. Input lines: "+M<pattern>" adds a route (M: any byte, its low
 * 7 bits the methods), any other line is a path matched with GET and with the line's first byte as the method.
 * Checks what bff_route_table_match promises: parameters point into the path, a match has a pattern. */
#include <stdlib.h>
#include <string.h>

#include "bff/route_table.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    bff_route_table *table = bff_route_table_new();
    char err[256];
    size_t line_no = 0;
    for (char *line = text, *next; line != NULL && table != NULL; line = next, ++line_no) {
        char *nl = memchr(line, '\n', (size_t)(text + size - line));
        next = nl != NULL ? nl + 1 : NULL;
        size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
        if (nl != NULL)
            *nl = '\0';
        if (len >= 2 && line[0] == '+') {
            unsigned methods = (unsigned char)line[1] & ((1u << BFF_METHOD_COUNT) - 1);
            if (methods != 0)
                bff_route_table_add(table, methods, line + 2, (void *)(line_no + 1), err, sizeof(err));
            continue;
        }
        unsigned methods[2] = {BFF_METHOD_GET, 1u << ((len > 0 ? (unsigned char)line[0] : 0) % BFF_METHOD_COUNT)};
        for (int m = 0; m < 2; ++m) {
            bff_route_match match;
            int rc = bff_route_table_match(table, methods[m], line, len, &match);
            if (rc == 1) {
                if (match.pattern == NULL || match.value == NULL || match.nparams > BFF_ROUTE_MAX_PARAMS)
                    abort();
                for (size_t i = 0; i < match.nparams; ++i) {
                    const bff_route_param *p = &match.params[i];
                    if (p->value < line || p->value + p->value_len > line + len || p->name == NULL)
                        abort();
                }
            } else if (rc == -1 && match.allowed == 0) {
                abort(); /* a 405 names what the path allows */
            }
        }
    }
    bff_route_table_free(&table);
    free(text);
    return 0;
}
