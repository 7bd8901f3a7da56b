/*
 * libFuzzer driver for the web host's whole request path: libmicrohttpd's
 * parser, then src/web (limits, routing, middleware, body reading, the
 * handlers, async completion, endpoints, logging and metrics).
 *
 * LLVMFuzzerInitialize starts one real host with the web server on a unix
 * socket (no ephemeral TCP ports to run out of) and these routes:
 *   GET  /                       "ok" (the liveness probe below)
 *   POST /echo                   echoes the buffered body
 *   GET  /users/{id}/{*rest}     route values, query values, a header
 *   POST /json                   parses the body as JSON, answers it back
 *   PUT  /upload                 streamed body (on_body), own 2 KiB limit;
 *                                a chunk holding 'X' fails the upload
 *   GET  /async/{n}              async: completed inline (even n) or by a
 *                                worker thread (odd n)
 *   GET  /file, /nofile          a file response, a missing file (404)
 *   GET  /fail                   the handler fails (500)
 *   + /healthz, /metrics, and middleware: X-Deny answers 401 (HK_WEB_DONE),
 *     X-Fail fails the before hook (500), an after hook adds a header.
 * Limits are small (headers 1 KiB, body 4 KiB, header timeout 2 s) so the
 * limit paths are reachable with short inputs.
 *
 * Per input: a fresh connection, the bytes written (interleaved with
 * reading, so pipelined responses cannot deadlock us), then read until the
 * server closes or is done with them (exchange() below). Checked:
 *  - within STALL_MS the server has read every byte or closed (no stall);
 *  - every PROBE_EVERY inputs (and at start), a plain GET / on a new
 *    connection gets 200, and every request and connection the server
 *    tracked is released (inflight 0, no connection listed) within STALL_MS;
 *  - ASan/UBSan on every thread of the server.
 * Leaks: the server's own threads allocate and free across input
 * boundaries, so libFuzzer's per-input leak check (-detect_leaks) is off
 * for this target (run.sh); instead the host is stopped and freed at exit
 * and LeakSanitizer checks the whole process then (ASAN_OPTIONS
 * detect_leaks=1), and a leaked request shows as inflight > 0 at a probe.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hostkit/web.h"
#include "web/web_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STALL_MS 5000
#define QUIET_MS 1
#define PROBE_EVERY 100
#define ASYNC_QUEUE 64

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static struct {
    hk_host_t *h;
    hk_web_t *web;
    pthread_t th;
    char dir[64];
    char sock[128];
    char file[128];
    unsigned long runs;
    /* async worker */
    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    hk_web_request_t *q[ASYNC_QUEUE];
    size_t nq;
    bool stop;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the application ------------------------------------------------------------------ */

static int h_ok(hk_web_request_t *req, void *data) {
    (void)data;
    return hk_web_response_text(req, 200, NULL, "ok");
}

static int h_echo(hk_web_request_t *req, void *data) {
    (void)data;
    size_t n;
    const char *b = hk_web_request_body(req, &n);
    hk_web_response_header(req, "Content-Type", "application/octet-stream");
    return hk_web_response_body(req, b, n);
}

static int h_users(hk_web_request_t *req, void *data) {
    (void)data;
    const char *id = hk_web_request_param(req, "id");
    const char *rest = hk_web_request_param(req, "rest");
    const char *q = hk_web_request_query(req, "q");
    const char *q2 = hk_web_request_query(req, "");
    const char *ua = hk_web_request_header(req, "User-Agent");
    return hk_web_response_json(req, 200,
                                json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:s}", "id", id, "rest",
                                          rest, "q", q, "q2", q2, "ua", ua, "peer",
                                          hk_web_request_peer(req)));
}

static int h_json(hk_web_request_t *req, void *data) {
    (void)data;
    json_t *j = NULL;
    char err[128];
    int rc = hk_web_request_json(req, &j, err, sizeof err);
    if (rc < 0)
        return hk_web_response_text(req, 400, NULL, err);
    return hk_web_response_json(req, 200, j);
}

static int on_chunk(hk_web_request_t *req, const void *chunk, size_t len, void *data) {
    (void)data;
    if (memchr(chunk, 'X', len)) {
        hk_web_response_status(req, 422);
        return -EINVAL;
    }
    return 0;
}

static int h_upload(hk_web_request_t *req, void *data) {
    (void)data;
    return hk_web_response_text(req, 201, NULL, "stored");
}

static void *worker_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&S.mu);
    for (;;) {
        while (!S.nq && !S.stop)
            pthread_cond_wait(&S.cv, &S.mu);
        if (!S.nq)
            break;
        hk_web_request_t *req = S.q[--S.nq];
        pthread_mutex_unlock(&S.mu);
        hk_web_response_text(req, 202, NULL, "later");
        hk_web_complete(req);
        pthread_mutex_lock(&S.mu);
    }
    pthread_mutex_unlock(&S.mu);
    return NULL;
}

static int h_async(hk_web_request_t *req, void *data) {
    (void)data;
    const char *n = hk_web_request_param(req, "n");
    size_t len = strlen(n);
    bool inline_done = len == 0 || (n[len - 1] - '0') % 2 == 0;
    if (!inline_done) {
        pthread_mutex_lock(&S.mu);
        if (S.nq < ASYNC_QUEUE) {
            S.q[S.nq++] = req;
            pthread_cond_signal(&S.cv);
            pthread_mutex_unlock(&S.mu);
            return HK_WEB_ASYNC;
        }
        pthread_mutex_unlock(&S.mu);
    }
    hk_web_response_text(req, 200, NULL, "inline");
    hk_web_complete(req);
    return HK_WEB_ASYNC;
}

static int h_file(hk_web_request_t *req, void *data) {
    int rc = hk_web_response_file(req, data, NULL);
    if (rc < 0)
        return hk_web_response_text(req, 404, NULL, "no file");
    return 0;
}

static int h_fail(hk_web_request_t *req, void *data) {
    (void)req;
    (void)data;
    return -EIO;
}

static int mw_before(hk_web_request_t *req, void *data) {
    (void)data;
    if (hk_web_request_header(req, "X-Fail"))
        return -EPERM;
    if (hk_web_request_header(req, "X-Deny")) {
        hk_web_response_text(req, 401, NULL, "denied");
        return HK_WEB_DONE;
    }
    return 0;
}

static void mw_after(hk_web_request_t *req, void *data) {
    (void)data;
    hk_web_response_header(req, "X-Request-Id", hk_web_request_method(req));
}

/* ---- the server ----------------------------------------------------------------------- */

static void *host_main(void *arg) {
    (void)arg;
    (void)hk_host_run(S.h);
    return NULL;
}

static void stop_server(void) {
    if (!S.h)
        return;
    hk_host_stop(S.h);
    pthread_join(S.th, NULL);
    hk_host_free(S.h);
    S.h = NULL;
    pthread_mutex_lock(&S.mu);
    S.stop = true;
    pthread_cond_broadcast(&S.cv);
    pthread_mutex_unlock(&S.mu);
    pthread_join(S.worker, NULL);
    unlink(S.file);
    rmdir(S.dir);
}

static int probe(void);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    snprintf(S.dir, sizeof S.dir, "/tmp/hk-fuzz-web-XXXXXX");
    CHECK(mkdtemp(S.dir));
    snprintf(S.sock, sizeof S.sock, "%s/web.sock", S.dir);
    snprintf(S.file, sizeof S.file, "%s/index.html", S.dir);
    FILE *f = fopen(S.file, "w");
    CHECK(f);
    fputs("<p>hello</p>\n", f);
    fclose(f);

    hk_builder_t *b = hk_builder_new(0, NULL);
    CHECK(b);
    hk_config_t *c = hk_builder_config(b);
    char url[160];
    snprintf(url, sizeof url, "http://unix:%s", S.sock);
    hk_config_set(c, "Host:HandleSignals", "false");
    hk_config_set(c, "Host:ShutdownTimeoutSeconds", "2");
    hk_config_set(c, "Logging:LogLevel:Default", "Critical");
    hk_config_set(c, "Web:Urls", url);
    hk_config_set(c, "Web:Threads", "2");
    hk_config_set(c, "Web:Limits:MaxRequestHeadersBytes", "1KiB");
    hk_config_set(c, "Web:Limits:MaxRequestBodyBytes", "4KiB");
    hk_config_set(c, "Web:Limits:RequestHeadersTimeoutSeconds", "2");
    hk_config_set(c, "Web:Limits:KeepAliveTimeoutSeconds", "2");
    hk_web_t *web = NULL;
    CHECK(hk_builder_add_web(b, &web) == 0);
    CHECK(hk_web_map(web, "GET", "/", h_ok, NULL) == 0);
    CHECK(hk_web_map(web, "POST", "/echo", h_echo, NULL) == 0);
    CHECK(hk_web_map(web, "GET", "/users/{id}/{*rest}", h_users, NULL) == 0);
    CHECK(hk_web_map(web, "POST", "/json", h_json, NULL) == 0);
    hk_web_route_def_t up = {.method = "PUT", .pattern = "/upload", .handler = h_upload,
                             .on_body = on_chunk, .max_body_bytes = 2048};
    CHECK(hk_web_add_route(web, &up) == 0);
    CHECK(hk_web_map(web, "GET", "/async/{n}", h_async, NULL) == 0);
    CHECK(hk_web_map(web, "GET", "/file", h_file, S.file) == 0);
    CHECK(hk_web_map(web, "GET", "/nofile", h_file, "/nonexistent/hk-fuzz") == 0);
    CHECK(hk_web_map(web, "*", "/fail", h_fail, NULL) == 0);
    CHECK(hk_web_use(web, mw_before, mw_after, NULL) == 0);
    if (hk_builder_build(b, &S.h) < 0) {
        fprintf(stderr, "fuzz_web_request: build failed: %s\n", hk_builder_error(b));
        abort();
    }
    hk_builder_free(b);
    S.web = web;
    CHECK(pthread_create(&S.worker, NULL, worker_main, NULL) == 0);
    CHECK(pthread_create(&S.th, NULL, host_main, NULL) == 0);
    uint64_t until = now_ms() + 10000;
    while (!hk_token_is_cancelled(hk_host_started(S.h))) {
        CHECK(!hk_token_is_cancelled(hk_host_stopped(S.h)) && now_ms() < until);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    atexit(stop_server); /* before LeakSanitizer's own exit check */
    CHECK(probe() == 200);
    return 0;
}

/* ---- the client ----------------------------------------------------------------------- */

/* Whether the server has nothing left to do for the client: no async request pending. */
static bool async_idle(void) {
    pthread_mutex_lock(&S.mu);
    bool idle = S.nq == 0;
    pthread_mutex_unlock(&S.mu);
    pthread_mutex_lock(&S.web->mu);
    idle = idle && S.web->suspended == NULL;
    pthread_mutex_unlock(&S.web->mu);
    return idle;
}

/*
 * Sends data on a new connection and reads what comes back until the
 * server closes, or until it has read every byte we sent (SIOCOUTQ 0), no
 * async request is pending and nothing arrived for QUIET_MS; then closes.
 * (No half-close: libmicrohttpd treats EOF as an abort and would drop a
 * complete request unanswered.) Returns the bytes read into out (up to
 * outlen), or -1 if the server did not get there within STALL_MS.
 * until_eof: wait for the server to close (the probe asks it to).
 */
static ssize_t exchange(const void *data, size_t size, char *out, size_t outlen, bool until_eof) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "%s", S.sock);
    CHECK(connect(fd, (struct sockaddr *)&un, sizeof un) == 0);
    CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
    size_t off = 0, got = 0;
    uint64_t until = now_ms() + STALL_MS;
    ssize_t result = -1;
    while (now_ms() < until) {
        bool sending = off < size;
        struct pollfd p = {.fd = fd, .events = POLLIN | (sending ? POLLOUT : 0)};
        int pr = poll(&p, 1, sending ? 100 : QUIET_MS);
        if (pr == 0 && !sending && !until_eof) {
            int outq = 0;
            if (ioctl(fd, SIOCOUTQ, &outq) == 0 && outq == 0 && async_idle()) {
                result = (ssize_t)got;
                break;
            }
            continue;
        }
        if (pr <= 0)
            continue;
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[16384];
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                result = (ssize_t)got;
                break;
            }
            if (n > 0) {
                if (out && got < outlen) {
                    size_t k = (size_t)n < outlen - got ? (size_t)n : outlen - got;
                    memcpy(out + got, buf, k);
                }
                got += (size_t)n;
            }
        }
        if (sending && (p.revents & POLLOUT)) {
            ssize_t n = send(fd, (const char *)data + off, size - off, MSG_NOSIGNAL);
            if (n > 0)
                off += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                off = size; /* the server closed its side: stop writing */
        }
    }
    close(fd);
    return result;
}

static bool released(void) {
    hk_web_t *web = S.web;
    pthread_mutex_lock(&web->mu);
    bool idle = web->inflight == 0 && web->conns == NULL;
    pthread_mutex_unlock(&web->mu);
    return idle;
}

/* A plain GET / on a new connection: its status (0 when none); then waits for the server to be idle. */
static int probe(void) {
    static const char get[] = "GET / HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n";
    char out[256] = "";
    ssize_t n = exchange(get, sizeof get - 1, out, sizeof out - 1, true);
    int status = 0;
    if (n > 0)
        (void)sscanf(out, "HTTP/1.%*d %d", &status);
    uint64_t until = now_ms() + STALL_MS;
    while (!released()) {
        if (now_ms() > until) {
            fprintf(stderr, "fuzz_web_request: requests or connections still held %d ms after "
                            "their clients closed (inflight %ld)\n",
                    STALL_MS, S.web->inflight);
            abort();
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (exchange(data, size, NULL, 0, false) < 0) {
        fprintf(stderr, "fuzz_web_request: the server neither read the input nor closed the "
                        "connection within %d ms\n",
                STALL_MS);
        abort();
    }
    if (++S.runs % PROBE_EVERY == 0) {
        int st = probe();
        if (st != 200) {
            fprintf(stderr, "fuzz_web_request: GET / after this input gave %d, not 200\n", st);
            abort();
        }
    }
    return 0;
}
