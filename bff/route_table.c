/* route_table: method + path-pattern matching for one frontend, as a segment trie. */

/*
 * Paths. A path is "/" followed by segments separated by '/'. "/" alone has no segment;
 * "/products/" has two ("products" and ""), so it does NOT match the pattern "/products": a
 * trailing slash makes a different path, and only a wildcard matches an empty segment. Patterns
 * never contain an empty segment, so "/products/" is not a valid pattern either.
 *
 * Trie. Each node has literal children (a plain array up to LINEAR_MAX, then an open-addressing
 * FNV-1a hash table kept at most half full), at most one parameter child and at most one wildcard
 * child. A wildcard node is always a leaf. Parameter names live in the route, not the node, which
 * is why "/a/{id}" and "/a/{x}" share a node and conflict (-EEXIST) on the same method.
 *
 * Matching. A depth-first search over the nodes consistent with the path, in priority order at
 * each segment: the literal child, then the parameter child, then the wildcard child (which takes
 * the rest of the path, zero or more segments). It needs no recursion and no stack: a node knows
 * its parent and whether it is a literal or a parameter child, and the position of the parent's
 * segment is recovered by scanning back to the previous '/'. The only per-match state is the
 * captured parameters, at most BFF_ROUTE_MAX_PARAMS since every trie path comes from a pattern.
 * The first node in that order that has a route for the method (HEAD: or for GET) wins; on a
 * match `allowed` is that node's methods. When none has one, `allowed` is the union of the methods
 * of every node that matched the path (so GET /users/{id} plus DELETE /users/me answer a POST to
 * /users/me with "GET, HEAD, DELETE").
 *
 * Bound. The search is a walk over a subtree of the trie, so each node is visited at most once per
 * match, and only nodes at depth <= the number of path segments S. At each depth at most one
 * literal child and one parameter child continue the walk, and no trie path has more than
 * BFF_ROUTE_MAX_PARAMS parameter edges, so a match visits at most
 *     min(number of nodes, sum over d <= min(S, D) of sum over k <= 16 of C(d, k))  <=  2^(min(S, D) + 1)
 * nodes, where D is the depth of the deepest pattern: the cost is set by the table's shape, never
 * by how long a hostile path is (the walk stops where the trie stops; a wildcard takes any rest in
 * O(1)). Each visit costs O(length of its segment) for memchr, hashing and memcmp.
 */

#include "bff/route_table.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METHODS_ALL ((1u << BFF_METHOD_COUNT) - 1)
#define LINEAR_MAX 8         /* literal children kept in a plain array up to this many */
#define HASH_FIRST_CAP 32    /* slots when a node switches to a hash table (>= 2 * (LINEAR_MAX + 1)) */
#define ERR_SEGMENT_SHOWN 64 /* bytes of a segment quoted in an error message */

enum node_kind { NODE_ROOT, NODE_LITERAL, NODE_PARAM, NODE_WILDCARD };

struct param_name {
    const char *name;
    size_t len;
};

/* One allocation: this header, nparams names, then the pattern and the names' text. */
struct route {
    void *value;
    const char *pattern;
    size_t nparams;
    struct param_name params[];
};

/* A literal child with its label's hash, so that most mismatches never touch the child. */
struct slot {
    uint32_t hash;
    struct node *node;
};

/* Kept small (the per-method routes live apart) so that a visit touches few cache lines. */
struct node {
    /* nliterals entries while !hashed; literal_cap slots (node NULL when free) once hashed */
    struct slot *literals;
    size_t nliterals;
    size_t literal_cap;
    struct node *param;
    struct node *wildcard;
    struct node *parent;
    const struct route **routes; /* BFF_METHOD_COUNT entries, NULL until a pattern ends here */
    unsigned methods;
    unsigned char kind;
    bool hashed;
    size_t label_len;
    char label[]; /* literal nodes only */
};

struct bff_route_table {
    struct node *root;
    struct route **routes; /* every added route, owned here; nodes only point at them */
    size_t nroutes;
    size_t routes_cap;
};

static const char *const method_names[BFF_METHOD_COUNT] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};

unsigned bff_method_from_name(const char *name, size_t len)
{
    if (name == NULL)
        return 0;
    for (unsigned i = 0; i < BFF_METHOD_COUNT; i++) {
        if (strlen(method_names[i]) == len && memcmp(method_names[i], name, len) == 0)
            return 1u << i;
    }
    return 0;
}

static bool is_single_method(unsigned method_bit)
{
    return method_bit != 0 && (method_bit & (method_bit - 1)) == 0 && (method_bit & METHODS_ALL) != 0;
}

const char *bff_method_name(unsigned method_bit)
{
    if (!is_single_method(method_bit))
        return NULL;
    return method_names[__builtin_ctz(method_bit)];
}

static void append_truncated(char *buf, size_t cap, size_t *used, const char *text)
{
    size_t len = strlen(text);
    size_t room = cap - 1 - *used;
    if (len > room)
        len = room;
    memcpy(buf + *used, text, len);
    *used += len;
    buf[*used] = '\0';
}

size_t bff_method_list(unsigned mask, char *buf, size_t cap)
{
    if (buf == NULL || cap == 0)
        return 0;
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < BFF_METHOD_COUNT; i++) {
        if ((mask & (1u << i)) == 0)
            continue;
        if (used > 0)
            append_truncated(buf, cap, &used, ", ");
        append_truncated(buf, cap, &used, method_names[i]);
    }
    return used;
}

/* Methods a node answers: HEAD wherever GET is. */
static unsigned effective_methods(unsigned methods)
{
    return (methods & BFF_METHOD_GET) ? (methods | BFF_METHOD_HEAD) : methods;
}

static uint32_t fnv1a(const char *s, size_t len)
{
    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        hash ^= (unsigned char)s[i];
        hash *= 16777619u;
    }
    return hash;
}

__attribute__((format(printf, 4, 5))) static int set_error(char *err, size_t cap, int code, const char *fmt, ...)
{
    if (err != NULL && cap > 0) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(err, cap, fmt, args);
        va_end(args);
    }
    return code;
}

/* ---- pattern parsing ---- */

struct segment {
    const char *text; /* the whole segment, not NUL-terminated */
    size_t len;
    unsigned index; /* 1-based, for error messages */
    bool last;
    enum node_kind kind;
    const char *name; /* parameters and wildcards: the name without braces or '*' */
    size_t name_len;
};

struct pattern_cursor {
    const char *pattern;
    size_t pos; /* start of the next segment */
    unsigned index;
    bool done;
};

static void cursor_init(struct pattern_cursor *cursor, const char *pattern)
{
    cursor->pattern = pattern;
    cursor->pos = 1;
    cursor->index = 0;
    cursor->done = strcmp(pattern, "/") == 0; /* the root has no segment */
}

/* Splits off the next segment (text, len, index, last only); false when there is none. */
static bool cursor_next(struct pattern_cursor *cursor, struct segment *seg)
{
    if (cursor->done)
        return false;
    const char *start = cursor->pattern + cursor->pos;
    size_t len = strcspn(start, "/");
    memset(seg, 0, sizeof(*seg));
    seg->text = start;
    seg->len = len;
    seg->index = ++cursor->index;
    seg->last = start[len] == '\0';
    cursor->pos += len + 1;
    cursor->done = seg->last;
    return true;
}

static int segment_error(const struct segment *seg, char *err, size_t cap, const char *reason)
{
    int shown = seg->len > ERR_SEGMENT_SHOWN ? ERR_SEGMENT_SHOWN : (int)seg->len;
    return set_error(err, cap, -EINVAL, "segment %u \"%.*s%s\": %s", seg->index, shown, seg->text,
                     seg->len > ERR_SEGMENT_SHOWN ? "..." : "", reason);
}

static bool is_valid_name(const char *name, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* Sets seg->kind (and the name of a parameter), or returns -EINVAL with the reason. */
static int classify_segment(struct segment *seg, char *err, size_t cap)
{
    const char *s = seg->text;
    size_t len = seg->len;

    if (len == 0)
        return segment_error(seg, err, cap, "empty segment");
    if (s[0] != '{') {
        if (memchr(s, '{', len) != NULL || memchr(s, '}', len) != NULL)
            return segment_error(seg, err, cap, "'{' or '}' inside a literal (a parameter must be a whole segment)");
        seg->kind = NODE_LITERAL;
        return 0;
    }

    const char *close = memchr(s, '}', len);
    if (close == NULL)
        return segment_error(seg, err, cap, "unterminated parameter");
    if (close != s + len - 1)
        return segment_error(seg, err, cap, "text after the parameter's '}'");
    seg->kind = NODE_PARAM;
    seg->name = s + 1;
    seg->name_len = len - 2;
    if (seg->name_len > 0 && seg->name[seg->name_len - 1] == '*') {
        seg->kind = NODE_WILDCARD;
        seg->name_len--;
    }
    if (seg->name_len == 0)
        return segment_error(seg, err, cap, "empty parameter name");
    if (!is_valid_name(seg->name, seg->name_len))
        return segment_error(seg, err, cap, "invalid parameter name (want [A-Za-z_][A-Za-z0-9_]*)");
    if (seg->kind == NODE_WILDCARD && !seg->last)
        return segment_error(seg, err, cap, "a wildcard must be the last segment");
    return 0;
}

struct pattern_info {
    size_t nparams; /* may exceed BFF_ROUTE_MAX_PARAMS; only that many names are kept */
    const char *names[BFF_ROUTE_MAX_PARAMS];
    size_t name_lens[BFF_ROUTE_MAX_PARAMS];
};

static int parse_pattern(const char *pattern, struct pattern_info *info, char *err, size_t cap)
{
    memset(info, 0, sizeof(*info));
    if (pattern[0] != '/') {
        int shown = (int)strnlen(pattern, ERR_SEGMENT_SHOWN);
        return set_error(err, cap, -EINVAL, "pattern \"%.*s\" must start with '/'", shown, pattern);
    }

    struct pattern_cursor cursor;
    struct segment seg;
    cursor_init(&cursor, pattern);
    while (cursor_next(&cursor, &seg)) {
        int rc = classify_segment(&seg, err, cap);
        if (rc != 0)
            return rc;
        if (seg.kind == NODE_LITERAL)
            continue;
        size_t kept = info->nparams < BFF_ROUTE_MAX_PARAMS ? info->nparams : BFF_ROUTE_MAX_PARAMS;
        for (size_t i = 0; i < kept; i++) {
            if (info->name_lens[i] == seg.name_len && memcmp(info->names[i], seg.name, seg.name_len) == 0)
                return segment_error(&seg, err, cap, "duplicate parameter name");
        }
        if (info->nparams < BFF_ROUTE_MAX_PARAMS) {
            info->names[info->nparams] = seg.name;
            info->name_lens[info->nparams] = seg.name_len;
        }
        info->nparams++;
    }
    if (info->nparams > BFF_ROUTE_MAX_PARAMS)
        return set_error(err, cap, -E2BIG, "pattern has %zu parameters; at most %d are allowed", info->nparams,
                         BFF_ROUTE_MAX_PARAMS);
    return 0;
}

/* ---- nodes ---- */

static struct node *node_new(const struct segment *seg, struct node *parent)
{
    size_t label_len = seg->kind == NODE_LITERAL ? seg->len : 0;
    struct node *node = calloc(1, sizeof(*node) + label_len + 1);
    if (node == NULL)
        return NULL;
    node->parent = parent;
    node->kind = (unsigned char)seg->kind;
    node->label_len = label_len;
    memcpy(node->label, seg->text, label_len);
    return node;
}

static bool label_equals(const struct node *child, const char *s, size_t len)
{
    return child->label_len == len && memcmp(child->label, s, len) == 0;
}

static struct node *find_literal(const struct node *node, const char *s, size_t len)
{
    uint32_t hash = fnv1a(s, len);
    if (!node->hashed) {
        for (size_t i = 0; i < node->nliterals; i++) {
            if (node->literals[i].hash == hash && label_equals(node->literals[i].node, s, len))
                return node->literals[i].node;
        }
        return NULL;
    }
    size_t mask = node->literal_cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const struct slot *slot = &node->literals[i];
        if (slot->node == NULL)
            return NULL; /* the table is at most half full, so an empty slot ends every probe */
        if (slot->hash == hash && label_equals(slot->node, s, len))
            return slot->node;
    }
}

static void hash_insert(struct slot *slots, size_t cap, struct slot entry)
{
    size_t mask = cap - 1;
    size_t i = entry.hash & mask;
    while (slots[i].node != NULL)
        i = (i + 1) & mask;
    slots[i] = entry;
}

static int rehash_literals(struct node *node, size_t new_cap)
{
    struct slot *slots = calloc(new_cap, sizeof(*slots));
    if (slots == NULL)
        return -ENOMEM;
    size_t old_count = node->hashed ? node->literal_cap : node->nliterals;
    for (size_t i = 0; i < old_count; i++) {
        if (node->literals[i].node != NULL)
            hash_insert(slots, new_cap, node->literals[i]);
    }
    free(node->literals);
    node->literals = slots;
    node->literal_cap = new_cap;
    node->hashed = true;
    return 0;
}

/* Makes room for one more literal child so that attach_child cannot fail. Changes no match. */
static int reserve_literal(struct node *node)
{
    if (node->hashed) {
        if ((node->nliterals + 1) * 2 <= node->literal_cap)
            return 0;
        return rehash_literals(node, node->literal_cap * 2);
    }
    if (node->nliterals < node->literal_cap)
        return 0;
    if (node->nliterals >= LINEAR_MAX)
        return rehash_literals(node, HASH_FIRST_CAP);
    size_t new_cap = node->literal_cap == 0 ? 2 : node->literal_cap * 2;
    if (new_cap > LINEAR_MAX)
        new_cap = LINEAR_MAX;
    struct slot *grown = realloc(node->literals, new_cap * sizeof(*grown));
    if (grown == NULL)
        return -ENOMEM;
    node->literals = grown;
    node->literal_cap = new_cap;
    return 0;
}

/* Links child under node; a literal child needs a reserve_literal first. */
static void attach_child(struct node *node, struct node *child)
{
    switch (child->kind) {
    case NODE_LITERAL: {
        struct slot entry = {fnv1a(child->label, child->label_len), child};
        if (node->hashed)
            hash_insert(node->literals, node->literal_cap, entry);
        else
            node->literals[node->nliterals] = entry;
        node->nliterals++;
        break;
    }
    case NODE_PARAM:
        node->param = child;
        break;
    default:
        node->wildcard = child;
        break;
    }
}

static struct node *find_child(const struct node *node, const struct segment *seg)
{
    switch (seg->kind) {
    case NODE_LITERAL:
        return find_literal(node, seg->text, seg->len);
    case NODE_PARAM:
        return node->param;
    default:
        return node->wildcard;
    }
}

/* Unlinks and returns one child of node, or NULL when it has none left; only for freeing. */
static struct node *take_child(struct node *node)
{
    struct node *child = NULL;
    if (node->param != NULL) {
        child = node->param;
        node->param = NULL;
    } else if (node->wildcard != NULL) {
        child = node->wildcard;
        node->wildcard = NULL;
    } else if (!node->hashed) {
        if (node->nliterals > 0)
            child = node->literals[--node->nliterals].node;
    } else {
        while (child == NULL && node->literal_cap > 0)
            child = node->literals[--node->literal_cap].node;
    }
    return child;
}

/* Frees top and everything below it without recursion (patterns may be very deep). */
static void free_subtree(struct node *top)
{
    struct node *stop = top->parent;
    struct node *node = top;
    while (node != stop) {
        struct node *child = take_child(node);
        if (child != NULL) {
            node = child;
            continue;
        }
        struct node *parent = node->parent;
        free(node->literals);
        free(node->routes);
        free(node);
        node = parent;
    }
}

/*
 * Builds, detached from the table, the nodes for `first` and the segments left in `cursor`; the
 * head's parent is set to `parent` but `parent` does not point to it yet. NULL when out of memory.
 */
static struct node *build_chain(struct node *parent, const struct segment *first, struct pattern_cursor *cursor,
                                struct node **leaf)
{
    struct node *head = node_new(first, parent);
    if (head == NULL)
        return NULL;
    struct node *tail = head;
    struct segment seg;
    while (cursor_next(cursor, &seg)) {
        classify_segment(&seg, NULL, 0); /* already validated */
        struct node *child = node_new(&seg, tail);
        if (child == NULL || (seg.kind == NODE_LITERAL && reserve_literal(tail) != 0)) {
            free(child);
            free_subtree(head);
            return NULL;
        }
        attach_child(tail, child);
        tail = child;
    }
    *leaf = tail;
    return head;
}

/* ---- table ---- */

bff_route_table *bff_route_table_new(void)
{
    bff_route_table *table = calloc(1, sizeof(*table));
    if (table == NULL)
        return NULL;
    table->root = calloc(1, sizeof(*table->root) + 1);
    if (table->root == NULL) {
        free(table);
        return NULL;
    }
    table->root->kind = NODE_ROOT;
    return table;
}

void bff_route_table_free(bff_route_table **table)
{
    if (table == NULL || *table == NULL)
        return;
    bff_route_table *t = *table;
    free_subtree(t->root);
    for (size_t i = 0; i < t->nroutes; i++)
        free(t->routes[i]);
    free(t->routes);
    free(t);
    *table = NULL;
}

size_t bff_route_table_size(const bff_route_table *table)
{
    return table == NULL ? 0 : table->nroutes;
}

static struct route *route_new(const char *pattern, const struct pattern_info *info, void *value)
{
    size_t pattern_len = strlen(pattern);
    size_t header = sizeof(struct route) + info->nparams * sizeof(struct param_name);
    size_t size = header + pattern_len + 1;
    for (size_t i = 0; i < info->nparams; i++)
        size += info->name_lens[i] + 1;
    struct route *route = calloc(1, size);
    if (route == NULL)
        return NULL;
    route->value = value;
    route->nparams = info->nparams;
    char *text = (char *)route + header;
    for (size_t i = 0; i < info->nparams; i++) {
        memcpy(text, info->names[i], info->name_lens[i]);
        text[info->name_lens[i]] = '\0';
        route->params[i].name = text;
        route->params[i].len = info->name_lens[i];
        text += info->name_lens[i] + 1;
    }
    memcpy(text, pattern, pattern_len + 1);
    route->pattern = text;
    return route;
}

static int reserve_route_slot(bff_route_table *table)
{
    if (table->nroutes < table->routes_cap)
        return 0;
    size_t new_cap = table->routes_cap == 0 ? 16 : table->routes_cap * 2;
    struct route **grown = realloc(table->routes, new_cap * sizeof(*grown));
    if (grown == NULL)
        return -ENOMEM;
    table->routes = grown;
    table->routes_cap = new_cap;
    return 0;
}

/*
 * Everything that can fail (validation, conflicts, allocation) happens before the first change a
 * match could see; growing an array or a hash table in advance changes no answer.
 */
int bff_route_table_add(bff_route_table *table, unsigned methods, const char *pattern, void *value, char *err,
                        size_t cap)
{
    if (err != NULL && cap > 0)
        err[0] = '\0';
    if (table == NULL || pattern == NULL)
        return set_error(err, cap, -EINVAL, "no table or no pattern");
    if (methods == 0 || (methods & ~METHODS_ALL) != 0)
        return set_error(err, cap, -EINVAL, "methods 0x%x: want a non-empty set of BFF_METHOD_* bits", methods);

    struct pattern_info info;
    int rc = parse_pattern(pattern, &info, err, cap);
    if (rc != 0)
        return rc;

    /* Walk the part of the shape that already exists. */
    struct pattern_cursor cursor;
    struct segment seg;
    struct node *at = table->root;
    bool missing = false;
    cursor_init(&cursor, pattern);
    while (cursor_next(&cursor, &seg)) {
        classify_segment(&seg, NULL, 0);
        struct node *child = find_child(at, &seg);
        if (child == NULL) {
            missing = true;
            break;
        }
        at = child;
    }
    if (!missing && (at->methods & methods) != 0) {
        unsigned taken = at->methods & methods;
        unsigned index = (unsigned)__builtin_ctz(taken);
        return set_error(err, cap, -EEXIST, "%s %s: already routed by \"%s\" (same shape)", method_names[index],
                         pattern, at->routes[index]->pattern);
    }

    struct route *route = NULL;
    const struct route **by_method = NULL;
    struct node *leaf = at;
    if (reserve_route_slot(table) != 0 || (route = route_new(pattern, &info, value)) == NULL)
        goto nomem;
    if ((missing || at->routes == NULL) && (by_method = calloc(BFF_METHOD_COUNT, sizeof(*by_method))) == NULL)
        goto nomem;
    if (missing) {
        struct node *chain = NULL;
        if (seg.kind != NODE_LITERAL || reserve_literal(at) == 0)
            chain = build_chain(at, &seg, &cursor, &leaf);
        if (chain == NULL)
            goto nomem;
        attach_child(at, chain);
    }

    /* Nothing can fail from here on. */
    if (leaf->routes == NULL)
        leaf->routes = by_method;
    for (unsigned i = 0; i < BFF_METHOD_COUNT; i++) {
        if (methods & (1u << i))
            leaf->routes[i] = route;
    }
    leaf->methods |= methods;
    table->routes[table->nroutes++] = route;
    return 0;

nomem:
    free(by_method);
    free(route);
    return set_error(err, cap, -ENOMEM, "out of memory");
}

/* ---- matching ---- */

static const struct route *route_for(const struct node *node, unsigned method)
{
    if (method == 0 || node->routes == NULL)
        return NULL;
    const struct route *route = node->routes[__builtin_ctz(method)];
    if (route == NULL && method == BFF_METHOD_HEAD)
        route = node->routes[0]; /* GET */
    return route;
}

struct capture {
    size_t start;
    size_t len;
};

static void fill_match(bff_route_match *out, const char *path, const struct node *node, const struct route *route,
                       const struct capture *captures, size_t ncaptures)
{
    out->value = route->value;
    out->pattern = route->pattern;
    out->allowed = effective_methods(node->methods);
    out->nparams = ncaptures;
    for (size_t i = 0; i < ncaptures; i++) {
        out->params[i].name = route->params[i].name;
        out->params[i].name_len = route->params[i].len;
        out->params[i].value = path + captures[i].start;
        out->params[i].value_len = captures[i].len;
    }
}

/*
 * `pos` is where the rest of the path starts: the '/' before the next segment, or len when no
 * segment is left. `step` says what to try next at `node`; coming back up from a child resumes
 * after the kind of child it was.
 */
int bff_route_table_match(const bff_route_table *table, unsigned method, const char *path, size_t len,
                          bff_route_match *out)
{
    if (out == NULL)
        return 0;
    out->allowed = 0;
    if (table == NULL || path == NULL || len == 0 || path[0] != '/')
        return 0;
    if (!is_single_method(method))
        method = 0; /* no route has it, but the path may still exist: 405 */

    enum { ENTER, AFTER_LITERAL, AFTER_PARAM } step = ENTER;
    struct capture captures[BFF_ROUTE_MAX_PARAMS + 1]; /* + 1 for a wildcard */
    size_t ncaptures = 0;
    unsigned allowed = 0;
    const struct node *node = table->root;
    size_t pos = len == 1 ? len : 0;
    size_t end = pos; /* end of the segment after pos, once known */
    const struct route *route;

    for (;;) {
        if (step == ENTER) {
            if (pos == len) {
                if (node->methods != 0) {
                    if ((route = route_for(node, method)) != NULL) {
                        fill_match(out, path, node, route, captures, ncaptures);
                        return 1;
                    }
                    allowed |= effective_methods(node->methods);
                }
                step = AFTER_PARAM; /* only a wildcard matches zero segments */
            } else {
                const char *next = memchr(path + pos + 1, '/', len - pos - 1);
                end = next != NULL ? (size_t)(next - path) : len;
                const struct node *child =
                    end > pos + 1 && node->nliterals > 0 ? find_literal(node, path + pos + 1, end - pos - 1) : NULL;
                if (child != NULL) {
                    node = child;
                    pos = end;
                    continue;
                }
                step = AFTER_LITERAL;
            }
        }
        if (step == AFTER_LITERAL && end > pos + 1 && node->param != NULL && ncaptures < BFF_ROUTE_MAX_PARAMS) {
            captures[ncaptures].start = pos + 1;
            captures[ncaptures].len = end - pos - 1;
            ncaptures++;
            node = node->param;
            pos = end;
            step = ENTER;
            continue;
        }
        if (node->wildcard != NULL) {
            const struct node *wildcard = node->wildcard;
            if ((route = route_for(wildcard, method)) != NULL) {
                captures[ncaptures].start = pos == len ? len : pos + 1;
                captures[ncaptures].len = len - captures[ncaptures].start;
                fill_match(out, path, wildcard, route, captures, ncaptures + 1);
                return 1;
            }
            allowed |= effective_methods(wildcard->methods);
        }

        /* Every choice at this node failed: back up to the parent's segment. */
        if (node == table->root)
            break;
        step = node->kind == NODE_LITERAL ? AFTER_LITERAL : AFTER_PARAM;
        if (node->kind == NODE_PARAM)
            ncaptures--;
        end = pos;
        pos = (size_t)((const char *)memrchr(path, '/', end) - path);
        node = node->parent;
    }
    out->allowed = allowed;
    return allowed != 0 ? -1 : 0;
}
