/* shape: compiles a frontend's "shape" and applies it to results, copying shared containers before changing them. */
#include "shape.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template.h"

#define SHAPE_MAX_LIMIT 1000000

/* The "allow" paths as a tree: a node is kept whole when `terminal`, else only its children are. */
typedef struct allow_node {
    char *key; /* unescaped segment; NULL at the root */
    size_t len;
    int is_index;
    size_t index;
    int terminal;
    int has_named; /* a child that is not an index: it applies to each element of an array met here */
    struct allow_node **children;
    size_t nchildren;
} allow_node;

typedef enum shape_op_kind { SHAPE_DENY, SHAPE_LIMIT, SHAPE_RENAME } shape_op_kind;

typedef struct shape_op {
    shape_op_kind kind;
    bff__pointer path;
    size_t limit; /* SHAPE_LIMIT */
    char *name;   /* SHAPE_RENAME: the new name */
    size_t name_len;
} shape_op;

struct bff_shape {
    int has_unwrap;
    bff__pointer unwrap;
    allow_node *allow; /* NULL: no "allow" */
    shape_op *ops;     /* deny, then limit, then rename (deepest first) */
    size_t nops;
};

static const char *const shape_keys[] = {"unwrap", "allow", "deny", "limit", "rename", NULL};

/* ---- compiling ---- */

static void allow_node_free(allow_node *node)
{
    if (node == NULL)
        return;
    for (size_t i = 0; i < node->nchildren; ++i)
        allow_node_free(node->children[i]);
    free(node->children);
    free(node->key);
    free(node);
}

static allow_node *allow_child(allow_node *node, const bff__pointer_segment *seg)
{
    for (size_t i = 0; i < node->nchildren; ++i) {
        allow_node *c = node->children[i];
        if (c->len == seg->len && memcmp(c->key, seg->key, seg->len) == 0)
            return c;
    }
    allow_node **children = realloc(node->children, (node->nchildren + 1) * sizeof(*children));
    if (children == NULL)
        return NULL;
    node->children = children;
    allow_node *c = calloc(1, sizeof(*c));
    char *key = malloc(seg->len + 1);
    if (c == NULL || key == NULL) {
        free(c);
        free(key);
        return NULL;
    }
    memcpy(key, seg->key, seg->len + 1);
    c->key = key;
    c->len = seg->len;
    c->is_index = seg->is_index;
    c->index = seg->index;
    node->has_named |= !seg->is_index;
    node->children[node->nchildren++] = c;
    return c;
}

static int allow_insert(allow_node *root, const bff__pointer *p)
{
    allow_node *node = root;
    for (size_t s = 0; node != NULL && s < p->nsegs; ++s)
        node = allow_child(node, &p->segs[s]);
    if (node == NULL)
        return -ENOMEM;
    node->terminal = 1;
    return 0;
}

/* Parses value as a JSON Pointer into *p; 0, -EINVAL (not a string or not a pointer), -ENOMEM. */
static int parse_pointer(json_t *value, bff__pointer *p)
{
    memset(p, 0, sizeof(*p));
    if (!json_is_string(value))
        return -EINVAL;
    return bff__pointer_parse(p, json_string_value(value), json_string_length(value));
}

static int add_op(bff_shape *shape, shape_op op)
{
    shape_op *ops = realloc(shape->ops, (shape->nops + 1) * sizeof(*ops));
    if (ops == NULL)
        return -ENOMEM;
    shape->ops = ops;
    shape->ops[shape->nops++] = op;
    return 0;
}

static void load_unwrap(bff_shape *shape, json_t *def, const char *file, const char *path, cfg_errors *errs)
{
    json_t *v = json_object_get(def, "unwrap");
    if (v == NULL)
        return;
    char p[600];
    cfg_path_key(p, sizeof(p), path, "unwrap");
    int rc = parse_pointer(v, &shape->unwrap);
    if (rc == -EINVAL)
        cfg_error(errs, file, p, "must be a JSON Pointer such as \"/data\"");
    else if (rc != 0)
        cfg_error(errs, file, p, "out of memory");
    shape->has_unwrap = rc == 0;
}

/* "allow" or "deny": a list of pointers. */
static void load_list(bff_shape *shape, json_t *def, const char *key, const char *file, const char *path,
                      cfg_errors *errs)
{
    json_t *list = json_object_get(def, key);
    if (list == NULL)
        return;
    int allow = strcmp(key, "allow") == 0;
    const char *example = allow ? "\"/user/name\"" : "\"/user/email\"";
    char p[600];
    cfg_path_key(p, sizeof(p), path, key);
    if (!json_is_array(list) || (allow && json_array_size(list) == 0)) {
        cfg_error(errs, file, p, "must be a %slist of JSON Pointers such as %s", allow ? "non-empty " : "", example);
        return;
    }
    if (allow && (shape->allow = calloc(1, sizeof(*shape->allow))) == NULL) {
        cfg_error(errs, file, p, "out of memory");
        return;
    }
    for (size_t i = 0; i < json_array_size(list); ++i) {
        char q[640];
        cfg_path_index(q, sizeof(q), p, i);
        shape_op op = {.kind = SHAPE_DENY}; /* an allow path only feeds the tree, then is released */
        int rc = parse_pointer(json_array_get(list, i), &op.path);
        if (rc == -EINVAL) {
            cfg_error(errs, file, q, "must be a JSON Pointer such as %s", example);
            continue;
        }
        if (rc == 0 && !allow && op.path.nsegs == 0) {
            cfg_error(errs, file, q, "cannot deny the root (\"\"); name a member such as %s", example);
            bff__pointer_release(&op.path);
            continue;
        }
        if (rc == 0)
            rc = allow ? allow_insert(shape->allow, &op.path) : add_op(shape, op);
        if (allow || rc != 0)
            bff__pointer_release(&op.path);
        if (rc != 0)
            cfg_error(errs, file, q, "out of memory");
    }
}

/* "limit" or "rename": an object whose keys are pointers. */
static void load_map(bff_shape *shape, json_t *def, const char *key, const char *file, const char *path,
                     cfg_errors *errs)
{
    json_t *map = json_object_get(def, key);
    if (map == NULL)
        return;
    int limit = strcmp(key, "limit") == 0;
    const char *example = limit ? "\"/items\"" : "\"/user/name\"";
    char p[600];
    cfg_path_key(p, sizeof(p), path, key);
    if (!json_is_object(map)) {
        cfg_error(errs, file, p,
                  limit ? "must be an object of JSON Pointers and maximum lengths, such as {\"/items\": 5}"
                        : "must be an object of JSON Pointers and new names, such as "
                          "{\"/user/name\": \"userName\"}");
        return;
    }
    const char *ptr;
    size_t ptr_len;
    json_t *value;
    json_object_keylen_foreach(map, ptr, ptr_len, value)
    {
        char q[1200];
        snprintf(q, sizeof(q), "%s[\"%s\"]", p, ptr);
        shape_op op = {.kind = limit ? SHAPE_LIMIT : SHAPE_RENAME};
        int rc = bff__pointer_parse(&op.path, ptr, ptr_len);
        if (rc == -EINVAL) {
            cfg_error(errs, file, q, "the key must be a JSON Pointer such as %s", example);
            continue;
        }
        if (rc == 0 && !limit && op.path.nsegs == 0) {
            cfg_error(errs, file, q, "cannot rename the root (\"\")");
            rc = -EINVAL;
        } else if (rc == 0 && limit) {
            json_int_t n = json_is_integer(value) ? json_integer_value(value) : -1;
            if (n < 0 || n > SHAPE_MAX_LIMIT) {
                cfg_error(errs, file, q, "must be an integer between 0 and %d", SHAPE_MAX_LIMIT);
                rc = -EINVAL;
            }
            op.limit = (size_t)n;
        } else if (rc == 0) {
            const char *name = json_string_value(value);
            size_t len = json_string_length(value);
            if (name == NULL || len == 0 || memchr(name, '/', len) != NULL || memchr(name, '\0', len) != NULL) {
                cfg_error(errs, file, q, "must be a non-empty name without \"/\"");
                rc = -EINVAL;
            } else if ((op.name = strdup(name)) == NULL) {
                rc = -ENOMEM;
            }
            op.name_len = len;
        }
        if (rc == 0)
            rc = add_op(shape, op);
        if (rc != 0) {
            if (rc == -ENOMEM)
                cfg_error(errs, file, q, "out of memory");
            bff__pointer_release(&op.path);
            free(op.name);
        }
    }
}

/* Renames run deepest first (stable), so a parent's rename never hides a child's path. */
static void sort_renames(bff_shape *shape)
{
    for (size_t i = 1; i < shape->nops; ++i) {
        shape_op op = shape->ops[i];
        size_t j = i;
        while (j > 0 && op.kind == SHAPE_RENAME && shape->ops[j - 1].kind == SHAPE_RENAME &&
               shape->ops[j - 1].path.nsegs < op.path.nsegs) {
            shape->ops[j] = shape->ops[j - 1];
            --j;
        }
        shape->ops[j] = op;
    }
}

bff_shape *bff_shape_compile(json_t *def, const char *file, const char *path, cfg_errors *errs)
{
    if (!json_is_object(def)) {
        cfg_error(errs, file, path, "must be an object with \"unwrap\", \"allow\", \"deny\", \"limit\" or \"rename\"");
        return NULL;
    }
    size_t errors_before = errs->count;
    cfg_check_keys(errs, file, path, def, shape_keys);
    bff_shape *shape = calloc(1, sizeof(*shape));
    if (shape == NULL) {
        cfg_error(errs, file, path, "out of memory");
        return NULL;
    }
    load_unwrap(shape, def, file, path, errs);
    load_list(shape, def, "allow", file, path, errs);
    load_list(shape, def, "deny", file, path, errs);
    load_map(shape, def, "limit", file, path, errs);
    load_map(shape, def, "rename", file, path, errs);
    sort_renames(shape);
    if (errs->count != errors_before) {
        bff_shape_free(shape);
        return NULL;
    }
    return shape;
}

void bff_shape_free(bff_shape *shape)
{
    if (shape == NULL)
        return;
    bff__pointer_release(&shape->unwrap);
    allow_node_free(shape->allow);
    for (size_t i = 0; i < shape->nops; ++i) {
        bff__pointer_release(&shape->ops[i].path);
        free(shape->ops[i].name);
    }
    free(shape->ops);
    free(shape);
}

/* ---- allow ---- */

/*
 * The allow nodes that apply to a value. A node met `through` an array applies its named children to
 * each element (its index children were used by the array itself).
 */
typedef struct allow_entry {
    const allow_node *node;
    int through;
} allow_entry;

typedef struct allow_set {
    allow_entry *items;
    size_t n;
    size_t cap;
    allow_entry local[8];
} allow_set;

static void allow_set_init(allow_set *set)
{
    set->items = set->local;
    set->n = 0;
    set->cap = sizeof(set->local) / sizeof(set->local[0]);
}

static void allow_set_release(allow_set *set)
{
    if (set->items != set->local)
        free(set->items);
}

static int allow_set_add(allow_set *set, const allow_node *node, int through)
{
    for (size_t i = 0; i < set->n; ++i) {
        if (set->items[i].node == node && set->items[i].through == through)
            return 0;
    }
    if (set->n == set->cap) {
        allow_entry *items = malloc(2 * set->cap * sizeof(*items));
        if (items == NULL)
            return -ENOMEM;
        memcpy(items, set->items, set->n * sizeof(*items));
        allow_set_release(set);
        set->items = items;
        set->cap *= 2;
    }
    set->items[set->n++] = (allow_entry){node, through};
    return 0;
}

static json_t *allow_filter(json_t *value, const allow_set *set);

/* The nodes that apply to member `key` of an object. */
static int allow_member_set(const allow_set *set, const char *key, size_t len, allow_set *out)
{
    for (size_t i = 0; i < set->n; ++i) {
        const allow_node *node = set->items[i].node;
        for (size_t c = 0; c < node->nchildren; ++c) {
            const allow_node *child = node->children[c];
            if (set->items[i].through && child->is_index)
                continue;
            if (child->len == len && memcmp(child->key, key, len) == 0 && allow_set_add(out, child, 0) != 0)
                return -ENOMEM;
        }
    }
    return 0;
}

/* The nodes that apply to element `index` of an array. */
static int allow_element_set(const allow_set *set, size_t index, allow_set *out)
{
    for (size_t i = 0; i < set->n; ++i) {
        const allow_node *node = set->items[i].node;
        if (node->has_named && allow_set_add(out, node, 1) != 0)
            return -ENOMEM;
        for (size_t c = 0; !set->items[i].through && c < node->nchildren; ++c) {
            const allow_node *child = node->children[c];
            if (child->is_index && child->index == index && allow_set_add(out, child, 0) != 0)
                return -ENOMEM;
        }
    }
    return 0;
}

static json_t *allow_object(json_t *value, const allow_set *set)
{
    json_t *out = json_object();
    const char *key;
    size_t len;
    json_t *member;
    json_object_keylen_foreach(value, key, len, member)
    {
        if (out == NULL)
            break;
        allow_set sub;
        allow_set_init(&sub);
        json_t *kept = NULL;
        int rc = allow_member_set(set, key, len, &sub);
        if (rc == 0 && sub.n > 0) {
            kept = allow_filter(member, &sub);
            rc = kept == NULL || json_object_setn_new_nocheck(out, key, len, kept) != 0 ? -ENOMEM : 0;
        }
        allow_set_release(&sub);
        if (rc != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

static json_t *allow_array(json_t *value, const allow_set *set)
{
    json_t *out = json_array();
    for (size_t i = 0; out != NULL && i < json_array_size(value); ++i) {
        allow_set sub;
        allow_set_init(&sub);
        json_t *kept = NULL;
        int rc = allow_element_set(set, i, &sub);
        if (rc == 0 && sub.n > 0) {
            kept = allow_filter(json_array_get(value, i), &sub);
            rc = kept == NULL || json_array_append_new(out, kept) != 0 ? -ENOMEM : 0;
        }
        allow_set_release(&sub);
        if (rc != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

/* A new reference to what `set` keeps of value (new containers; kept subtrees are shared), or NULL. */
static json_t *allow_filter(json_t *value, const allow_set *set)
{
    for (size_t i = 0; i < set->n; ++i) {
        if (!set->items[i].through && set->items[i].node->terminal)
            return json_incref(value);
    }
    if (json_is_object(value))
        return allow_object(value, set);
    if (json_is_array(value))
        return allow_array(value, set);
    return json_incref(value);
}

/* ---- deny, limit, rename: in place, copying shared containers first ---- */

static int is_container(const json_t *v)
{
    return json_is_object(v) || json_is_array(v);
}

/* Held by anyone else? (Only meaningful for a value reached through containers that are ours alone.) */
static int is_shared(const json_t *v)
{
    return __atomic_load_n(&v->refcount, __ATOMIC_ACQUIRE) != 1;
}

static int op_visit(json_t *v, const shape_op *op, size_t k, int dry);

/*
 * Applies op from segment k to `child`, held by the container `parent` (ours alone) under key or index.
 * A shared child is copied, and the copy put in its place, only when op would change something in it.
 */
static int op_descend(json_t *parent, const bff__pointer_segment *seg, size_t index, json_t *child, const shape_op *op,
                      size_t k, int dry)
{
    if (!is_container(child))
        return 0;
    if (dry || !is_shared(child))
        return op_visit(child, op, k, dry);
    int changes = op_visit(child, op, k, 1);
    if (changes <= 0)
        return changes;
    json_t *copy = json_copy(child);
    if (copy == NULL)
        return -ENOMEM;
    int rc = json_is_object(parent) ? json_object_setn_new_nocheck(parent, seg->key, seg->len, copy)
                                    : json_array_set_new(parent, index, copy);
    if (rc != 0)
        return -ENOMEM;
    return op_visit(copy, op, k, 0);
}

static int op_limit(json_t *v, size_t limit, int dry)
{
    if (!json_is_array(v) || json_array_size(v) <= limit)
        return 0;
    while (!dry && json_array_size(v) > limit)
        json_array_remove(v, json_array_size(v) - 1);
    return 1;
}

/* Deny or rename member seg of the object v. */
static int op_member(json_t *v, const shape_op *op, const bff__pointer_segment *seg, int dry)
{
    json_t *member = json_object_getn(v, seg->key, seg->len);
    if (member == NULL)
        return 0;
    if (op->kind == SHAPE_RENAME && op->name_len == seg->len && memcmp(op->name, seg->key, seg->len) == 0)
        return 0;
    if (dry)
        return 1;
    if (op->kind == SHAPE_RENAME && json_object_setn_nocheck(v, op->name, op->name_len, member) != 0)
        return -ENOMEM;
    json_object_deln(v, seg->key, seg->len);
    return 1;
}

/* Follows op's path from segment k at v (ours alone unless dry). Returns 1 when something changed (or
 * would, when dry), 0 when not, -ENOMEM. */
static int op_visit(json_t *v, const shape_op *op, size_t k, int dry)
{
    const bff__pointer *path = &op->path;
    if (op->kind == SHAPE_LIMIT && k == path->nsegs)
        return op_limit(v, op->limit, dry);
    const bff__pointer_segment *seg = &path->segs[k];
    int last = k + 1 == path->nsegs;
    if (json_is_object(v)) {
        if (last && op->kind != SHAPE_LIMIT)
            return op_member(v, op, seg, dry);
        json_t *member = json_object_getn(v, seg->key, seg->len);
        return member != NULL ? op_descend(v, seg, 0, member, op, k + 1, dry) : 0;
    }
    if (!json_is_array(v))
        return 0;
    size_t n = json_array_size(v);
    if (seg->is_index) {
        if (seg->index >= n || (last && op->kind == SHAPE_RENAME))
            return 0;
        if (last && op->kind == SHAPE_DENY) {
            if (!dry)
                json_array_remove(v, seg->index);
            return 1;
        }
        return op_descend(v, seg, seg->index, json_array_get(v, seg->index), op, k + 1, dry);
    }
    int changed = 0;
    for (size_t i = 0; i < n && !(dry && changed); ++i) {
        int rc = op_descend(v, seg, i, json_array_get(v, i), op, k, dry);
        if (rc < 0)
            return rc;
        changed |= rc;
    }
    return changed;
}

/* Runs op on value (one reference, given and returned); NULL when out of memory. */
static json_t *op_run(json_t *value, const shape_op *op)
{
    if (!is_container(value))
        return value;
    if (is_shared(value)) {
        if (op_visit(value, op, 0, 1) == 0)
            return value;
        json_t *copy = json_copy(value);
        json_decref(value);
        if (copy == NULL)
            return NULL;
        value = copy;
    }
    if (op_visit(value, op, 0, 0) < 0) {
        json_decref(value);
        return NULL;
    }
    return value;
}

json_t *bff_shape_apply(const bff_shape *shape, json_t *value)
{
    if (value == NULL)
        return NULL;
    if (shape->has_unwrap) {
        const json_t *inner = bff__pointer_get(&shape->unwrap, value);
        json_t *next = inner != NULL ? json_incref((json_t *)inner) : json_null();
        json_decref(value);
        value = next;
    }
    if (shape->allow != NULL) {
        allow_set set;
        allow_set_init(&set);
        allow_set_add(&set, shape->allow, 0); /* fits in the set's own room */
        json_t *next = allow_filter(value, &set);
        allow_set_release(&set);
        json_decref(value);
        value = next;
    }
    for (size_t i = 0; value != NULL && i < shape->nops; ++i)
        value = op_run(value, &shape->ops[i]);
    return value;
}
