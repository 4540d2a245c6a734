/* shape: per-frontend shaping of a composed result (a route's "shape"): unwrap, allow, deny, limit, rename. */
#ifndef BFF_SHAPE_H
#define BFF_SHAPE_H

#include <jansson.h>

#include "cfg.h"

/*
 * "shape": {"unwrap": "/data", "allow": ["/id", "/user/name", "/items/title"], "deny": ["/user/email"],
 *           "limit": {"/items": 5, "": 10}, "rename": {"/user/name": "userName"}}
 *
 * Paths are JSON Pointers (see template.h); "" is the root. While a path is followed, a segment that
 * meets an array and is not an array index applies, with the rest of the path, to every element:
 * "/items/title" is the title of each item. A valid index ("/items/0") names that element only. A
 * path that leads nowhere has no effect. The steps run in this order, each on the previous one's result:
 *   unwrap  the value becomes the one at the pointer (JSON null when it is missing);
 *   allow   only the listed paths and their subtrees are kept: objects on the way keep only allowed
 *           members, arrays on the way keep every element, each filtered (an array met by index
 *           segments only, "/items/0", keeps only those elements), and a value that is not an object
 *           where the path expects one is kept as it is;
 *   deny    the listed members are removed (an index segment last removes that array element), in the
 *           order listed;
 *   limit   arrays at those paths are cut to at most N elements;
 *   rename  the last segment's member is renamed within each parent object the path reaches; a member
 *           already holding the new name is replaced, and the renamed member moves to the end of its
 *           object. Deeper paths are renamed first, so every path names members by their original names.
 *
 * A compiled shape is immutable and may be applied by several threads at once.
 */
typedef struct bff_shape bff_shape;

/*
 * Compiles the "shape" object found at `path` of `file` (e.g. "routes[2].shape"). Unknown keys are
 * refused, limits are integers from 0 to 1000000, new names are non-empty and hold no "/". Returns the
 * shape, or NULL with every problem appended to errs (nothing is left allocated).
 */
bff_shape *bff_shape_compile(json_t *def, const char *file, const char *path, cfg_errors *errs);
/* NULL-safe. */
void bff_shape_free(bff_shape *shape);

/*
 * Shapes `value`, taking over the caller's reference to it, and returns the result (one reference),
 * or NULL when out of memory (value is released either way).
 *
 * Values shared with other holders are never changed: a container is changed in place only when it
 * is reachable from `value` through references held by nobody else (reference count 1 all the way
 * down); otherwise it is copied first (shallow json_copy, then the same rule one level down), and
 * only the containers on the paths a step actually changes are copied. "allow" builds new containers
 * and shares what it keeps. So a freshly parsed response is shaped without copying, and a value
 * also held elsewhere costs one shallow copy per changed container on the way.
 */
json_t *bff_shape_apply(const bff_shape *shape, json_t *value);

#endif
