/* test_cors_browser: CORS as a browser enforces it: headless Chromium calls a JWT frontend from two origins. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <jwt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define CHROMIUM "/usr/bin/chromium"
#define SECRET "e2e-cors-secret-0123456789-abcdefg"
/* Appears in the page only once the API's answer has been read (the token carries it base64url-encoded). */
#define SUBJECT "cors-subject-7f3e"

static e2e_server srv;
static e2e_server scratch; /* Chromium's profiles and outputs: outside the config dir, which bffgate watches */

static const char gateway_json[] =
    "{\"server\": {\"listen\": [{\"address\": \"127.0.0.1\", \"port\": @PORT@}], \"threads\": 2},\n"
    " \"functions\": {\"me\": {\"lua\": \"me.lua\"}, \"page\": {\"lua\": \"page.lua\"}},\n"
    " \"frontends\": [\"pages.json\", \"web.json\"]}\n";

/* The page's own frontend: no auth, no CORS, same origin as whatever host name the browser used. */
static const char pages_json[] = "{\"name\": \"pages\", \"match\": {\"path_prefix\": \"/pages\"},\n"
                                 " \"routes\": [{\"path\": \"/app\", \"function\": \"page\"}]}\n";

/* %s: the one allowed origin. */
static const char web_json[] =
    "{\"name\": \"web\", \"match\": {\"path_prefix\": \"/web\"},\n"
    " \"cors\": {\"origins\": [\"%s\"], \"allow_headers\": [\"authorization\"]},\n"
    " \"auth\": {\"jwt\": {\"keys\": [{\"alg\": \"HS256\", \"secret_env\": \"BFFGATE_E2E_CORS_SECRET\"}]}},\n"
    " \"routes\": [{\"path\": \"/me\", \"function\": \"me\"}]}\n";

static const char me_lua[] = "return { handler = function(event) return { sub = event.claims.sub } end }\n";

/*
 * %s: the bearer token. The page calls the API on another host name (api.test, the same server) with an
 * Authorization header, so the browser must preflight; it writes what happened into the body, which
 * --dump-dom prints: "RESULT:OK:<sub>", "RESULT:HTTP<status>", or "RESULT:<error name>" (TypeError when
 * CORS blocks the call).
 */
static const char page_lua[] =
    "local page = [==[<!doctype html>\n"
    "<html><head><title>cors</title></head><body>PENDING<script>\n"
    "fetch('http://api.test:' + location.port + '/web/me', {headers: {Authorization: 'Bearer %s'}})\n"
    "  .then(function (r) { return r.ok ? r.json().then(function (j) { return 'OK:' + j.sub; }) : 'HTTP' + "
    "r.status; })\n"
    "  .then(function (s) { document.body.textContent = 'RESULT:' + s; },\n"
    "        function (e) { document.body.textContent = 'RESULT:' + e.name; });\n"
    "</script></body></html>\n"
    "]==]\n"
    "return { handler = function()\n"
    "  return { statusCode = 200, headers = { ['content-type'] = 'text/html; charset=utf-8' }, body = page }\n"
    "end }\n";

static char *mint_token(void)
{
    jwt_t *j = NULL;
    if (jwt_new(&j) != 0)
        return NULL;
    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)SECRET, (int)strlen(SECRET));
    jwt_add_grant(j, "sub", SUBJECT);
    jwt_add_grant_int(j, "exp", (long)time(NULL) + 600);
    char *out = jwt_encode_str(j);
    jwt_free(j);
    return out;
}

static void write_web_json(const char *origin)
{
    char text[1024];
    snprintf(text, sizeof(text), web_json, origin);
    /* Written aside and renamed into place, so the watcher never reloads a half-written file. */
    e2e_write(&srv, "web.json.tmp", text);
    char from[400], to[400];
    snprintf(from, sizeof(from), "%s/web.json.tmp", srv.dir);
    snprintf(to, sizeof(to), "%s/web.json", srv.dir);
    if (rename(from, to) != 0)
        fail_msg("rename %s: %m", from);
}

/* Status of a preflight for GET /web/me with an Authorization header from `origin`, or -1. */
static long preflight_status(const char *origin)
{
    char origin_header[200];
    snprintf(origin_header, sizeof(origin_header), "Origin: %s", origin);
    const char *const headers[] = {origin_header, "Access-Control-Request-Method: GET",
                                   "Access-Control-Request-Headers: authorization", NULL};
    e2e_response res;
    if (e2e_request(&srv, E2E_HTTP1, "OPTIONS", "/web/me", headers, NULL, 0, &res) != 0)
        return -1;
    long status = res.status;
    e2e_response_release(&res);
    return status;
}

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_ALL);
    setenv("BFFGATE_E2E_CORS_SECRET", SECRET, 1);
    e2e_init(&srv);
    e2e_init(&scratch);
    char *token = mint_token();
    if (token == NULL)
        return -1;
    char page[4096];
    snprintf(page, sizeof(page), page_lua, token);
    free(token);
    e2e_write(&srv, "gateway.json", gateway_json);
    e2e_write(&srv, "pages.json", pages_json);
    e2e_write(&srv, "me.lua", me_lua);
    e2e_write(&srv, "page.lua", page);
    /* The allowed origin names the port, which the server picks as it starts: start with a placeholder,
     * then write the real origin and wait for the reload to serve it. */
    write_web_json("http://allowed.test:1");
    if (e2e_start(&srv, NULL) != 0)
        return -1;
    char origin[100];
    snprintf(origin, sizeof(origin), "http://allowed.test:%d", srv.port);
    write_web_json(origin);
    for (int i = 0; i < 500; ++i) {
        if (preflight_status(origin) == 204)
            return 0;
        usleep(10000);
    }
    fprintf(stderr, "the preflight from %s was never answered 204\n", origin);
    return -1;
}

static int group_teardown(void **state)
{
    int rc = e2e_stop(&srv, SIGTERM);
    e2e_cleanup(&srv);
    e2e_cleanup(&scratch);
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
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

/* Not a skip: what a browser does with the gateway's CORS answers is what this suite checks. */
static void require_chromium(void)
{
    if (access(CHROMIUM, X_OK) != 0)
        fail_msg("headless Chromium is needed for this test and %s is not installed: run scripts/setup.sh "
                 "(or apt-get install chromium)",
                 CHROMIUM);
}

typedef struct browse_result {
    char *dom;        /* what --dump-dom printed */
    char netlog[420]; /* Chromium's net log (JSON) */
} browse_result;

/*
 * Opens http://<host>.test:<port>/pages/app in headless Chromium with a fresh profile, every *.test name
 * resolving to the loopback server. Virtual time lets the page's fetch finish before the DOM is dumped
 * without the test waiting for real time. Fails the test when Chromium fails or hangs (killed after 60 s).
 */
static void browse(const char *host, browse_result *out)
{
    char profile[400], profile_arg[420], netlog_arg[440], err_path[420], dom_path[420], url[128];
    snprintf(profile, sizeof(profile), "%s/chromium-%s", scratch.dir, host);
    if (mkdir(profile, 0700) != 0)
        fail_msg("mkdir %s: %m", profile);
    snprintf(profile_arg, sizeof(profile_arg), "--user-data-dir=%s", profile);
    snprintf(out->netlog, sizeof(out->netlog), "%s.netlog.json", profile);
    snprintf(netlog_arg, sizeof(netlog_arg), "--log-net-log=%s", out->netlog);
    snprintf(err_path, sizeof(err_path), "%s.log", profile);
    snprintf(dom_path, sizeof(dom_path), "%s.dom.html", profile);
    snprintf(url, sizeof(url), "http://%s.test:%d/pages/app", host, srv.port);
    const char *const argv[] = {CHROMIUM,
                                "--headless",
                                "--no-sandbox",
                                "--disable-gpu",
                                "--disable-quic",
                                "--no-first-run",
                                "--disable-background-networking",
                                "--disable-component-update",
                                "--disable-sync",
                                "--host-resolver-rules=MAP allowed.test 127.0.0.1, MAP evil.test 127.0.0.1, "
                                "MAP api.test 127.0.0.1",
                                profile_arg,
                                netlog_arg,
                                "--virtual-time-budget=5000",
                                "--dump-dom",
                                url,
                                NULL};
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork: %m");
    if (pid == 0) {
        setpgid(0, 0); /* so a hung browser and its helpers can be killed together */
        int fd_out = open(dom_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fd_err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd_out < 0 || fd_err < 0)
            _exit(126);
        dup2(fd_out, 1);
        dup2(fd_err, 2);
        setenv("HOME", profile, 1); /* keep caches and crash reports out of the real home */
        setenv("XDG_CONFIG_HOME", profile, 1);
        setenv("XDG_CACHE_HOME", profile, 1);
        execv(CHROMIUM, (char *const *)argv);
        _exit(127);
    }
    setpgid(pid, pid);
    int status = 0, rc = -1;
    for (int waited_ms = 0; waited_ms < 60000; waited_ms += 20) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        usleep(20000);
    }
    if (rc == -1) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    if (rc != 0) {
        char *log = read_file(err_path);
        fprintf(stderr, "chromium on %s exited with %d (-1: hung); its log:\n%s\n", url, rc,
                log != NULL ? log : "(none)");
        free(log);
        fail_msg("chromium failed on %s", url);
    }
    out->dom = read_file(dom_path);
    if (out->dom == NULL)
        fail_msg("no DOM from chromium for %s", url);
}

/*
 * What went over the wire for `path`, from Chromium's net log: one line per HTTP transaction,
 * "<METHOD> <path> <status>" ("-" when no response was read). malloc'd.
 */
static char *wire_transcript(const char *netlog_path, const char *path)
{
    json_error_t err;
    json_t *log = json_load_file(netlog_path, 0, &err);
    if (log == NULL)
        fail_msg("%s: line %d: %s", netlog_path, err.line, err.text);
    json_t *types = json_object_get(json_object_get(log, "constants"), "logEventTypes");
    json_int_t send_type = json_integer_value(json_object_get(types, "HTTP_TRANSACTION_SEND_REQUEST_HEADERS"));
    json_int_t read_type = json_integer_value(json_object_get(types, "HTTP_TRANSACTION_READ_RESPONSE_HEADERS"));
    if (send_type == 0 || read_type == 0)
        fail_msg("%s lacks the HTTP transaction event types", netlog_path);
    struct {
        json_int_t source;
        char request[128];
        char status[8];
    } seen[16];
    size_t nseen = 0, i;
    json_t *ev;
    char wanted[128];
    snprintf(wanted, sizeof(wanted), " %s HTTP/", path);
    json_array_foreach(json_object_get(log, "events"), i, ev)
    {
        json_int_t type = json_integer_value(json_object_get(ev, "type"));
        json_int_t source = json_integer_value(json_object_get(json_object_get(ev, "source"), "id"));
        json_t *params = json_object_get(ev, "params");
        if (type == send_type) {
            const char *line = json_string_value(json_object_get(params, "line"));
            const char *at = line != NULL ? strstr(line, wanted) : NULL;
            if (at == NULL || nseen == sizeof(seen) / sizeof(seen[0]))
                continue;
            seen[nseen].source = source;
            snprintf(seen[nseen].request, sizeof(seen[nseen].request), "%.*s %s", (int)(at - line), line, path);
            strcpy(seen[nseen].status, "-");
            ++nseen;
        } else if (type == read_type) {
            const char *status_line = json_string_value(json_array_get(json_object_get(params, "headers"), 0));
            const char *code = status_line != NULL ? strchr(status_line, ' ') : NULL;
            for (size_t k = 0; code != NULL && k < nseen; ++k) {
                if (seen[k].source == source)
                    snprintf(seen[k].status, sizeof(seen[k].status), "%.3s", code + 1);
            }
        }
    }
    json_decref(log);
    char *out = calloc(1, sizeof(seen));
    for (size_t k = 0; k < nseen; ++k) {
        strcat(out, seen[k].request);
        strcat(out, " ");
        strcat(out, seen[k].status);
        strcat(out, "\n");
    }
    return out;
}

/* Access log lines of the gateway for GET `path` answered `status` (any status when 0). */
static int access_lines(const char *path, int status)
{
    char path_field[128], status_field[32] = "\"status\":";
    snprintf(path_field, sizeof(path_field), "\"path\":\"%s\"", path);
    if (status != 0)
        snprintf(status_field, sizeof(status_field), "\"status\":%d,", status);
    char *log = e2e_log(&srv);
    int n = 0;
    for (char *line = strtok(log, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strstr(line, "\"log\":\"access\"") != NULL && strstr(line, "\"method\":\"GET\"") != NULL &&
            strstr(line, path_field) != NULL && strstr(line, status_field) != NULL)
            ++n;
    }
    free(log);
    return n;
}

static void test_allowed_origin_reads_the_api(void **state)
{
    require_chromium();
    int before = access_lines("/web/me", 200);
    browse_result r;
    browse("allowed", &r);
    char want[64];
    snprintf(want, sizeof(want), ">RESULT:OK:%s<", SUBJECT);
    if (strstr(r.dom, want) == NULL)
        fail_msg("the page from the allowed origin did not read the API's answer; its DOM:\n%s", r.dom);
    /* The browser preflighted (the Authorization header is not CORS-safelisted), the gateway allowed it,
     * and only then was the actual request sent. */
    char *wire = wire_transcript(r.netlog, "/web/me");
    assert_string_equal(wire, "OPTIONS /web/me 204\nGET /web/me 200\n");
    free(wire);
    /* The gateway served the actual request once, with the token verified. */
    int after = before;
    for (int i = 0; i < 200 && after == before; ++i) {
        usleep(10000);
        after = access_lines("/web/me", 200);
    }
    assert_int_equal(after, before + 1);
    free(r.dom);
}

static void test_other_origin_is_blocked_by_the_browser(void **state)
{
    require_chromium();
    int before = access_lines("/web/me", 0);
    browse_result r;
    browse("evil", &r);
    if (strstr(r.dom, ">RESULT:TypeError<") == NULL)
        fail_msg("the fetch from a foreign origin was not blocked; the page's DOM:\n%s", r.dom);
    assert_null(strstr(r.dom, SUBJECT));
    /* The preflight was refused, so the request carrying the token was never sent. */
    char *wire = wire_transcript(r.netlog, "/web/me");
    assert_string_equal(wire, "OPTIONS /web/me 403\n");
    free(wire);
    usleep(100000);
    assert_int_equal(access_lines("/web/me", 0), before);
    free(r.dom);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed_origin_reads_the_api),
        cmocka_unit_test(test_other_origin_is_blocked_by_the_browser),
    };
    return cmocka_run_group_tests_name("e2e/cors_browser", tests, group_setup, group_teardown);
}
