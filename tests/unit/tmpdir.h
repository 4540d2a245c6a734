/* tmpdir: temporary directories for unit tests that write files (configs, Lua sources). */
#ifndef TESTS_TMPDIR_H
#define TESTS_TMPDIR_H

#include <stddef.h>

/* Creates /tmp/bffgate-<prefix>-XXXXXX and writes its path into out. Returns 0, or -1. */
int test_tmpdir_make(char *out, size_t cap, const char *prefix);
/* Removes the directory and everything below it. Returns 0, or -1. */
int test_tmpdir_remove(const char *path);

#endif
