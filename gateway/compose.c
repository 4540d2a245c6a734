/* compose: the composition engine: steps in order, calls of a group concurrently, fallbacks, response. */
#include "compose.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../functions/fn_log.h"
#include "call.h"
#include "worker.h"

typedef enum call_state { CALL_IDLE, CALL_RUNNING, CALL_OK, CALL_FAILED } call_state;

typedef struct compose compose;

typedef struct call_run {
    compose *c;
    const bff_call *def;
    call_state state;
    int timed_out;
    uint64_t start_ns, duration_ns;
    char reason[48];  /* told to the client: "status 503", "timeout", "invalid JSON"... */
    char detail[600]; /* logged only */
    gw_call *call;    /* in flight */
} call_run;

struct compose {
    fn_task task; /* first: what the request cancels */
    struct gw_worker *w;
    const bff_plan *plan;
    fn_call route_call; /* a copy of the route's call (thread, limits, start, host, released) */
    uint64_t deadline_ns;
    char request_id[129];
    size_t request_id_len;
    gw_call_origin origin;
    json_t *ctx;    /* {"request": ..., "<call>": result...} */
    call_run *runs; /* plan->ncalls, steps in order */
    size_t step;
    size_t step_first; /* index in runs of the current step's first call */
    size_t pending;
    int launching;
    call_run *failed; /* the required call that failed the route */
    int starting, finished_early, cancelled;
    int released_owed; /* cancelled while C calls still ran: route_call.released fires when they end */
    unsigned refs;     /* 1 while the owner waits for done or cancels; +1 per abandoned C call */
    fn_response *res;
    fn_done_cb done;
    void *done_data;
};

static void call_finished(call_run *r);
static void launch_step(compose *c);

/* ---- lifetime ---- */

static void compose_free(compose *c)
{
    free(c->runs);
    json_decref(c->ctx);
    free(c);
}

static void compose_unref(compose *c)
{
    if (--c->refs > 0)
        return;
    fn_host_cb released = c->released_owed ? c->route_call.released : NULL;
    void *data = c->done_data;
    compose_free(c);
    if (released != NULL)
        released(data);
}

/* ---- logging ---- */

static void log_call(compose *c, const call_run *r, fn_log_level level, const char *decision)
{
    if (!fn_log_enabled(level))
        return;
    fn_buf buf = FN_BUF_INIT;
    fn_log_begin(&buf, level);
    fn_log_field_str(&buf, "requestId", c->request_id, c->request_id_len);
    fn_log_field_str(&buf, "call", r->def->name, strlen(r->def->name));
    const char *target = r->def->kind == BFF_CALL_FUNCTION ? r->def->fn->name : r->def->upstream->name;
    fn_log_field_str(&buf, r->def->kind == BFF_CALL_FUNCTION ? "function" : "upstream", target, strlen(target));
    fn_log_field_str(&buf, "decision", decision, strlen(decision));
    fn_log_field_str(&buf, "reason", r->reason, strlen(r->reason));
    if (r->detail[0] != '\0')
        fn_log_field_str(&buf, "msg", r->detail, strlen(r->detail));
    fn_log_field_int(&buf, "durationUs", (long long)(r->duration_ns / 1000));
    fn_log_write(&buf);
}

/* ---- the response ---- */

static void complete(compose *c)
{
    if (c->refs > 1 && c->route_call.released != NULL) {
        /* C calls abandoned by their timeouts still run on pool threads: the request keeps its slot until
         * they end, so a route never holds more pool threads than its concurrency. */
        c->res->pending_release = 1;
        c->released_owed = 1;
    }
    if (c->starting) {
        c->finished_early = 1; /* gw_compose_start returns the result itself */
        return;
    }
    fn_done_cb done = c->done;
    void *data = c->done_data;
    compose_unref(c);
    done(data, 0);
}

static void set_json_body(compose *c, int status, json_t *body)
{
    fn_response *res = c->res;
    res->status = status;
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL) {
        res->status = 500;
        text = strdup("{\"error\":\"out of memory\"}");
    }
    if (text != NULL) {
        fn_buf_append(&res->body, text, strlen(text));
        free(text);
    }
    fn_response_add_header(res, "content-type", 12, "application/json", 16);
    res->has_content_type = 1;
}

static void cancel_running(compose *c)
{
    for (size_t i = 0; i < c->plan->ncalls; ++i) {
        call_run *r = &c->runs[i];
        if (r->state != CALL_RUNNING)
            continue;
        if (r->call != NULL && gw_call_cancel(r->call) == 1)
            ++c->refs; /* on_call_released drops it */
        r->call = NULL;
        r->state = CALL_FAILED;
        snprintf(r->reason, sizeof(r->reason), "cancelled");
    }
}

static void fail_route(compose *c)
{
    call_run *r = c->failed;
    cancel_running(c);
    char msg[160];
    snprintf(msg, sizeof(msg), "call \"%s\" failed: %s", r->def->name, r->reason);
    json_t *body = json_pack("{s:s, s:s, s:s#}", "error", msg, "call", r->def->name, "requestId", c->request_id,
                             (int)c->request_id_len);
    set_json_body(c, r->timed_out ? 504 : 502, body != NULL ? body : json_null());
    json_decref(body);
    complete(c);
}

/* "_calls": {"name": {"status": "ok" | "failed" | "timeout" | "skipped", "ms": 12.3, "error": ...}} */
static json_t *call_report(const compose *c)
{
    json_t *out = json_object();
    for (size_t i = 0; i < c->plan->ncalls; ++i) {
        const call_run *r = &c->runs[i];
        const char *status = r->state == CALL_OK     ? "ok"
                             : r->state == CALL_IDLE ? "skipped"
                             : r->timed_out          ? "timeout"
                                                     : "failed";
        json_t *one = json_pack("{s:s, s:f}", "status", status, "ms", (double)r->duration_ns / 1e6);
        if (r->state == CALL_FAILED && one != NULL)
            json_object_set_new(one, "error", json_string(r->reason));
        json_object_set_new(out, r->def->name, one);
    }
    return out;
}

static void respond(compose *c)
{
    const bff_plan *plan = c->plan;
    json_t *value;
    char err[256] = "";
    if (plan->response != NULL) {
        value = bff_template_eval(plan->response, c->ctx, err, sizeof(err));
    } else {
        const bff_step *last = &plan->steps[plan->nsteps - 1];
        if (last->group) {
            value = json_object();
            for (size_t i = 0; value != NULL && i < last->ncalls; ++i)
                json_object_set(value, last->calls[i].name, json_object_get(c->ctx, last->calls[i].name));
        } else {
            value = json_incref(json_object_get(c->ctx, last->calls[0].name));
        }
    }
    if (value == NULL) {
        json_t *body = json_pack("{s:s, s:s#}", "error", "the route's response could not be built", "requestId",
                                 c->request_id, (int)c->request_id_len);
        fn_log_msg(FN_LOG_ERROR, "%.*s: response template: %s", (int)c->request_id_len, c->request_id, err);
        set_json_body(c, 500, body != NULL ? body : json_null());
        json_decref(body);
        complete(c);
        return;
    }
    if (plan->shape != NULL)
        value = bff_shape_apply(plan->shape, value);
    if (plan->call_status && json_is_object(value)) {
        json_t *copy = json_copy(value); /* the top level only: its members may be shared */
        json_decref(value);
        value = copy;
        if (value != NULL)
            json_object_set_new(value, "_calls", call_report(c));
    }
    /* Optional calls that failed and gave their fallback. */
    fn_buf partial = FN_BUF_INIT;
    for (size_t i = 0; i < plan->ncalls; ++i) {
        if (c->runs[i].state == CALL_FAILED) {
            if (partial.len > 0)
                fn_buf_append_str(&partial, ", ");
            fn_buf_append_str(&partial, c->runs[i].def->name);
        }
    }
    set_json_body(c, 200, value != NULL ? value : json_null());
    if (partial.len > 0)
        fn_response_add_header(c->res, "x-bffgate-partial", 17, partial.data, partial.len);
    fn_buf_release(&partial);
    json_decref(value);
    complete(c);
}

/* ---- calls ---- */

static uint64_t remaining_ms(const compose *c)
{
    uint64_t now = fn_now_ns();
    return c->deadline_ns > now ? (c->deadline_ns - now) / 1000000ULL : 0;
}

static void call_failed(call_run *r, int timed_out, const char *reason, const char *detail)
{
    r->state = CALL_FAILED;
    r->timed_out = timed_out;
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    snprintf(r->detail, sizeof(r->detail), "%s", detail != NULL ? detail : "");
    call_finished(r);
}

static void call_succeeded(call_run *r, json_t *result)
{
    r->state = CALL_OK;
    json_object_set_new(r->c->ctx, r->def->name, result != NULL ? result : json_null());
    call_finished(r);
}

static void call_finished(call_run *r)
{
    compose *c = r->c;
    r->duration_ns = fn_now_ns() - r->start_ns;
    if (r->state == CALL_FAILED) {
        if (r->def->optional) {
            log_call(c, r, FN_LOG_WARN, "call_fallback");
            json_object_set(c->ctx, r->def->name, r->def->fallback);
        } else {
            log_call(c, r, FN_LOG_WARN, "call_failed");
            if (c->failed == NULL)
                c->failed = r;
        }
    } else if (fn_log_enabled(FN_LOG_DEBUG)) {
        snprintf(r->reason, sizeof(r->reason), "ok");
        log_call(c, r, FN_LOG_DEBUG, "call_ok");
    }
    --c->pending;
    if (c->launching || c->cancelled)
        return;
    if (c->failed != NULL) {
        if (c->pending == 0 || c->failed == r)
            fail_route(c);
        return;
    }
    if (c->pending == 0) {
        c->step_first += c->plan->steps[c->step].ncalls;
        if (++c->step < c->plan->nsteps)
            launch_step(c);
        else
            respond(c);
    }
}

static void on_call_done(void *data, gw_call_result *res)
{
    call_run *r = data;
    r->call = NULL;
    if (res->abandoned)
        ++r->c->refs; /* on_call_released drops it */
    if (res->ok)
        call_succeeded(r, res->value);
    else
        call_failed(r, res->timed_out, res->reason, res->detail);
}

/* A C call abandoned by a timeout or a cancel has really ended on its pool thread. */
static void on_call_released(void *data)
{
    call_run *r = data;
    compose_unref(r->c);
}

static void start_function(call_run *r, uint64_t timeout_ms)
{
    compose *c = r->c;
    char err[256];
    gw_call_spec spec = {.kind = BFF_CALL_FUNCTION, .fn = r->def->fn, .timeout_ms = timeout_ms};
    json_t *input = NULL;
    char *text = NULL;
    if (r->def->body != NULL) {
        input = bff_template_eval(r->def->body, c->ctx, err, sizeof(err));
        text = input != NULL ? json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (text == NULL) {
            json_decref(input);
            call_failed(r, 0, "bad input", input == NULL ? err : "out of memory");
            return;
        }
        spec.input_text = text;
    }
    r->state = CALL_RUNNING;
    r->call = gw_call_start(c->w, &spec, &c->origin, on_call_done, on_call_released, r);
    json_decref(input);
    free(text);
}

static int append_query(fn_buf *target, const call_run *r, const json_t *ctx, char *err, size_t cap)
{
    for (size_t i = 0; i < r->def->nquery; ++i) {
        size_t len;
        char *value = bff_template_eval_string(r->def->query[i].value, ctx, BFF_TEMPLATE_QUERY, &len, err, cap);
        if (value == NULL)
            return -1;
        fn_buf_append_str(target, i == 0 && memchr(target->data, '?', target->len) == NULL ? "?" : "&");
        /* The name is literal config text: encode it the same way. */
        fn_buf_append_percent(target, r->def->query[i].name, strlen(r->def->query[i].name));
        fn_buf_append_str(target, "=");
        fn_buf_append(target, value, len);
        free(value);
    }
    return 0;
}

static void start_upstream(call_run *r, uint64_t timeout_ms)
{
    compose *c = r->c;
    const bff_call *def = r->def;
    char err[256];
    size_t len;
    char *path = bff_template_eval_string(def->path, c->ctx, BFF_TEMPLATE_PATH, &len, err, sizeof(err));
    if (path == NULL) {
        call_failed(r, 0, "bad input", err);
        return;
    }
    fn_buf target = FN_BUF_INIT;
    fn_buf_append(&target, path, len);
    free(path);
    h2o_iovec_t headers[2 * 32];
    char *values[32];
    size_t nvalues = 0;
    int ok = append_query(&target, r, c->ctx, err, sizeof(err)) == 0;
    for (size_t i = 0; ok && i < def->nheaders && i < 32; ++i) {
        values[nvalues] =
            bff_template_eval_string(def->headers[i].value, c->ctx, BFF_TEMPLATE_HEADER, &len, err, sizeof(err));
        if (values[nvalues] == NULL) {
            ok = 0;
            break;
        }
        headers[2 * nvalues] = h2o_iovec_init(def->headers[i].name, strlen(def->headers[i].name));
        headers[2 * nvalues + 1] = h2o_iovec_init(values[nvalues], len);
        ++nvalues;
    }
    json_t *body = NULL;
    char *body_text = NULL;
    if (ok && def->body != NULL) {
        body = bff_template_eval(def->body, c->ctx, err, sizeof(err));
        body_text = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (body != NULL && body_text == NULL)
            snprintf(err, sizeof(err), "out of memory");
        ok = body_text != NULL;
    }
    if (ok) {
        gw_call_spec spec = {.kind = BFF_CALL_UPSTREAM,
                             .upstream = def->upstream,
                             .method = def->method,
                             .target = h2o_iovec_init(target.data, target.len),
                             .headers = headers,
                             .nheaders = nvalues,
                             .body = h2o_iovec_init(body_text, body_text != NULL ? strlen(body_text) : 0),
                             .timeout_ms = timeout_ms};
        r->state = CALL_RUNNING;
        r->call = gw_call_start(c->w, &spec, &c->origin, on_call_done, on_call_released, r);
    }
    for (size_t i = 0; i < nvalues; ++i)
        free(values[i]);
    free(body_text);
    json_decref(body);
    fn_buf_release(&target);
    if (!ok)
        call_failed(r, 0, "bad input", err);
}

static void start_call(call_run *r)
{
    compose *c = r->c;
    r->start_ns = fn_now_ns();
    uint64_t left = remaining_ms(c);
    uint64_t own = r->def->timeout_ms != 0             ? r->def->timeout_ms
                   : r->def->kind == BFF_CALL_UPSTREAM ? r->def->upstream->timeout_ms
                                                       : left;
    uint64_t timeout = own < left ? own : left;
    if (timeout == 0) {
        r->state = CALL_RUNNING;
        call_failed(r, 1, "timeout", "no time left before the route's deadline");
        return;
    }
    if (r->def->kind == BFF_CALL_FUNCTION)
        start_function(r, timeout);
    else
        start_upstream(r, timeout);
}

static void launch_step(compose *c)
{
    const bff_step *step = &c->plan->steps[c->step];
    c->pending = step->ncalls;
    c->launching = 1;
    for (size_t i = 0; i < step->ncalls && c->failed == NULL; ++i)
        start_call(&c->runs[c->step_first + i]);
    c->launching = 0;
    if (c->failed != NULL) {
        fail_route(c);
    } else if (c->pending == 0) {
        c->step_first += step->ncalls;
        if (++c->step < c->plan->nsteps)
            launch_step(c);
        else
            respond(c);
    }
}

/* ---- the task ---- */

static int compose_cancel(fn_task *task)
{
    compose *c = (compose *)task;
    c->cancelled = 1;
    cancel_running(c);
    /* Abandoned C calls still hold references: the owner is told when the last has ended. */
    c->released_owed = c->refs > 1 && c->route_call.released != NULL;
    int abandoned = c->released_owed;
    compose_unref(c);
    return abandoned;
}

int gw_compose_start(struct gw_worker *w, const bff_route *route, const gw_compose_input *in, fn_response *res,
                     fn_done_cb done, void *data, fn_task **task)
{
    const bff_plan *plan = route->plan;
    compose *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->runs = calloc(plan->ncalls, sizeof(*c->runs))) == NULL || (c->ctx = json_object()) == NULL) {
        if (c != NULL) {
            free(c->runs);
            free(c);
        }
        snprintf(res->error, sizeof(res->error), "out of memory");
        return -ENOMEM;
    }
    c->task.cancel = compose_cancel;
    c->w = w;
    c->plan = plan;
    json_object_set(c->ctx, "request", in->request);
    c->route_call = *in->call;
    c->deadline_ns = in->call->start_ns + in->call->limits.timeout_ms * 1000000ULL;
    c->request_id_len = in->request_id.len < sizeof(c->request_id) ? in->request_id.len : sizeof(c->request_id) - 1;
    memcpy(c->request_id, in->request_id.base, c->request_id_len);
    gw_scope_trace(w, in->scope);
    c->origin = (gw_call_origin){&c->route_call, h2o_iovec_init(c->request_id, c->request_id_len), in->scope->trace_id,
                                 in->scope->trace_flags};
    size_t k = 0;
    for (size_t s = 0; s < plan->nsteps; ++s) {
        for (size_t i = 0; i < plan->steps[s].ncalls; ++i) {
            c->runs[k].c = c;
            c->runs[k].def = &plan->steps[s].calls[i];
            ++k;
        }
    }
    c->res = res;
    c->done = done;
    c->done_data = data;
    c->refs = 1;
    c->starting = 1;
    launch_step(c);
    c->starting = 0;
    if (c->finished_early) {
        compose_unref(c);
        return 0;
    }
    *task = &c->task;
    return FN_PENDING;
}
