/* template: JSON Pointers and compiled ${/pointer} templates that build call inputs from the composition context. */
#ifndef BFF_TEMPLATE_H
#define BFF_TEMPLATE_H

#include <jansson.h>
#include <stddef.h>

/*
 * JSON Pointers (RFC 6901): "" is the whole document; "/a/b" walks members and array elements; in a
 * segment "~1" stands for "/" and "~0" for "~" (any other "~" makes the pointer invalid). An array
 * index is decimal without leading zeros ("0", "12"); "-" and "01" name no element.
 */

/* The value at `ptr` (len bytes) in `doc`: borrowed from doc, or NULL when absent or the pointer is invalid.
 * Allocates only for a segment longer than 256 bytes that holds "~". */
const json_t *bff_json_pointer(const json_t *doc, const char *ptr, size_t len);
/* 1 when `ptr` is a valid JSON Pointer (the empty pointer included), 0 otherwise. */
int bff_json_pointer_valid(const char *ptr, size_t len);

/*
 * Templates are compiled once from a config value and evaluated per request against a composition
 * context such as {"request": {"params", "query", "headers", "body", "claims"}, "<call>": result, ...}.
 *
 * In a JSON string, "${/pointer}" is a reference into the context and "$${" is a literal "${". Text is
 * read left to right and "$${" always wins: "$$${/x}" is the text "$${/x}", not "$" and a reference.
 * A reference is a non-empty JSON Pointer (it starts with "/"), holds no NUL and no "${", and ends at
 * the first "}": a member whose name holds "}" cannot be referenced. Objects and arrays are compiled
 * member by member (keys are literal); other JSON values are constants.
 *
 * A compiled template is immutable and owns everything it uses (the config value may be freed after
 * compiling); it may be evaluated by several threads at once.
 */
typedef struct bff_template bff_template;

typedef enum bff_template_encoding {
    BFF_TEMPLATE_RAW,   /* values inserted as they are */
    BFF_TEMPLATE_PATH,  /* each value percent-encoded as one path segment (all but A-Z a-z 0-9 - . _ ~) */
    BFF_TEMPLATE_QUERY, /* the same set, for a query parameter name or value */
    BFF_TEMPLATE_HEADER /* values as they are; CR, LF or NUL anywhere in the result is an error */
} bff_template_encoding;

/*
 * Compiles `def` (not modified, not retained). Returns the template, or NULL with a message in err:
 *   unterminated "${" in "user-${/x"
 *   bad reference "${/a~2}": "~" must be followed by 0 or 1
 * A problem inside an object or array ends with where it is: ... (at user.ids[2]).
 */
bff_template *bff_template_compile(const json_t *def, char *err, size_t cap);
/* NULL-safe. */
void bff_template_free(bff_template *t);

/* 1 when the template holds no reference (it always evaluates to the same value). */
int bff_template_is_constant(const bff_template *t);

/* Calls cb with the pointer text of each reference as written ("/profile/id", always starting with "/"),
 * in the order they appear in the config value. */
void bff_template_foreach_ref(const bff_template *t, void (*cb)(void *data, const char *pointer), void *data);

/*
 * Evaluates `t` against `ctx`. Returns a new reference, or NULL with a message in err when out of
 * memory or when a string interpolation fails.
 *   - a string that is exactly one reference ("${/profile}") yields the referenced value itself, of
 *     any type, or JSON null when it is missing;
 *   - a string mixing text and references ("user-${/request/params/id}") yields a string: strings are
 *     inserted as they are, numbers and booleans as their JSON text (a real as its shortest text that
 *     reads back the same, "0.1" rather than "0.10000000000000001"), objects and arrays as compact JSON;
 *     a missing or null reference is an error: `reference ${/x/y} is missing`;
 *   - objects and arrays are built member by member.
 * The result SHARES structure with `ctx` (referenced values are json_incref'd, not copied) and with the
 * template's own constants: treat it as read-only, or json_deep_copy it before changing it in place.
 * Allocation: none for a constant or a whole reference; one string (plus a buffer above 256 bytes) for
 * an interpolation; the new containers for an object or array.
 */
json_t *bff_template_eval(const bff_template *t, const json_t *ctx, char *err, size_t cap);

/*
 * Evaluates a template compiled from a JSON string (anything else is an error) as text for a URL part
 * or a header, encoding each inserted value as `enc` says (the template's literal text is never
 * encoded). Every reference, a whole-string one included, must name a value that is neither missing
 * nor null; objects and arrays are inserted as compact JSON. Returns malloc'd NUL-terminated text
 * (its length in *len when len is not NULL; with BFF_TEMPLATE_RAW it may hold NUL bytes), or NULL
 * with a message in err.
 */
char *bff_template_eval_string(const bff_template *t, const json_t *ctx, bff_template_encoding enc, size_t *len,
                               char *err, size_t cap);

/*
 * Internal, shared with shape.c: a JSON Pointer split once into unescaped segments, for paths that
 * are followed many times.
 */
typedef struct bff__pointer_segment {
    const char *key; /* unescaped, NUL-terminated (it may also hold NUL: use len) */
    size_t len;
    int is_index; /* a decimal array index without leading zeros */
    size_t index; /* when is_index; SIZE_MAX when too large to name any element */
} bff__pointer_segment;

typedef struct bff__pointer {
    char *text; /* as written, NUL-terminated */
    size_t text_len;
    bff__pointer_segment *segs; /* one allocation holds segs, text and the keys */
    size_t nsegs;
} bff__pointer;

/* NULL when `ptr` is a valid pointer, else why not (a static string). */
const char *bff__pointer_syntax_error(const char *ptr, size_t len);
/* Returns 0, -EINVAL for an invalid pointer, or -ENOMEM. On error *p is left empty (release is safe). */
int bff__pointer_parse(bff__pointer *p, const char *ptr, size_t len);
/* The value at p in doc (borrowed), or NULL. */
const json_t *bff__pointer_get(const bff__pointer *p, const json_t *doc);
/* NULL-safe on an empty pointer; leaves *p empty. */
void bff__pointer_release(bff__pointer *p);

#endif
