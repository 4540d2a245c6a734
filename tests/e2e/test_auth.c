/* test_auth: JWT bearer tokens per frontend against the real binary: 401s, claims to Lua, public routes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jwt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define SECRET "e2e-secret-0123456789-abcdefghij"

static e2e_server srv;
static char *rsa_public_pem;
static char *ec_private_pem;
static char *route_secret;

static const char gateway_json[] =
    "{\"server\": {\"listen\": [{\"address\": \"127.0.0.1\", \"port\": @PORT@}], \"threads\": 2},\n"
    " \"functions\": {\"me\": {\"lua\": \"me.lua\"}, \"acao\": {\"lua\": \"acao.lua\"}, \"whoami\": {\"c\": "
    "\"@EXAMPLES@/hello.so\", \"symbol\": "
    "\"whoami\"}},\n"
    " \"frontends\": [\"web.json\", \"partner.json\", \"mobile.json\"]}\n";

static const char web_json[] =
    "{\"name\": \"web\", \"match\": {\"path_prefix\": \"/web\"},\n"
    " \"cors\": {\"origins\": [\"https://shop.example\"], \"allow_headers\": [\"authorization\", \"content-type\"],\n"
    "          \"expose_headers\": [\"x-request-id\"], \"credentials\": true, \"max_age_s\": 300},\n"
    " \"auth\": {\"jwt\": {\"keys\": [{\"alg\": \"HS256\", \"secret_env\": \"BFFGATE_E2E_SECRET\"}],\n"
    "                    \"issuer\": \"https://id.example\", \"audience\": [\"web\"], \"leeway_s\": 5,\n"
    "                    \"cookie\": \"session\", \"require\": [{\"claim\": \"sub\"}]}},\n"
    " \"routes\": [{\"path\": \"/me\", \"function\": \"me\"}, {\"path\": \"/public\", \"function\": \"me\", "
    "\"auth\": false},\n"
    "  {\"path\": \"/acao\", \"function\": \"acao\", \"auth\": false},\n"
    "  {\"path\": \"/orders\", \"function\": \"me\", \"auth\": {\"require\": [{\"claim\": \"scope\", \"contains\": "
    "\"orders:read\"}]}},\n"
    "  {\"path\": \"/admin\", \"function\": \"me\", \"auth\": {\"require\": [{\"claim\": \"role\", \"equals\": "
    "\"admin\"}]}}]}\n";

static const char partner_json[] =
    "{\"name\": \"partner\", \"match\": {\"path_prefix\": \"/partner\"},\n"
    " \"auth\": {\"jwt\": {\"keys\": [{\"alg\": \"RS256\", \"kid\": \"k1\", \"public_key_file\": \"rsa.pub\"}]}},\n"
    " \"routes\": [{\"path\": \"/me\", \"function\": \"me\"}]}\n";

/* Keys from a JWKS document and a PEM EC key; a route with its own JWT settings; a rate limit per subject. */
static const char mobile_json[] =
    "{\"name\": \"mobile\", \"match\": {\"path_prefix\": \"/mobile\"},\n"
    " \"auth\": {\"jwt\": {\"keys\": [{\"jwks_file\": \"jwks.json\"},\n"
    "                             {\"alg\": \"ES256\", \"kid\": \"ec1\", \"public_key_file\": \"ec.pub\"}]}},\n"
    " \"routes\": [{\"path\": \"/me\", \"function\": \"me\"}, {\"path\": \"/c\", \"function\": \"whoami\"},\n"
    "  {\"path\": \"/limited\", \"function\": \"me\", \"rate_limit\": {\"rps\": 1, \"burst\": 2, \"by_claim\": "
    "\"sub\"}},\n"
    "  {\"path\": \"/partner-keys\", \"function\": \"me\", \"auth\": {\"jwt\": {\"keys\": [{\"alg\": \"HS384\", "
    "\"secret_file\": \"route.secret\"}], \"require\": [{\"claim\": \"scope\", \"contains\": \"partner\"}]}}}]}\n";

/* One HMAC key "m1" in JWKS form: k is the base64url of MOBILE_SECRET. */
#define MOBILE_SECRET "mobile-secret-0123456789abcdef!!"
static const char jwks_json[] =
    "{\"keys\": [{\"kty\": \"oct\", \"kid\": \"m1\", \"alg\": \"HS256\", \"use\": \"sig\",\n"
    "           \"k\": \"bW9iaWxlLXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVmISE\"},\n"
    "          {\"kty\": \"oct\", \"kid\": \"enc1\", \"alg\": \"HS256\", \"use\": \"enc\", \"k\": \"c2tpcHBlZA\"}]}\n";

/* A function that sets its own CORS header, which the gateway must not pass on next to its own. */
static const char acao_lua[] = "return { handler = function(event, ctx)\n"
                               "  return { statusCode = 200, headers = { [\"access-control-allow-origin\"] = \"*\",\n"
                               "    [\"x-kept\"] = \"yes\" }, body = \"{}\" }\n"
                               "end }\n";

static const char me_lua[] = "return { handler = function(event, ctx)\n"
                             "  local c = event.claims\n"
                             "  return { sub = c and c.sub or json.null, scope = c and c.scope or json.null }\n"
                             "end }\n";

static char *token(const char *alg_name, const unsigned char *key, size_t key_len, const char *sub, long exp_offset,
                   const char *aud)
{
    jwt_t *j = NULL;
    jwt_new(&j);
    jwt_set_alg(j, jwt_str_alg(alg_name), key, (int)key_len);
    jwt_add_grant(j, "sub", sub);
    jwt_add_grant(j, "iss", "https://id.example");
    if (aud != NULL)
        jwt_add_grant(j, "aud", aud);
    jwt_add_grant(j, "scope", "orders:read");
    jwt_add_grant_int(j, "exp", (long)time(NULL) + exp_offset);
    char *out = jwt_encode_str(j);
    jwt_free(j);
    return out;
}

/* A token with a kid, signed with `key` (a secret or a PEM private key); exp relative to now. */
static char *mint(const char *alg_name, const char *key, const char *kid, const char *sub, const char *scope,
                  long exp_offset)
{
    jwt_t *j = NULL;
    jwt_new(&j);
    jwt_set_alg(j, jwt_str_alg(alg_name), (const unsigned char *)key, (int)strlen(key));
    if (kid != NULL)
        jwt_add_header(j, "kid", kid);
    jwt_add_grant(j, "sub", sub);
    if (scope != NULL)
        jwt_add_grant(j, "scope", scope);
    jwt_add_grant_int(j, "exp", (long)time(NULL) + exp_offset);
    char *out = jwt_encode_str(j);
    jwt_free(j);
    return out;
}

static char *read_text(const char *dir, const char *name)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *text = calloc(1, 8192);
    size_t n = fread(text, 1, 8191, f);
    fclose(f);
    if (n == 0) {
        free(text);
        return NULL;
    }
    return text;
}

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_ALL);
    setenv("BFFGATE_E2E_SECRET", SECRET, 1);
    e2e_init(&srv);
    e2e_pick_port(&srv);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s/rsa.key 2>/dev/null && "
             "openssl pkey -in %s/rsa.key -pubout -out %s/rsa.pub 2>/dev/null && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s/ec.key 2>/dev/null && "
             "openssl pkey -in %s/ec.key -pubout -out %s/ec.pub 2>/dev/null",
             srv.dir, srv.dir, srv.dir, srv.dir, srv.dir, srv.dir);
    if (system(cmd) != 0)
        return -1;
    rsa_public_pem = read_text(srv.dir, "rsa.pub");
    ec_private_pem = read_text(srv.dir, "ec.key");
    route_secret = strdup("route-secret-v1-0123456789abcdefghijklmnop");
    if (rsa_public_pem == NULL || ec_private_pem == NULL)
        return -1;
    e2e_write(&srv, "mobile.json", mobile_json);
    e2e_write(&srv, "jwks.json", jwks_json);
    e2e_write(&srv, "route.secret", route_secret);
    e2e_write(&srv, "gateway.json", gateway_json);
    e2e_write(&srv, "web.json", web_json);
    e2e_write(&srv, "partner.json", partner_json);
    e2e_write(&srv, "me.lua", me_lua);
    e2e_write(&srv, "acao.lua", acao_lua);
    return e2e_start(&srv, NULL);
}

static int group_teardown(void **state)
{
    int rc = e2e_stop(&srv, SIGTERM);
    e2e_cleanup(&srv);
    free(rsa_public_pem);
    free(ec_private_pem);
    free(route_secret);
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
}

static long get(const char *path, const char *header, e2e_response *res)
{
    const char *const h[] = {header, NULL};
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", path, header != NULL ? h : NULL, NULL, 0, res), 0);
    return res->status;
}

static void expect_401(const char *path, const char *header, const char *www_authenticate)
{
    e2e_response res;
    assert_int_equal(get(path, header, &res), 401);
    char *www = e2e_header(&res, "www-authenticate");
    assert_non_null(www);
    assert_string_equal(www, www_authenticate);
    free(www);
    assert_non_null(strstr(res.body, "\"error\":\"unauthorized\""));
    assert_non_null(strstr(res.body, "\"requestId\":"));
    e2e_response_release(&res);
}

static long get_with_token(const char *path, const char *tok, e2e_response *res)
{
    char header[4096];
    snprintf(header, sizeof(header), "Authorization: Bearer %s", tok);
    return get(path, header, res);
}

/* Expects `status` for the token on path; frees the token. */
static void expect_status(const char *path, char *tok, long status)
{
    e2e_response res;
    assert_non_null(tok);
    long got = get_with_token(path, tok, &res);
    if (got != status)
        fail_msg("%s: expected %ld, got %ld (%s)", path, status, got, res.body);
    e2e_response_release(&res);
    free(tok);
}

static void test_valid_token_reaches_lua_as_claims(void **state)
{
    char *t = token("HS256", (const unsigned char *)SECRET, strlen(SECRET), "alice", 300, "web");
    char header[2048];
    snprintf(header, sizeof(header), "Authorization: Bearer %s", t);
    e2e_response res;
    assert_int_equal(get("/web/me", header, &res), 200);
    assert_non_null(strstr(res.body, "\"sub\":\"alice\""));
    assert_non_null(strstr(res.body, "\"scope\":\"orders:read\""));
    e2e_response_release(&res);
    /* The same token from the configured cookie. */
    snprintf(header, sizeof(header), "Cookie: theme=dark; session=%s", t);
    assert_int_equal(get("/web/me", header, &res), 200);
    assert_non_null(strstr(res.body, "\"sub\":\"alice\""));
    e2e_response_release(&res);
    free(t);
}

static void test_missing_and_bad_tokens_are_401(void **state)
{
    expect_401("/web/me", NULL, "Bearer");
    expect_401("/web/me", "Authorization: Bearer not.a.token", "Bearer error=\"invalid_token\"");
    char header[2048];
    /* Expired (beyond the 5 s leeway). */
    char *t = token("HS256", (const unsigned char *)SECRET, strlen(SECRET), "bob", -60, "web");
    snprintf(header, sizeof(header), "Authorization: Bearer %s", t);
    expect_401("/web/me", header, "Bearer error=\"invalid_token\"");
    free(t);
    /* Wrong secret. */
    t = token("HS256", (const unsigned char *)"another-secret-0123456789abcdef", 31, "bob", 300, "web");
    snprintf(header, sizeof(header), "Authorization: Bearer %s", t);
    expect_401("/web/me", header, "Bearer error=\"invalid_token\"");
    free(t);
    /* Wrong audience. */
    t = token("HS256", (const unsigned char *)SECRET, strlen(SECRET), "bob", 300, "mobile");
    snprintf(header, sizeof(header), "Authorization: Bearer %s", t);
    expect_401("/web/me", header, "Bearer error=\"invalid_token\"");
    free(t);
    /* alg "none", unsigned. */
    expect_401("/web/me", "Authorization: Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJldmUiLCJhdWQiOiJ3ZWIifQ.",
               "Bearer error=\"invalid_token\"");
    /* The reason is in the log, with the request id; the client was told no more. */
    usleep(100000);
    char *log = e2e_log(&srv);
    assert_non_null(strstr(log, "\"decision\":\"unauthorized\""));
    assert_non_null(strstr(log, "expired"));
    free(log);
}

static void test_algorithm_confusion_is_refused(void **state)
{
    /* An HS256 token "signed" with the RSA public key as the HMAC secret, against an RS256-pinned key. */
    jwt_t *j = NULL;
    jwt_new(&j);
    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)rsa_public_pem, (int)strlen(rsa_public_pem));
    jwt_add_header(j, "kid", "k1");
    jwt_add_grant(j, "sub", "mallory");
    char *t = jwt_encode_str(j);
    jwt_free(j);
    char header[4096];
    snprintf(header, sizeof(header), "Authorization: Bearer %s", t);
    expect_401("/partner/me", header, "Bearer error=\"invalid_token\"");
    free(t);
    /* While a real RS256 token, signed with the private key, passes. */
    char *rsa_private = read_text(srv.dir, "rsa.key");
    assert_non_null(rsa_private);
    e2e_response res;
    t = mint("RS256", rsa_private, "k1", "rita", NULL, 300);
    assert_int_equal(get_with_token("/partner/me", t, &res), 200);
    assert_non_null(strstr(res.body, "\"sub\":\"rita\""));
    e2e_response_release(&res);
    free(t);
    free(rsa_private);
}

static void test_public_route_needs_no_token(void **state)
{
    e2e_response res;
    assert_int_equal(get("/web/public", NULL, &res), 200);
    assert_non_null(strstr(res.body, "\"sub\":null"));
    e2e_response_release(&res);
}

static void test_empty_secret_is_a_config_error(void **state)
{
    e2e_server bad;
    e2e_init(&bad);
    e2e_pick_port(&bad);
    e2e_write(&bad, "gateway.json", gateway_json);
    e2e_write(&bad, "web.json",
              "{\"name\": \"web\", \"auth\": {\"jwt\": {\"keys\": [{\"alg\": \"HS256\", \"secret_env\": "
              "\"BFFGATE_E2E_UNSET\"}]}},\n \"routes\": [{\"path\": \"/me\", \"function\": \"me\"}]}\n");
    e2e_write(&bad, "partner.json", "{\"name\": \"p\", \"match\": {\"path_prefix\": \"/p\"}, \"routes\": []}\n");
    e2e_write(&bad, "me.lua", me_lua);
    unsetenv("BFFGATE_E2E_UNSET");
    char config[300];
    snprintf(config, sizeof(config), "%s/gateway.json", bad.dir);
    const char *const args[] = {"--check", config, NULL};
    char *out = NULL;
    assert_int_equal(e2e_run(args, &out), 1);
    assert_non_null(strstr(out, "web.json: auth.jwt.keys[0].secret_env: environment variable BFFGATE_E2E_UNSET is "
                                "unset or empty"));
    free(out);
    e2e_cleanup(&bad);
}

static void test_claim_rules_answer_403(void **state)
{
    /* The token carries scope "orders:read" and no role: /orders is allowed, /admin is forbidden. */
    char *t = token("HS256", (const unsigned char *)SECRET, strlen(SECRET), "alice", 300, "web");
    char header[2048];
    snprintf(header, sizeof(header), "Authorization: Bearer %s", t);
    e2e_response res;
    assert_int_equal(get("/web/orders", header, &res), 200);
    e2e_response_release(&res);
    assert_int_equal(get("/web/admin", header, &res), 403);
    char *www = e2e_header(&res, "www-authenticate");
    assert_string_equal(www, "Bearer error=\"insufficient_scope\"");
    free(www);
    assert_non_null(strstr(res.body, "\"error\":\"forbidden\""));
    assert_null(strstr(res.body, "role")); /* the client is not told which rule */
    e2e_response_release(&res);
    free(t);
    usleep(100000);
    char *log = e2e_log(&srv);
    assert_non_null(strstr(log, "\"decision\":\"forbidden\""));
    const char *line = strstr(log, "\"decision\":\"forbidden\"");
    if (line == NULL || strstr(line, "is missing") == NULL) {
        FILE *f = fopen("/tmp/auth-test-log.txt", "w");
        if (f != NULL) {
            fputs(log, f);
            fclose(f);
        }
        fail_msg("no forbidden decision with the rule in the log (saved to /tmp/auth-test-log.txt)");
    }
    free(log);
}

static void test_cors_preflight_and_headers(void **state)
{
    e2e_response res;
    /* A preflight from an allowed origin: 204, no token needed, the path's methods. */
    const char *const pre[] = {"Origin: https://shop.example", "Access-Control-Request-Method: GET",
                               "Access-Control-Request-Headers: authorization", NULL};
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "OPTIONS", "/web/me", pre, NULL, 0, &res), 0);
    assert_int_equal(res.status, 204);
    char *v = e2e_header(&res, "access-control-allow-origin");
    assert_string_equal(v, "https://shop.example");
    free(v);
    v = e2e_header(&res, "access-control-allow-methods");
    assert_string_equal(v, "GET, HEAD");
    free(v);
    v = e2e_header(&res, "access-control-allow-headers");
    assert_string_equal(v, "authorization, content-type");
    free(v);
    v = e2e_header(&res, "access-control-allow-credentials");
    assert_string_equal(v, "true");
    free(v);
    v = e2e_header(&res, "access-control-max-age");
    assert_string_equal(v, "300");
    free(v);
    e2e_response_release(&res);
    /* Another origin: refused, and no CORS headers. */
    const char *const evil[] = {"Origin: https://evil.example", "Access-Control-Request-Method: GET", NULL};
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "OPTIONS", "/web/me", evil, NULL, 0, &res), 0);
    assert_int_equal(res.status, 403);
    assert_null(e2e_header(&res, "access-control-allow-origin"));
    e2e_response_release(&res);
    /* An actual request from the allowed origin carries the headers (the 401 too, so the page can read it). */
    const char *const get_h[] = {"Origin: https://shop.example", NULL};
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", "/web/public", get_h, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    v = e2e_header(&res, "access-control-allow-origin");
    assert_string_equal(v, "https://shop.example");
    free(v);
    v = e2e_header(&res, "access-control-expose-headers");
    assert_string_equal(v, "x-request-id");
    free(v);
    v = e2e_header(&res, "vary");
    assert_string_equal(v, "Origin");
    free(v);
    e2e_response_release(&res);
    /* Without Origin: no CORS headers, but Vary: Origin so that no shared cache serves this to a browser. */
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", "/web/public", NULL, NULL, 0, &res), 0);
    assert_null(e2e_header(&res, "access-control-allow-origin"));
    v = e2e_header(&res, "vary");
    assert_string_equal(v, "Origin");
    free(v);
    e2e_response_release(&res);
    /* A function's own Access-Control-* header is dropped: the gateway's is the only one. */
    assert_int_equal(e2e_request(&srv, E2E_HTTP1, "GET", "/web/acao", get_h, NULL, 0, &res), 0);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.headers, "x-kept: yes"));
    const char *first = strstr(res.headers, "access-control-allow-origin:");
    assert_non_null(first);
    assert_null(strstr(first + 1, "access-control-allow-origin:"));
    v = e2e_header(&res, "access-control-allow-origin");
    assert_string_equal(v, "https://shop.example");
    free(v);
    e2e_response_release(&res);
}

static void test_jwks_and_ec_keys_chosen_by_kid(void **state)
{
    e2e_response res;
    char *t = mint("HS256", MOBILE_SECRET, "m1", "dave", NULL, 300);
    assert_int_equal(get_with_token("/mobile/me", t, &res), 200);
    assert_non_null(strstr(res.body, "\"sub\":\"dave\""));
    e2e_response_release(&res);
    free(t);
    t = mint("ES256", ec_private_pem, "ec1", "erin", NULL, 300);
    assert_int_equal(get_with_token("/mobile/me", t, &res), 200);
    assert_non_null(strstr(res.body, "\"sub\":\"erin\""));
    e2e_response_release(&res);
    free(t);
    /* The EC key named by the HMAC key's kid: the algorithm is not the key's. */
    expect_status("/mobile/me", mint("ES256", ec_private_pem, "m1", "erin", NULL, 300), 401);
    /* The JWKS key marked "use": "enc" was skipped; an unknown kid; no kid with several keys. */
    expect_status("/mobile/me", mint("HS256", "skipped", "enc1", "eve", NULL, 300), 401);
    expect_status("/mobile/me", mint("HS256", MOBILE_SECRET, "m2", "eve", NULL, 300), 401);
    expect_status("/mobile/me", mint("HS256", MOBILE_SECRET, NULL, "eve", NULL, 300), 401);
}

static void test_claims_reach_a_c_function(void **state)
{
    e2e_response res;
    char *t = mint("HS256", MOBILE_SECRET, "m1", "carol", "orders:read", 300);
    assert_int_equal(get_with_token("/mobile/c", t, &res), 200);
    assert_non_null(strstr(res.body, "{\"claims\":{"));
    assert_non_null(strstr(res.body, "\"sub\":\"carol\""));
    assert_non_null(strstr(res.body, "\"scope\":\"orders:read\""));
    e2e_response_release(&res);
    free(t);
}

static void test_rate_limit_per_subject(void **state)
{
    /* Same client address, two subjects: alice uses up her burst of 2; bob is not affected. */
    char *alice = mint("HS256", MOBILE_SECRET, "m1", "alice", NULL, 300);
    char *bob = mint("HS256", MOBILE_SECRET, "m1", "bob", NULL, 300);
    e2e_response res;
    assert_int_equal(get_with_token("/mobile/limited", alice, &res), 200);
    e2e_response_release(&res);
    assert_int_equal(get_with_token("/mobile/limited", alice, &res), 200);
    e2e_response_release(&res);
    assert_int_equal(get_with_token("/mobile/limited", alice, &res), 429);
    assert_non_null(strstr(res.body, "\"limit\":\"rate_limit\""));
    e2e_response_release(&res);
    assert_int_equal(get_with_token("/mobile/limited", bob, &res), 200);
    e2e_response_release(&res);
    /* Without a valid token: 401, and the refusal does not use anyone's tokens. */
    assert_int_equal(get("/mobile/limited", NULL, &res), 401);
    e2e_response_release(&res);
    free(alice);
    free(bob);
}

static void test_route_with_its_own_jwt_settings(void **state)
{
    /* The route's key and rule replace the frontend's. */
    expect_status("/mobile/partner-keys", mint("HS384", route_secret, NULL, "pat", "partner read", 300), 200);
    expect_status("/mobile/partner-keys", mint("HS256", MOBILE_SECRET, "m1", "pat", "partner", 300), 401);
    expect_status("/mobile/partner-keys", mint("HS384", route_secret, NULL, "pat", "read", 300), 403);
    /* And the route's key does not open the frontend's other routes. */
    expect_status("/mobile/me", mint("HS384", route_secret, NULL, "pat", "partner", 300), 401);
}

static void test_cached_token_is_refused_once_expired(void **state)
{
    time_t start = time(NULL);
    char *t = mint("HS256", MOBILE_SECRET, "m1", "frank", NULL, 2); /* the mobile frontend has no leeway */
    e2e_response res;
    for (int i = 0; i < 3; ++i) { /* verified once, then from the cache */
        assert_int_equal(get_with_token("/mobile/me", t, &res), 200);
        e2e_response_release(&res);
    }
    while (time(NULL) < start + 2)
        usleep(50000);
    usleep(100000);
    assert_int_equal(get_with_token("/mobile/me", t, &res), 401);
    e2e_response_release(&res);
    free(t);
}

static char *config_version(void)
{
    e2e_response res;
    assert_int_equal(get("/web/public", NULL, &res), 200);
    char *v = e2e_header(&res, "x-bffgate-config");
    e2e_response_release(&res);
    return v;
}

static void test_reload_replaces_keys(void **state)
{
    char *old_token = mint("HS384", route_secret, NULL, "pat", "partner", 300);
    e2e_response res;
    assert_int_equal(get_with_token("/mobile/partner-keys", old_token, &res), 200); /* and cached */
    e2e_response_release(&res);
    char *before = config_version();
    char *new_secret = strdup("route-secret-v2-zyxwvutsrqponmlkjihgfedcba");
    e2e_write(&srv, "route.secret", new_secret);
    kill(srv.pid, SIGHUP);
    char *now = NULL;
    for (int i = 0; i < 100; ++i) {
        free(now);
        now = config_version();
        if (strcmp(now, before) != 0)
            break;
        usleep(50000);
    }
    assert_string_not_equal(now, before);
    expect_status("/mobile/partner-keys", old_token, 401);
    expect_status("/mobile/partner-keys", mint("HS384", new_secret, NULL, "pat", "partner", 300), 200);
    free(route_secret);
    route_secret = new_secret;
    free(before);
    free(now);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_token_reaches_lua_as_claims),
        cmocka_unit_test(test_missing_and_bad_tokens_are_401),
        cmocka_unit_test(test_algorithm_confusion_is_refused),
        cmocka_unit_test(test_public_route_needs_no_token),
        cmocka_unit_test(test_claim_rules_answer_403),
        cmocka_unit_test(test_cors_preflight_and_headers),
        cmocka_unit_test(test_empty_secret_is_a_config_error),
        cmocka_unit_test(test_jwks_and_ec_keys_chosen_by_kid),
        cmocka_unit_test(test_claims_reach_a_c_function),
        cmocka_unit_test(test_rate_limit_per_subject),
        cmocka_unit_test(test_route_with_its_own_jwt_settings),
        cmocka_unit_test(test_cached_token_is_refused_once_expired),
        cmocka_unit_test(test_reload_replaces_keys), /* last: it changes the keys */
    };
    return cmocka_run_group_tests_name("e2e/auth", tests, group_setup, group_teardown);
}
