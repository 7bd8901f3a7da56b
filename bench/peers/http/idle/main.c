/*
 * Idle keep-alive connections for the http scenario's memory test (not a
 * peer: a load tool, the same for every server). Opens N TCP connections to
 * HOST:PORT (at most WINDOW in progress at once, so the listen backlog never
 * overflows), sends one "GET / HTTP/1.1" on each and reads the whole response,
 * so every connection is a served keep-alive connection, then leaves them
 * idle. Prints "ready N" on stdout; on each line read from stdin it prints
 * "open N" (connections the server has not closed); on EOF it closes them
 * all with SO_LINGER 0 (no TIME_WAIT left behind) and exits.
 * Usage: idle HOST PORT N     (raises RLIMIT_NOFILE to N + 64 when it can)
 * Depends on libc and Linux (epoll) only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { WINDOW = 256, BUF = 4096 };

typedef struct conn {
    int fd;
    int state; /* 0 connecting, 1 request sent, 2 done */
    size_t got;
    char buf[BUF];
} conn_t;

static const char REQ[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

static void die(const char *what) {
    fprintf(stderr, "idle: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Whether buf holds one whole response (headers and Content-Length bytes). */
static int response_complete(const char *buf, size_t n) {
    const char *end = memmem(buf, n, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - buf) + 4;
    size_t len = 0;
    for (const char *p = buf; p < end;) {
        const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - p) > 15 && !strncasecmp(p, "Content-Length:", 15))
            len = strtoul(p + 15, NULL, 10);
        p = eol + 2;
    }
    return n >= head + len ? 1 : 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: idle HOST PORT N\n");
        return 2;
    }
    int n = atoi(argv[3]);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if (n <= 0 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
        fprintf(stderr, "idle: bad arguments\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
        rl.rlim_cur = (rlim_t)n + 64;
        if (rl.rlim_max < rl.rlim_cur)
            rl.rlim_max = rl.rlim_cur; /* may fail when not privileged: reported below */
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            die("setrlimit(RLIMIT_NOFILE)");
    }
    conn_t *c = calloc((size_t)n, sizeof *c);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!c || ep < 0)
        die("set-up");
    int started = 0, done = 0, active = 0;
    double deadline = now_s() + 60;
    struct epoll_event evs[WINDOW];
    while (done < n) {
        while (active < WINDOW && started < n) {
            conn_t *k = &c[started];
            k->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (k->fd < 0)
                die("socket");
            int one = 1;
            (void)setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (connect(k->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
                die("connect");
            struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)started};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, k->fd, &ev) < 0)
                die("epoll_ctl");
            started++;
            active++;
        }
        if (now_s() > deadline) {
            fprintf(stderr, "idle: only %d of %d connections served within 60 s\n", done, n);
            return 1;
        }
        int m = epoll_wait(ep, evs, WINDOW, 1000);
        if (m < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < m; i++) {
            conn_t *k = &c[evs[i].data.u32];
            if (k->state == 0) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) {
                    errno = err;
                    die("connect (async)");
                }
                if (write(k->fd, REQ, sizeof REQ - 1) != (ssize_t)(sizeof REQ - 1))
                    die("write");
                k->state = 1;
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[i].data.u32};
                if (epoll_ctl(ep, EPOLL_CTL_MOD, k->fd, &ev) < 0)
                    die("epoll_ctl");
            } else if (k->state == 1) {
                ssize_t r = read(k->fd, k->buf + k->got, BUF - 1 - k->got);
                if (r <= 0) {
                    if (r < 0 && errno == EAGAIN)
                        continue;
                    fprintf(stderr, "idle: connection %u closed before its response\n",
                            evs[i].data.u32);
                    return 1;
                }
                k->got += (size_t)r;
                if (strncmp(k->buf, "HTTP/1.1 200", 12) && k->got >= 12) {
                    fprintf(stderr, "idle: unexpected response: %.40s\n", k->buf);
                    return 1;
                }
                if (response_complete(k->buf, k->got)) {
                    k->state = 2;
                    (void)epoll_ctl(ep, EPOLL_CTL_DEL, k->fd, NULL);
                    done++;
                    active--;
                }
            }
        }
    }
    printf("ready %d\n", n);
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        int open = 0;
        for (int i = 0; i < n; i++) {
            char b;
            ssize_t r = recv(c[i].fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
            if (r < 0 && errno == EAGAIN)
                open++;
        }
        printf("open %d\n", open);
        fflush(stdout);
    }
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    for (int i = 0; i < n; i++) {
        (void)setsockopt(c[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(c[i].fd);
    }
    close(ep);
    free(c);
    return 0;
}
