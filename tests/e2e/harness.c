/* harness: starts the real bffgate binary on a config the test writes and talks to it with libcurl. */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef BFFGATE_BIN
#error "BFFGATE_BIN must be defined by the build"
#endif
#ifndef EXAMPLES_DIR
#error "EXAMPLES_DIR must be defined by the build"
#endif

static void die(const char *what)
{
    fprintf(stderr, "e2e harness: %s: %s\n", what, strerror(errno));
    abort();
}

void e2e_init(e2e_server *srv)
{
    memset(srv, 0, sizeof(*srv));
    snprintf(srv->dir, sizeof(srv->dir), "/tmp/bffgate-e2e-XXXXXX");
    if (mkdtemp(srv->dir) == NULL)
        die("mkdtemp");
    snprintf(srv->log_path, sizeof(srv->log_path), "%s/bffgate.log", srv->dir);
    srv->pid = -1;
}

/* Ports from below the kernel's ephemeral range (32768+ here), where the clients' own outgoing
 * connections in parallel tests cannot take a port between our pick and the server's bind. */
static int free_port(void)
{
    static unsigned seed;
    if (seed == 0)
        seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
    for (int attempt = 0; attempt < 200; ++attempt) {
        seed = seed * 1103515245u + 12345u;
        int port = 20000 + (int)((seed >> 8) % 12000);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sin = {
            .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return port;
    }
    die("pick port");
    return -1;
}

void e2e_pick_port(e2e_server *srv)
{
    srv->port = free_port();
}

void e2e_pick_admin_port(e2e_server *srv)
{
    do
        srv->admin_port = free_port();
    while (srv->admin_port == srv->port);
}

static void mkdirs_for(const char *path)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p != '\0'; ++p) {
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    }
}

void e2e_write(e2e_server *srv, const char *relpath, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", srv->dir, relpath);
    mkdirs_for(path);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        die(path);
    for (const char *p = text; *p != '\0';) {
        /* Port 0: the server binds a free port itself, atomically, and reports it in its ready file
         * (a port picked here could be taken by another test before the server binds it). */
        if (strncmp(p, "@PORT@", 6) == 0) {
            fputc('0', f);
            p += 6;
        } else if (strncmp(p, "@ADMIN@", 7) == 0) {
            fputc('0', f);
            p += 7;
        } else if (strncmp(p, "@EXAMPLES@", 10) == 0) {
            fputs(EXAMPLES_DIR, f);
            p += 10;
        } else {
            fputc(*p++, f);
        }
    }
    fclose(f);
}

static int port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
    close(fd);
    return ok;
}

/* Reads the ports the server wrote to its ready file. Returns 1 once the file is there. */
static int read_ready(e2e_server *srv, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char kind[16], address[64];
    unsigned port;
    int got_listen = 0;
    while (fscanf(f, "%15s %63s %u", kind, address, &port) == 3) {
        if (strcmp(kind, "listen") == 0 && !got_listen) {
            srv->port = (int)port;
            got_listen = 1;
        } else if (strcmp(kind, "admin") == 0) {
            srv->admin_port = (int)port;
        }
    }
    fclose(f);
    return got_listen;
}

int e2e_start(e2e_server *srv, const char *const *extra_args)
{
    char config[300], ready[320];
    snprintf(config, sizeof(config), "%s/gateway.json", srv->dir);
    snprintf(ready, sizeof(ready), "%s/ready.txt", srv->dir);
    unlink(ready);
    const char *argv[32];
    size_t n = 0;
    argv[n++] = BFFGATE_BIN;
    argv[n++] = "--ready-file";
    argv[n++] = ready;
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL && n < 28; ++i)
        argv[n++] = extra_args[i];
    argv[n++] = config;
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        /* A test killed midway (timeout, crash) must not leave its server running. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(srv->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execv(BFFGATE_BIN, (char *const *)argv);
        _exit(127);
    }
    srv->pid = pid;
    for (int i = 0; i < 1000; ++i) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            srv->pid = -1;
            return -1;
        }
        if (read_ready(srv, ready) && port_accepts(srv->port))
            return 0;
        usleep(10000);
    }
    return -1;
}

/* A server that did not exit cleanly: its last words (a sanitizer report, an assertion) go to the test's stderr
 * before e2e_cleanup removes the directory they are in. */
static void dump_log_tail(const e2e_server *srv)
{
    FILE *f = fopen(srv->log_path, "r");
    if (f == NULL)
        return;
    char buf[16384];
    if (fseek(f, 0, SEEK_END) == 0 && ftell(f) > (long)sizeof(buf) - 1)
        fseek(f, -(long)sizeof(buf) + 1, SEEK_END);
    else
        rewind(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "e2e harness: bffgate did not exit cleanly; the end of its log:\n%s\n", buf);
}

int e2e_stop(e2e_server *srv, int sig)
{
    if (srv->pid <= 0)
        return -1;
    kill(srv->pid, sig);
    int status = 0;
    for (int i = 0; i < 3000; ++i) {
        if (waitpid(srv->pid, &status, WNOHANG) == srv->pid) {
            srv->pid = -1;
            int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            if (rc != 0 && sig != SIGKILL)
                dump_log_tail(srv);
            return rc;
        }
        usleep(10000);
    }
    kill(srv->pid, SIGKILL);
    waitpid(srv->pid, &status, 0);
    srv->pid = -1;
    return 128 + SIGKILL;
}

void e2e_cleanup(e2e_server *srv)
{
    if (srv->pid > 0)
        e2e_stop(srv, SIGKILL);
    if (srv->dir[0] != '\0') {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", srv->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "e2e harness: could not remove %s\n", srv->dir);
        srv->dir[0] = '\0';
    }
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return strdup("");
    size_t cap = 4096, len = 0;
    char *data = malloc(cap);
    size_t n;
    while ((n = fread(data + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2)
            data = realloc(data, cap *= 2);
    }
    data[len] = '\0';
    fclose(f);
    return data;
}

char *e2e_log(const e2e_server *srv)
{
    return read_all(srv->log_path);
}

long e2e_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    }
    if (f != NULL)
        fclose(f);
    return kb;
}

int e2e_run(const char *const *args, char **output)
{
    char out_path[] = "/tmp/bffgate-e2e-run-XXXXXX";
    int fd = mkstemp(out_path);
    if (fd < 0)
        die("mkstemp");
    const char *argv[32];
    size_t n = 0;
    argv[n++] = BFFGATE_BIN;
    for (size_t i = 0; args != NULL && args[i] != NULL && n < 31; ++i)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execv(BFFGATE_BIN, (char *const *)argv);
        _exit(127);
    }
    close(fd);
    int status = 0;
    waitpid(pid, &status, 0);
    *output = read_all(out_path);
    unlink(out_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

typedef struct growbuf {
    char *data;
    size_t len;
} growbuf;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    growbuf *b = userdata;
    size_t n = size * nmemb;
    char *grown = realloc(b->data, b->len + n + 1);
    if (grown == NULL)
        return 0;
    b->data = grown;
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

int e2e_request(e2e_server *srv, e2e_http http, const char *method, const char *path, const char *const *headers,
                const char *body, size_t body_len, e2e_response *res)
{
    memset(res, 0, sizeof(*res));
    CURL *curl = curl_easy_init();
    char url[1024];
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d%s", http == E2E_HTTPS ? "https" : "http", srv->port, path);
    growbuf hdr = {0}, data = {0};
    struct curl_slist *list = NULL;
    for (size_t i = 0; headers != NULL && headers[i] != NULL; ++i)
        list = curl_slist_append(list, headers[i]);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &hdr);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &data);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
    if (body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    switch (http) {
    case E2E_HTTP1:
        curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        break;
    case E2E_HTTP2_PRIOR:
        curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        break;
    case E2E_HTTP2_UPGRADE:
        curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_0);
        break;
    case E2E_HTTPS:
        curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
        break;
    }
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) {
        long version = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->status);
        curl_easy_getinfo(curl, CURLINFO_HTTP_VERSION, &version);
        res->http_version = version == CURL_HTTP_VERSION_2_0 ? 2 : 11;
    } else {
        fprintf(stderr, "e2e request %s %s: %s\n", method, url, curl_easy_strerror(rc));
    }
    res->headers = hdr.data != NULL ? hdr.data : strdup("");
    res->body = data.data != NULL ? data.data : strdup("");
    res->body_len = data.len;
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    return rc == CURLE_OK ? 0 : -1;
}

int e2e_admin_request(e2e_server *srv, const char *method, const char *path, e2e_response *res)
{
    e2e_server admin = *srv;
    admin.port = srv->admin_port;
    return e2e_request(&admin, E2E_HTTP1, method, path, NULL, NULL, 0, res);
}

double e2e_metric(e2e_server *srv, const char *sample)
{
    e2e_response res;
    if (e2e_admin_request(srv, "GET", "/metrics", &res) != 0) {
        e2e_response_release(&res);
        return -1;
    }
    char line[256];
    snprintf(line, sizeof(line), "\n%s ", sample); /* a sample line, not its # HELP */
    const char *at = strstr(res.body, line);
    double v = at != NULL ? strtod(at + strlen(line), NULL) : -1;
    e2e_response_release(&res);
    return v;
}

void e2e_response_release(e2e_response *res)
{
    free(res->headers);
    free(res->body);
    memset(res, 0, sizeof(*res));
}

char *e2e_header(const e2e_response *res, const char *name)
{
    size_t nlen = strlen(name);
    /* With an upgrade there are two header blocks: use the last one. */
    const char *block = res->headers, *p;
    while ((p = strstr(block, "\r\n\r\n")) != NULL && p[4] != '\0')
        block = p + 4;
    for (const char *line = block; line != NULL && *line != '\0';) {
        const char *eol = strstr(line, "\r\n");
        size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
        if (len > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                ++v;
            return strndup(v, (size_t)(line + len - v));
        }
        line = eol != NULL ? eol + 2 : NULL;
    }
    return NULL;
}
