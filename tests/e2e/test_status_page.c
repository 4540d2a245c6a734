/* test_status_page: the admin status page and /admin/stats, rendered by headless Chromium; the Grafana dashboard. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#ifndef SCREENSHOT_DIR
#error "SCREENSHOT_DIR must be defined by the build"
#endif
#ifndef DEPLOY_DIR
#error "DEPLOY_DIR must be defined by the build"
#endif

#define CHROMIUM "/usr/bin/chromium"

static e2e_server srv;
static e2e_server scratch; /* Chromium's profiles and outputs: outside the config dir, which bffgate watches */
static int admin_port;

static const char gateway_json[] =
    "{\"server\": {\"listen\": [{\"address\": \"127.0.0.1\", \"port\": @PORT@}], \"threads\": 2,\n"
    "            \"admin\": {\"port\": @ADMIN@}, \"log_file\": \"gateway.log\"},\n"
    " \"functions\": {\"ok\": {\"lua\": \"ok.lua\"}, \"item\": {\"lua\": \"item.lua\"},\n"
    "               \"missing\": {\"lua\": \"missing.lua\"}, \"boom\": {\"lua\": \"boom.lua\"}},\n"
    " \"upstreams\": {\"users\": {\"url\": \"http://127.0.0.1:9\"}},\n" /* its series exist from the start */
    " \"frontends\": [\"web.json\", \"mobile.json\"]}\n";

static const char web_json[] = "{\"name\": \"web\", \"match\": {\"path_prefix\": \"/web\"}, \"routes\": [\n"
                               "  {\"path\": \"/ok\", \"function\": \"ok\"},\n"
                               "  {\"path\": \"/items/{id}\", \"function\": \"item\"},\n"
                               "  {\"path\": \"/boom\", \"function\": \"boom\"}\n"
                               "]}\n";

static const char mobile_json[] = "{\"name\": \"mobile\", \"match\": {\"path_prefix\": \"/mobile\"}, \"routes\": [\n"
                                  "  {\"path\": \"/ok\", \"function\": \"ok\"},\n"
                                  "  {\"path\": \"/missing\", \"function\": \"missing\"}\n"
                                  "]}\n";

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_ALL);
    e2e_init(&srv);
    e2e_pick_port(&srv);
    e2e_pick_admin_port(&srv);
    admin_port = srv.admin_port;
    e2e_init(&scratch);
    e2e_write(&srv, "gateway.json", gateway_json);
    e2e_write(&srv, "web.json", web_json);
    e2e_write(&srv, "mobile.json", mobile_json);
    e2e_write(&srv, "ok.lua", "return { handler = function() return { ok = true } end }\n");
    e2e_write(&srv, "item.lua",
              "return { handler = function(e, ctx) ctx.sleep(2) return { id = e.pathParameters.id } end }\n");
    e2e_write(&srv, "missing.lua",
              "return { handler = function() return { statusCode = 404, body = { error = 'no' } } end }\n");
    e2e_write(&srv, "boom.lua", "return { handler = function() error('boom') end }\n");
    int rc = e2e_start(&srv, NULL);
    admin_port = srv.admin_port; /* bound by the server (the config says 0) */
    return rc;
}

static int group_teardown(void **state)
{
    if (srv.pid > 0)
        e2e_stop(&srv, SIGTERM);
    e2e_cleanup(&srv);
    e2e_cleanup(&scratch);
    curl_global_cleanup();
    return 0;
}

static long get_status(const char *path)
{
    e2e_response res;
    if (e2e_request(&srv, E2E_HTTP1, "GET", path, NULL, NULL, 0, &res) != 0)
        return -1;
    long status = res.status;
    e2e_response_release(&res);
    return status;
}

static void admin_get(const char *path, e2e_response *res)
{
    e2e_server admin = srv;
    admin.port = admin_port;
    assert_int_equal(e2e_request(&admin, E2E_HTTP1, "GET", path, NULL, NULL, 0, res), 0);
    assert_int_equal(res->status, 200);
}

static json_t *admin_json(const char *path)
{
    e2e_response res;
    admin_get(path, &res);
    json_error_t err;
    json_t *doc = json_loads(res.body, 0, &err);
    if (doc == NULL)
        fail_msg("%s is not JSON (%s): %s", path, err.text, res.body);
    e2e_response_release(&res);
    return doc;
}

/* The route object of frontend/path in an /admin/stats document, or NULL. */
static json_t *stats_route(json_t *stats, const char *frontend, const char *path)
{
    size_t i, j;
    json_t *fe, *route;
    json_array_foreach(json_object_get(stats, "frontends"), i, fe)
    {
        if (strcmp(json_string_value(json_object_get(fe, "name")), frontend) != 0)
            continue;
        json_array_foreach(json_object_get(fe, "routes"), j, route)
        {
            if (strcmp(json_string_value(json_object_get(route, "path")), path) == 0)
                return route;
        }
    }
    return NULL;
}

static json_int_t requests_of(json_t *route, const char *cls)
{
    return json_integer_value(json_object_get(json_object_get(route, "requests"), cls));
}

/* The count of the +Inf bucket (every request), after checking the buckets' shape. */
static json_int_t checked_total(json_t *route)
{
    json_t *buckets = json_object_get(route, "durationBuckets");
    assert_true(json_array_size(buckets) >= 2);
    json_int_t previous = 0;
    double previous_le = 0;
    size_t i;
    json_t *b;
    json_array_foreach(buckets, i, b)
    {
        json_t *le = json_object_get(b, "le");
        json_int_t count = json_integer_value(json_object_get(b, "count"));
        assert_true(count >= previous); /* cumulative */
        previous = count;
        if (i + 1 < json_array_size(buckets)) {
            assert_true(json_is_number(le));
            assert_true(json_number_value(le) > previous_le);
            previous_le = json_number_value(le);
        } else {
            assert_string_equal(json_string_value(le), "+Inf");
        }
    }
    return previous;
}

static void test_status_page_is_self_contained_html(void **state)
{
    e2e_response res;
    admin_get("/", &res);
    char *type = e2e_header(&res, "content-type");
    assert_non_null(type);
    assert_non_null(strstr(type, "text/html"));
    free(type);
    char *csp = e2e_header(&res, "content-security-policy");
    assert_non_null(csp);
    assert_non_null(strstr(csp, "default-src 'none'"));
    free(csp);
    const char *html = res.body;
    assert_non_null(strstr(html, "<!doctype html>"));
    assert_non_null(strstr(html, "<style>"));
    assert_non_null(strstr(html, "<script>"));
    assert_non_null(strstr(html, "/admin/stats"));
    assert_non_null(strstr(html, "/admin/routes"));
    /* Nothing from another host: no absolute URLs at all, no external scripts, styles or imports. */
    for (const char *scheme = "http://"; scheme != NULL; scheme = strcmp(scheme, "http://") == 0 ? "https://" : NULL) {
        const char *hit = strstr(html, scheme);
        if (hit != NULL)
            fail_msg("the page references %.60s", hit);
    }
    assert_null(strstr(html, "src="));
    assert_null(strstr(html, "@import"));
    assert_null(strstr(html, "url("));
    for (const char *href = strstr(html, "href=\""); href != NULL; href = strstr(href + 6, "href=\"")) {
        const char *url = href + 6;
        int relative = url[0] == '/' && url[1] != '/';
        if (!relative && strncmp(url, "data:", 5) != 0)
            fail_msg("the page links to %.60s", url);
    }
    e2e_response_release(&res);

    admin_get("/?refresh=1", &res); /* the query does not matter */
    assert_non_null(strstr(res.body, "<!doctype html>"));
    e2e_response_release(&res);
}

static void test_stats_counts_move_with_requests(void **state)
{
    json_t *routes = admin_json("/admin/routes");
    json_t *before = admin_json("/admin/stats");
    assert_true(json_is_number(json_object_get(before, "monotonicSeconds")));
    assert_true(json_number_value(json_object_get(before, "startedSeconds")) > 0);
    assert_true(json_number_value(json_object_get(before, "startedSeconds")) <=
                json_number_value(json_object_get(before, "monotonicSeconds")));
    size_t i, j;
    json_t *fe, *route;
    int listed = 0;
    json_array_foreach(json_object_get(routes, "frontends"), i, fe)
    {
        json_array_foreach(json_object_get(fe, "routes"), j, route)
        {
            const char *name = json_string_value(json_object_get(fe, "name"));
            const char *path = json_string_value(json_object_get(route, "path"));
            if (stats_route(before, name, path) == NULL)
                fail_msg("/admin/stats lacks %s %s", name, path);
            ++listed;
        }
    }
    assert_int_equal(listed, 5);
    json_int_t ok2xx = requests_of(stats_route(before, "web", "/ok"), "2xx");
    json_int_t ok_total = checked_total(stats_route(before, "web", "/ok"));
    json_int_t mobile_ok = requests_of(stats_route(before, "mobile", "/ok"), "2xx");
    json_int_t boom5xx = requests_of(stats_route(before, "web", "/boom"), "5xx");
    json_int_t missing4xx = requests_of(stats_route(before, "mobile", "/missing"), "4xx");
    double item_sum = json_number_value(json_object_get(stats_route(before, "web", "/items/{id}"), "durationSum"));

    for (int n = 0; n < 3; ++n)
        assert_int_equal(get_status("/web/ok"), 200);
    assert_int_equal(get_status("/web/boom"), 500);
    assert_int_equal(get_status("/mobile/missing"), 404);
    assert_int_equal(get_status("/web/items/7"), 200);

    json_t *after = admin_json("/admin/stats");
    assert_int_equal(requests_of(stats_route(after, "web", "/ok"), "2xx"), ok2xx + 3);
    assert_int_equal(checked_total(stats_route(after, "web", "/ok")), ok_total + 3);
    assert_int_equal(requests_of(stats_route(after, "mobile", "/ok"), "2xx"), mobile_ok); /* another frontend */
    assert_int_equal(requests_of(stats_route(after, "web", "/boom"), "5xx"), boom5xx + 1);
    assert_int_equal(requests_of(stats_route(after, "mobile", "/missing"), "4xx"), missing4xx + 1);
    /* The function sleeps 2 ms: the sum grows by at least that, and the 1 ms bucket did not take it. */
    json_t *item = stats_route(after, "web", "/items/{id}");
    assert_true(json_number_value(json_object_get(item, "durationSum")) >= item_sum + 0.002);
    json_t *first_buckets = json_object_get(item, "durationBuckets");
    assert_true(json_integer_value(json_object_get(json_array_get(first_buckets, 1), "count")) < checked_total(item));
    assert_true(json_number_value(json_object_get(after, "monotonicSeconds")) >=
                json_number_value(json_object_get(before, "monotonicSeconds")));
    json_decref(after);
    json_decref(before);
    json_decref(routes);
}

/* Requests to the traffic port until told to stop, so the page has rates and latencies to show. */
static atomic_int traffic_stop;

static void *traffic(void *arg)
{
    static const char *const paths[] = {"/web/ok",         "/web/items/1", "/web/ok",  "/mobile/ok",
                                        "/mobile/missing", "/web/ok",      "/web/boom"};
    for (unsigned n = 0; !atomic_load(&traffic_stop); ++n) {
        get_status(paths[n % (sizeof(paths) / sizeof(paths[0]))]);
        usleep(3000);
    }
    return NULL;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)len + 1);
    size_t got = fread(data, 1, (size_t)len, f);
    data[got] = '\0';
    fclose(f);
    return data;
}

/* Not a skip: the page's rendering is part of what this suite checks. */
static void require_chromium(void)
{
    if (access(CHROMIUM, X_OK) != 0)
        fail_msg("headless Chromium is needed for this test and %s is not installed: run scripts/setup.sh "
                 "(or apt-get install chromium)",
                 CHROMIUM);
}

/*
 * Runs headless Chromium on the status page with a fresh profile (under the scratch dir) and the
 * extra argument `mode` (--dump-dom or --screenshot=...); stdout goes to out_path. Virtual time lets
 * the page poll a few times without the test waiting for it. Returns the exit status, or -1 when it
 * could not be run or hung (killed after 90 s).
 */
static int run_chromium(const char *mode, const char *out_path)
{
    static int runs;
    char profile[400], url[64], profile_arg[420], err_path[420];
    snprintf(profile, sizeof(profile), "%s/chromium-%d", scratch.dir, ++runs);
    if (mkdir(profile, 0700) != 0)
        return -1;
    snprintf(profile_arg, sizeof(profile_arg), "--user-data-dir=%s", profile);
    snprintf(err_path, sizeof(err_path), "%s.log", profile);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", admin_port);
    const char *const argv[] = {CHROMIUM,
                                "--headless",
                                "--no-sandbox",
                                "--disable-gpu",
                                "--disable-quic",
                                "--no-first-run",
                                "--disable-background-networking",
                                "--disable-component-update",
                                "--disable-sync",
                                profile_arg,
                                "--virtual-time-budget=5000",
                                "--window-size=1280,900",
                                mode,
                                url,
                                NULL};
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid(0, 0); /* so a hung browser and its helpers can be killed together */
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0 || err < 0)
            _exit(126);
        dup2(out, 1);
        dup2(err, 2);
        setenv("HOME", profile, 1); /* keep caches and crash reports out of the real home */
        setenv("XDG_CONFIG_HOME", profile, 1);
        setenv("XDG_CACHE_HOME", profile, 1);
        execv(CHROMIUM, (char *const *)argv);
        _exit(127);
    }
    setpgid(pid, pid);
    int status = -1;
    for (int waited_ms = 0; waited_ms < 90000; waited_ms += 50) {
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid)
            break;
        usleep(50000);
    }
    int rc;
    if (waitpid(pid, &status, WNOHANG) == 0) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
        rc = -1;
    } else {
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (rc != 0) {
        char *log = read_file(err_path);
        fprintf(stderr, "chromium exited with %d; its log:\n%s\n", rc, log != NULL ? log : "(none)");
        free(log);
    }
    return rc;
}

/* Text of the first element whose opening tag ends with `attr_tail` (e.g. `class="num lat p50">`), or "". */
static void cell_after(const char *dom, const char *attr_tail, char *out, size_t cap)
{
    out[0] = '\0';
    const char *at = strstr(dom, attr_tail);
    if (at == NULL)
        return;
    at += strlen(attr_tail);
    size_t n = 0;
    while (at[n] != '\0' && at[n] != '<' && n + 1 < cap) {
        out[n] = at[n];
        ++n;
    }
    out[n] = '\0';
}

static void test_chromium_renders_routes_and_latencies(void **state)
{
    require_chromium();
    for (int n = 0; n < 20; ++n)
        get_status("/web/items/2");
    atomic_store(&traffic_stop, 0);
    pthread_t t;
    pthread_create(&t, NULL, traffic, NULL);
    char dom_path[400];
    snprintf(dom_path, sizeof(dom_path), "%s/dom.html", scratch.dir);
    int rc = run_chromium("--dump-dom", dom_path);
    atomic_store(&traffic_stop, 1);
    pthread_join(t, NULL);
    assert_int_equal(rc, 0);
    char *dom = read_file(dom_path);
    assert_non_null(dom);
    /* The tables were built from /admin/routes ... */
    assert_non_null(strstr(dom, ">/items/{id}<"));
    assert_non_null(strstr(dom, ">/missing<"));
    assert_non_null(strstr(dom, ">/boom<"));
    assert_non_null(strstr(dom, ">mobile<"));
    assert_non_null(strstr(dom, "id=\"version\">1<"));
    /* ... and filled from /admin/stats: the first row (web /ok, which had traffic) has a rate and
     * latencies with a unit. */
    char cell[64];
    cell_after(dom, "class=\"num req\">", cell, sizeof(cell));
    assert_true(isdigit((unsigned char)cell[0]));
    cell_after(dom, "class=\"num lat p50\">", cell, sizeof(cell));
    if (!isdigit((unsigned char)cell[0]) || (strstr(cell, " ms") == NULL && strstr(cell, " s") == NULL))
        fail_msg("no p50 latency in the rendered page: \"%s\"", cell);
    cell_after(dom, "class=\"num lat p99\">", cell, sizeof(cell));
    assert_true(isdigit((unsigned char)cell[0]));
    /* The chart cell of a route with traffic holds an SVG drawn by the page. */
    assert_non_null(strstr(dom, "<svg"));
    assert_non_null(strstr(dom, "class=\"dot ok\""));
    free(dom);
}

static void test_chromium_screenshot(void **state)
{
    require_chromium();
    atomic_store(&traffic_stop, 0);
    pthread_t t;
    pthread_create(&t, NULL, traffic, NULL);
    char png[512], arg[560], out[400];
    snprintf(png, sizeof(png), "%s/status_page.png", SCREENSHOT_DIR);
    snprintf(arg, sizeof(arg), "--screenshot=%s", png);
    snprintf(out, sizeof(out), "%s/screenshot.out", scratch.dir);
    unlink(png);
    int rc = run_chromium(arg, out);
    atomic_store(&traffic_stop, 1);
    pthread_join(t, NULL);
    assert_int_equal(rc, 0);
    struct stat st;
    if (stat(png, &st) != 0)
        fail_msg("no screenshot at %s", png);
    assert_true(st.st_size > 1000);
    char *data = read_file(png);
    assert_memory_equal(data, "\x89PNG\r\n\x1a\n", 8);
    free(data);
    fprintf(stderr, "screenshot: %s (%lld bytes)\n", png, (long long)st.st_size);
}

/* Every metric a dashboard query names must be one /metrics exports. */
static void check_expr_metrics(const char *expr, const char *metrics)
{
    for (const char *p = expr; *p != '\0'; ++p) {
        if ((strncmp(p, "bffgate_", 8) != 0 && strncmp(p, "process_", 8) != 0) ||
            (p > expr && (isalnum((unsigned char)p[-1]) || p[-1] == '_')))
            continue;
        char name[128], line_start[140];
        size_t n = 0;
        while ((isalnum((unsigned char)p[n]) || p[n] == '_') && n + 1 < sizeof(name)) {
            name[n] = p[n];
            ++n;
        }
        name[n] = '\0';
        snprintf(line_start, sizeof(line_start), "\n%s", name);
        const char *hit = strstr(metrics, line_start);
        if (hit == NULL || (hit[n + 1] != '{' && hit[n + 1] != ' '))
            fail_msg("the dashboard queries %s, which /metrics does not export (in: %s)", name, expr);
        p += n - 1;
    }
}

static void test_grafana_dashboard_is_valid(void **state)
{
    json_error_t err;
    json_t *dash = json_load_file(DEPLOY_DIR "/grafana-dashboard.json", 0, &err);
    if (dash == NULL)
        fail_msg("deploy/grafana-dashboard.json: line %d: %s", err.line, err.text);
    assert_true(json_is_string(json_object_get(dash, "title")));
    assert_true(json_is_string(json_object_get(dash, "uid")));
    /* A Prometheus data source variable that every query uses. */
    size_t i;
    json_t *v, *ds_var = NULL;
    json_array_foreach(json_object_get(json_object_get(dash, "templating"), "list"), i, v)
    {
        const char *type = json_string_value(json_object_get(v, "type"));
        const char *query = json_string_value(json_object_get(v, "query"));
        if (type != NULL && strcmp(type, "datasource") == 0 && query != NULL && strcmp(query, "prometheus") == 0)
            ds_var = v;
    }
    assert_non_null(ds_var);
    char ds_ref[80];
    snprintf(ds_ref, sizeof(ds_ref), "${%s}", json_string_value(json_object_get(ds_var, "name")));

    e2e_response res;
    admin_get("/metrics", &res);
    char *metrics = malloc(res.body_len + 2);
    metrics[0] = '\n';
    memcpy(metrics + 1, res.body, res.body_len + 1);
    e2e_response_release(&res);

    static const char *const wanted[] = {"bffgate_requests_total",
                                         "bffgate_route_duration_seconds_bucket",
                                         "bffgate_throttled_total",
                                         "bffgate_timeouts_total",
                                         "bffgate_memory_limit_total",
                                         "bffgate_inflight",
                                         "bffgate_queued",
                                         "bffgate_reloads_total",
                                         "bffgate_reload_failures_total",
                                         "process_resident_memory_bytes",
                                         "process_open_fds",
                                         "bffgate_upstream_calls_total",
                                         "bffgate_upstream_duration_seconds_bucket"};
    int seen[sizeof(wanted) / sizeof(wanted[0])] = {0};
    size_t targets = 0, p, k;
    json_t *panel, *target;
    json_array_foreach(json_object_get(dash, "panels"), p, panel)
    {
        json_array_foreach(json_object_get(panel, "targets"), k, target)
        {
            const char *expr = json_string_value(json_object_get(target, "expr"));
            assert_non_null(expr);
            const char *uid = json_string_value(json_object_get(json_object_get(target, "datasource"), "uid"));
            if (uid == NULL)
                uid = json_string_value(json_object_get(json_object_get(panel, "datasource"), "uid"));
            if (uid == NULL || strcmp(uid, ds_ref) != 0)
                fail_msg("panel \"%s\" does not query the data source variable %s",
                         json_string_value(json_object_get(panel, "title")), ds_ref);
            check_expr_metrics(expr, metrics);
            for (size_t w = 0; w < sizeof(wanted) / sizeof(wanted[0]); ++w)
                seen[w] |= strstr(expr, wanted[w]) != NULL;
            ++targets;
        }
    }
    assert_true(targets >= 10);
    for (size_t w = 0; w < sizeof(wanted) / sizeof(wanted[0]); ++w)
        if (!seen[w])
            fail_msg("no dashboard panel shows %s", wanted[w]);
    free(metrics);
    json_decref(dash);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_page_is_self_contained_html),
        cmocka_unit_test(test_stats_counts_move_with_requests),
        cmocka_unit_test(test_chromium_renders_routes_and_latencies),
        cmocka_unit_test(test_chromium_screenshot),
        cmocka_unit_test(test_grafana_dashboard_is_valid),
    };
    return cmocka_run_group_tests_name("e2e/status_page", tests, group_setup, group_teardown);
}
