/* tmpdir: create and recursively remove temporary directories for unit tests. */
#include "tmpdir.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int test_tmpdir_make(char *out, size_t cap, const char *prefix)
{
    if ((size_t)snprintf(out, cap, "/tmp/bffgate-%s-XXXXXX", prefix) >= cap)
        return -1;
    return mkdtemp(out) != NULL ? 0 : -1;
}

int test_tmpdir_remove(const char *path)
{
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
