/* fuzz_config: the config loader on whole files. The input's first byte chooses which file it becomes: even, a
 * frontend file next to a fixed entry file; odd, the entry file (next to a fixed frontend). Every error must
 * name its file; nothing may be left allocated (the sanitizer build checks that). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "gateway/gw_config.h"

static char dir[64];

static const char entry[] =
    "{\"server\": {\"threads\": 1},\n"
    " \"functions\": {},\n"
    " \"upstreams\": {\"svc\": {\"url\": \"http://127.0.0.1:9/api\", \"cache\": {\"ttl_ms\": 100}}},\n"
    " \"frontends\": [\"web.json\"]}\n";
static const char frontend[] = "{\"name\": \"web\", \"routes\": [{\"path\": \"/a/{id}\", \"steps\": [{\"name\": \"a\","
                               " \"upstream\": \"svc\", \"path\": \"/x/${/request/params/id}\"}]}]}\n";

static void put(const char *name, const void *data, size_t len)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        abort();
    fwrite(data, 1, len, f);
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof(dir), "/tmp/bffgate-fuzz-config-XXXXXX");
    if (mkdtemp(dir) == NULL)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dir[0] == '\0')
        LLVMFuzzerInitialize(NULL, NULL);
    if (size == 0)
        return 0;
    int is_entry = data[0] & 1;
    put("gateway.json", is_entry ? data + 1 : (const uint8_t *)entry, is_entry ? size - 1 : strlen(entry));
    put("web.json", is_entry ? (const uint8_t *)frontend : data + 1, is_entry ? strlen(frontend) : size - 1);
    char file[128];
    snprintf(file, sizeof(file), "%s/gateway.json", dir);
    gw_server_config server;
    bff_snapshot *snap = NULL;
    cfg_errors errs = {0};
    if (gw_config_load(file, 1, NULL, 0, &server, &snap, &errs) == 0) {
        bff_snapshot_release(&snap);
        gw_server_config_release(&server);
    } else {
        for (size_t i = 0; i < errs.count; ++i) {
            if (errs.items[i] != NULL && strstr(errs.items[i], ".json") == NULL)
                abort(); /* every config error names its file */
        }
    }
    cfg_errors_release(&errs);
    return 0;
}
