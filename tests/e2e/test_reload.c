/* test_reload: live reload of functions and routes against the real binary, under load. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static const char gateway_json[] =
    "{\"server\": {\"listen\": [{\"address\": \"127.0.0.1\", \"port\": @PORT@}], \"threads\": 2,\n"
    "            \"admin\": {\"port\": @ADMIN@}},\n"
    " \"functions\": {\"greet\": {\"lua\": \"fn/greet.lua\"}, \"hello_c\": {\"c\": \"obj/fn.so\", \"symbol\": "
    "\"%s\"}},\n"
    " \"frontends\": [\"frontends/*.json\"]}\n";

static const char web_json[] = "{\"name\": \"web\", \"routes\": [\n"
                               "  {\"path\": \"/greet\", \"function\": \"greet\"},\n"
                               "  {\"path\": \"/c\", \"function\": \"hello_c\"}%s\n"
                               "]}\n";

/* Both fields carry the version: a response mixing versions would show two different values. */
static void greet_lua(char *out, size_t cap, int version)
{
    snprintf(out, cap,
             "local v = 'v%d'\n"
             "return { handler = function(event, ctx)\n"
             "  return { first = v, second = 'v%d', ctxVersion = ctx.functionVersion }\n"
             "end }\n",
             version, version);
}

static e2e_server srv;
static int admin_port;

static void write_file(const char *rel, const char *text)
{
    e2e_write(&srv, rel, text);
}

static void write_gateway(const char *symbol)
{
    char text[1024];
    snprintf(text, sizeof(text), gateway_json, symbol);
    write_file("gateway.json", text);
}

static void copy_file(const char *from, const char *to_rel)
{
    char cmd[4096];
    /* Written aside, then renamed into place, as a deployment tool would. */
    if (snprintf(cmd, sizeof(cmd), "mkdir -p '%s/obj' && cp '%s' '%s/%s.tmp' && mv '%s/%s.tmp' '%s/%s'", srv.dir, from,
                 srv.dir, to_rel, srv.dir, to_rel, srv.dir, to_rel) >= (int)sizeof(cmd))
        fail_msg("path too long");
    assert_int_equal(system(cmd), 0);
}

static int admin_request(const char *method, const char *path, e2e_response *res)
{
    e2e_server admin = srv;
    admin.port = admin_port;
    return e2e_request(&admin, E2E_HTTP1, method, path, NULL, NULL, 0, res);
}

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_ALL);
    e2e_init(&srv);
    e2e_pick_port(&srv);
    e2e_pick_admin_port(&srv);
    admin_port = srv.admin_port;
    char lua[512];
    greet_lua(lua, sizeof(lua), 1);
    write_file("fn/greet.lua", lua);
    copy_file(EXAMPLES_DIR "/hello.so", "obj/fn.so");
    write_gateway("hello");
    char web[512];
    snprintf(web, sizeof(web), web_json, "");
    write_file("frontends/web.json", web);
    int rc = e2e_start(&srv, NULL);
    admin_port = srv.admin_port; /* bound by the server (the config says 0) */
    return rc;
}

static int group_teardown(void **state)
{
    int rc = e2e_stop(&srv, SIGTERM);
    e2e_cleanup(&srv);
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
}

/* Polls until `path` answers with `status` and a body containing `want` (the reload is asynchronous). */
static void wait_for(const char *path, long status, const char *want)
{
    for (int i = 0; i < 500; ++i) {
        e2e_response res;
        if (e2e_request(&srv, E2E_HTTP1, "GET", path, NULL, NULL, 0, &res) == 0 && res.status == status &&
            strstr(res.body, want) != NULL) {
            e2e_response_release(&res);
            return;
        }
        e2e_response_release(&res);
        usleep(10000);
    }
    fail_msg("%s never answered %ld with %s", path, status, want);
}

typedef struct load {
    atomic_int stop;
    atomic_long ok, failed, mixed;
} load;

static void *client(void *arg)
{
    load *l = arg;
    while (!atomic_load(&l->stop)) {
        e2e_response res;
        int rc = e2e_request(&srv, E2E_HTTP1, "GET", "/greet", NULL, NULL, 0, &res);
        if (rc != 0 || res.status != 200) {
            atomic_fetch_add(&l->failed, 1);
        } else {
            /* {"first":"vN","second":"vN",...}: both from the same version. */
            const char *a = strstr(res.body, "\"first\":\"v"), *b = strstr(res.body, "\"second\":\"v");
            if (a == NULL || b == NULL || a[10] != b[11])
                atomic_fetch_add(&l->mixed, 1);
            else
                atomic_fetch_add(&l->ok, 1);
        }
        e2e_response_release(&res);
    }
    return NULL;
}

static void test_reloads_under_load_fail_nothing(void **state)
{
    load l = {0};
    pthread_t clients[4];
    for (int i = 0; i < 4; ++i)
        pthread_create(&clients[i], NULL, client, &l);
    for (int i = 0; i < 50; ++i) {
        char lua[512];
        greet_lua(lua, sizeof(lua), i % 2 == 0 ? 2 : 1);
        write_file("fn/greet.lua", lua);
        e2e_response res;
        assert_int_equal(admin_request("POST", "/admin/reload", &res), 0);
        assert_int_equal(res.status, 200);
        e2e_response_release(&res);
    }
    usleep(200000);
    atomic_store(&l.stop, 1);
    for (int i = 0; i < 4; ++i)
        pthread_join(clients[i], NULL);
    print_message("under load: %ld answers, %ld failed, %ld mixed\n", atomic_load(&l.ok), atomic_load(&l.failed),
                  atomic_load(&l.mixed));
    assert_int_equal(atomic_load(&l.failed), 0);
    assert_int_equal(atomic_load(&l.mixed), 0);
    assert_true(atomic_load(&l.ok) > 50);
    wait_for("/greet", 200, "\"first\":\"v1\""); /* the 50th reload put v1 back */
}

static long config_version(void)
{
    e2e_response res;
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", "/greet", NULL, NULL, 0, &res), 0);
    char *v = e2e_header(&res, "x-bffgate-config");
    assert_non_null(v);
    long n = atol(v);
    free(v);
    e2e_response_release(&res);
    return n;
}

static void test_file_change_reloads(void **state)
{
    long before = config_version();
    char lua[512];
    greet_lua(lua, sizeof(lua), 3);
    write_file("fn/greet.lua", lua);
    wait_for("/greet", 200, "\"first\":\"v3\"");
    /* Each response says which config version served it. */
    assert_true(config_version() > before);
}

static void test_broken_change_keeps_serving(void **state)
{
    write_file("fn/greet.lua", "return { handler = function(event, ctx)\n  return { first = \n");
    usleep(300000);
    /* Still the last good version. */
    wait_for("/greet", 200, "\"first\":\"v3\"");
    e2e_response res;
    assert_int_equal(admin_request("GET", "/admin/status", &res), 0);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body, "\"ok\":false"));
    assert_non_null(strstr(res.body, "greet.lua:3:"));
    assert_null(strstr(res.body, "\"reloadFailures\":0"));
    e2e_response_release(&res);
    /* An explicit reload reports the error too, and changes nothing. */
    assert_int_equal(admin_request("POST", "/admin/reload", &res), 0);
    assert_int_equal(res.status, 422);
    assert_non_null(strstr(res.body, "\"errors\":["));
    e2e_response_release(&res);
    /* Fixing the file brings the new version. */
    char lua[512];
    greet_lua(lua, sizeof(lua), 4);
    write_file("fn/greet.lua", lua);
    wait_for("/greet", 200, "\"first\":\"v4\"");
}

static void test_c_function_and_routes_change_live(void **state)
{
    wait_for("/c", 200, "hello from C");
    /* Another object under the same path, another symbol, and a new route. */
    copy_file(FIXTURE_DIR "/slow.so", "obj/fn.so");
    char web[512];
    snprintf(web, sizeof(web), web_json, ",\n  {\"path\": \"/added\", \"function\": \"greet\"}");
    write_file("frontends/web.json", web);
    write_gateway("sleepy");
    wait_for("/c?ms=1", 200, "{\"slept\":1}");
    wait_for("/added", 200, "\"first\":\"v4\"");
}

static int count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    int n = 0;
    while (d != NULL && readdir(d) != NULL)
        ++n;
    if (d != NULL)
        closedir(d);
    return n;
}

/* Mapped private copies of C objects (they are unlinked once mapped, so they show as deleted). */
static int count_objects(pid_t pid)
{
    char path[64], line[1024], last[1024] = "";
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        const char *name = strstr(line, "bffgate-objects-");
        if (name != NULL && strcmp(name, last) != 0) {
            ++n;
            snprintf(last, sizeof(last), "%s", name);
        }
    }
    if (f != NULL)
        fclose(f);
    return n;
}

static void reload_changing_everything(int i)
{
    char lua[512];
    greet_lua(lua, sizeof(lua), 10 + i % 2);
    write_file("fn/greet.lua", lua);
    copy_file(i % 2 == 0 ? EXAMPLES_DIR "/hello.so" : FIXTURE_DIR "/slow.so", "obj/fn.so");
    write_gateway(i % 2 == 0 ? "hello" : "sleepy");
    e2e_response res;
    assert_int_equal(admin_request("POST", "/admin/reload", &res), 0);
    assert_int_equal(res.status, 200);
    e2e_response_release(&res);
    /* One request per worker thread or so, so each drops the previous snapshot. */
    for (int k = 0; k < 4; ++k) {
        assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", "/greet", NULL, NULL, 0, &res), 0);
        e2e_response_release(&res);
    }
}

static void test_no_leaks_after_many_reloads(void **state)
{
    for (int i = 0; i < 20; ++i)
        reload_changing_everything(i);
    usleep(300000);
    int fds = count_fds(srv.pid), objects = count_objects(srv.pid);
    long rss = e2e_rss_kb(srv.pid);
    for (int i = 0; i < 200; ++i)
        reload_changing_everything(i);
    usleep(300000);
    int fds_after = count_fds(srv.pid), objects_after = count_objects(srv.pid);
    long rss_after = e2e_rss_kb(srv.pid);
    print_message("after 200 reloads: fds %d -> %d, C objects %d -> %d, RSS %ld -> %ld kB\n", fds, fds_after, objects,
                  objects_after, rss, rss_after);
    assert_true(fds_after <= fds + 2); /* an inotify watch or a socket may come and go */
    assert_int_equal(objects_after, objects);
    const char *sanitize = getenv("BFFGATE_SANITIZE");
    if (sanitize == NULL || strcmp(sanitize, "none") == 0 || sanitize[0] == '\0')
        assert_true(rss_after - rss < 4 * 1024);
}

static void test_configmap_symlink_swap(void **state)
{
    /* A second server on a Kubernetes ConfigMap layout: files are symlinks into ..data, which is
     * swapped atomically to a new timestamped directory. */
    e2e_server cm;
    e2e_init(&cm);
    e2e_pick_port(&cm);
    char lua[512];
    greet_lua(lua, sizeof(lua), 7);
    e2e_write(&cm, "..2026_11_28_a/fn/greet.lua", lua);
    e2e_write(&cm, "..2026_11_28_a/gateway.json",
              "{\"server\": {\"listen\": [{\"address\": \"127.0.0.1\", \"port\": @PORT@}], \"threads\": 1},\n"
              " \"functions\": {\"greet\": {\"lua\": \"fn/greet.lua\"}}, \"frontends\": [\"web.json\"]}\n");
    e2e_write(&cm, "..2026_11_28_a/web.json",
              "{\"name\": \"web\", \"routes\": [{\"path\": \"/greet\", \"function\": \"greet\"}]}\n");
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && ln -s ..2026_11_28_a ..data && ln -s ..data/gateway.json gateway.json && "
             "ln -s ..data/web.json web.json && ln -s ..data/fn fn",
             cm.dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(e2e_start(&cm, NULL), 0);
    e2e_server saved = srv;
    srv = cm;
    wait_for("/greet", 200, "\"first\":\"v7\"");
    /* The swap, as the kubelet does it. */
    greet_lua(lua, sizeof(lua), 8);
    e2e_write(&cm, "..2026_11_28_b/fn/greet.lua", lua);
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && cp ..2026_11_28_a/gateway.json ..2026_11_28_a/web.json ..2026_11_28_b/ && "
             "ln -s ..2026_11_28_b ..data_tmp && mv -T ..data_tmp ..data && rm -rf ..2026_11_28_a",
             cm.dir);
    assert_int_equal(system(cmd), 0);
    wait_for("/greet", 200, "\"first\":\"v8\"");
    srv = saved;
    assert_int_equal(e2e_stop(&cm, SIGTERM), 0);
    e2e_cleanup(&cm);
}

static void test_rollback(void **state)
{
    char lua[512];
    greet_lua(lua, sizeof(lua), 6);
    write_file("fn/greet.lua", lua);
    e2e_response res;
    assert_int_equal(admin_request("POST", "/admin/reload", &res), 0);
    assert_int_equal(res.status, 200);
    e2e_response_release(&res);
    wait_for("/greet", 200, "\"first\":\"v6\"");
    /* Back to the version before (v5, from the SIGHUP test), while the files still say v6. */
    assert_int_equal(admin_request("POST", "/admin/rollback", &res), 0);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body, "\"ok\":true"));
    e2e_response_release(&res);
    wait_for("/greet", 200, "\"first\":\"v5\"");
    /* A second rollback goes forward again. */
    assert_int_equal(admin_request("POST", "/admin/rollback", &res), 0);
    e2e_response_release(&res);
    wait_for("/greet", 200, "\"first\":\"v6\"");
}

static void test_sighup_reloads(void **state)
{
    char lua[512];
    greet_lua(lua, sizeof(lua), 5);
    write_file("fn/greet.lua", lua);
    kill(srv.pid, SIGHUP);
    wait_for("/greet", 200, "\"first\":\"v5\"");
    e2e_response res;
    assert_int_equal(admin_request("GET", "/admin/status", &res), 0);
    assert_non_null(strstr(res.body, "\"functions\":[{\"name\":\"greet\""));
    e2e_response_release(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reloads_under_load_fail_nothing),
        cmocka_unit_test(test_file_change_reloads),
        cmocka_unit_test(test_broken_change_keeps_serving),
        cmocka_unit_test(test_c_function_and_routes_change_live),
        cmocka_unit_test(test_sighup_reloads),
        cmocka_unit_test(test_rollback),
        cmocka_unit_test(test_no_leaks_after_many_reloads),
        cmocka_unit_test(test_configmap_symlink_swap),
    };
    return cmocka_run_group_tests_name("e2e/reload", tests, group_setup, group_teardown);
}
