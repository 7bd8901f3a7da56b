/*
 * The systemd protocols, reimplemented from their documentation (no
 * libsystemd): the notify datagram socket, the watchdog interval, socket
 * activation (LISTEN_*), and detection of the journal and of systemd.
 * Depends on libc and src/common.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "hostkit/systemd.h"
#include "systemd/systemd_int.h"

int hk__notify_open(hk__notify_t *n, const char **ret_error) {
    n->fd = -1;
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof n->addr.sun_path) {
        *ret_error = "NOTIFY_SOCKET is neither an absolute path nor an abstract (@) socket name";
        return -EINVAL;
    }
    memset(&n->addr, 0, sizeof n->addr);
    n->addr.sun_family = AF_UNIX;
    memcpy(n->addr.sun_path, path, len);
    if (path[0] == '@')
        n->addr.sun_path[0] = '\0'; /* abstract namespace */
    n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *ret_error = "socket(AF_UNIX, SOCK_DGRAM) failed";
        return -errno;
    }
    n->fd = fd;
    return 0;
}

void hk__notify_close(hk__notify_t *n) {
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
}

int hk__notify_send(const hk__notify_t *n, const char *msg) {
    if (!n || n->fd < 0 || !msg)
        return 0;
    ssize_t w;
    do
        w = sendto(n->fd, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)&n->addr, n->addr_len);
    while (w < 0 && errno == EINTR);
    return w < 0 ? -errno : 1;
}

/* Parses a whole unsigned decimal; false on junk or overflow. */
static bool parse_u64(const char *s, uint64_t *ret) {
    if (!s || *s < '0' || *s > '9') /* strtoull would take spaces and a sign */
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *ret = v;
    return true;
}

uint64_t hk__watchdog_usec(void) {
    uint64_t usec, pid;
    if (!parse_u64(getenv("WATCHDOG_USEC"), &usec) || usec == 0)
        return 0;
    const char *p = getenv("WATCHDOG_PID");
    if (p && (!parse_u64(p, &pid) || pid != (uint64_t)getpid()))
        return 0;
    return usec;
}

#define LISTEN_FDS_START 3
#define LISTEN_FDS_MAX 4096

int hk__listen_read(hk__listen_t *l) {
    memset(l, 0, sizeof *l);
    const char *spid = getenv("LISTEN_PID"), *sfds = getenv("LISTEN_FDS");
    const char *snames = getenv("LISTEN_FDNAMES");
    if (!spid && !sfds)
        return 0;
    uint64_t pid, nfds;
    if (!parse_u64(spid, &pid)) {
        l->warning = hk__asprintf("Ignoring socket activation: LISTEN_PID=\"%s\" is not a process id",
                                  spid ? spid : "");
        return l->warning ? 0 : -ENOMEM;
    }
    if (pid != (uint64_t)getpid()) {
        /* For another process (inherited through a wrapper): leave it alone. */
        l->warning = hk__asprintf("Ignoring socket activation: LISTEN_PID=%llu is not this process (%ld)",
                                  (unsigned long long)pid, (long)getpid());
        return l->warning ? 0 : -ENOMEM;
    }
    if (!parse_u64(sfds, &nfds) || nfds > LISTEN_FDS_MAX) {
        l->warning = hk__asprintf("Ignoring socket activation: LISTEN_FDS=\"%s\" is not a count of "
                                  "descriptors",
                                  sfds ? sfds : "");
        return l->warning ? 0 : -ENOMEM;
    }
    /* Every descriptor must be open. */
    for (uint64_t i = 0; i < nfds; i++) {
        if (fcntl(LISTEN_FDS_START + (int)i, F_GETFD) < 0) {
            l->warning = hk__asprintf("Ignoring socket activation: LISTEN_FDS=%llu but descriptor %d "
                                      "is not open",
                                      (unsigned long long)nfds, LISTEN_FDS_START + (int)i);
            return l->warning ? 0 : -ENOMEM;
        }
    }
    size_t n = (size_t)nfds;
    l->fds = hk__calloc(n ? n : 1, sizeof *l->fds);
    l->names = hk__calloc(n ? n : 1, sizeof *l->names);
    if (!l->fds || !l->names)
        goto oom;
    /* Names: colon-separated, one per descriptor; otherwise "unknown" with a warning. */
    size_t nnames = 0;
    if (snames && *snames) {
        nnames = 1;
        for (const char *p = snames; *p; p++)
            nnames += *p == ':';
    }
    if (snames && nnames != n) {
        l->warning = hk__asprintf("LISTEN_FDNAMES has %zu name(s) for %zu descriptor(s); names ignored",
                                  nnames, n);
        if (!l->warning)
            goto oom;
    }
    const char *p = snames;
    for (size_t i = 0; i < n; i++) {
        const char *name = "unknown";
        size_t len = strlen(name);
        if (snames && nnames == n) {
            const char *colon = strchr(p, ':');
            len = colon ? (size_t)(colon - p) : strlen(p);
            name = p;
            p = colon ? colon + 1 : p + len;
        }
        if (!(l->names[i] = hk__strndup(name, len)))
            goto oom;
    }
    for (size_t i = 0; i < n; i++) {
        int fd = LISTEN_FDS_START + (int)i;
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0)
            (void)fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        l->fds[i] = fd;
    }
    l->n = n;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return 0;
oom:
    for (size_t i = 0; l->names && i < n; i++)
        hk__free(l->names[i]);
    hk__free(l->names);
    hk__free(l->fds);
    hk__free(l->warning);
    memset(l, 0, sizeof *l);
    return -ENOMEM;
}

void hk__listen_free(hk__listen_t *l) {
    for (size_t i = 0; i < l->n; i++) {
        if (l->fds[i] >= 0)
            close(l->fds[i]);
        hk__free(l->names[i]);
    }
    hk__free(l->fds);
    hk__free(l->names);
    hk__free(l->warning);
    memset(l, 0, sizeof *l);
}

bool hk__fd_is_journal(int fd) {
    const char *js = getenv("JOURNAL_STREAM");
    if (!js)
        return false;
    unsigned long long dev, ino;
    if (sscanf(js, "%llu:%llu", &dev, &ino) != 2)
        return false;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

bool hk__stderr_is_journal(void) { return hk__fd_is_journal(STDERR_FILENO); }

bool hk_under_systemd(void) {
    const char *inv = getenv("INVOCATION_ID"), *ns = getenv("NOTIFY_SOCKET");
    return (inv && *inv) || (ns && *ns) || hk__stderr_is_journal();
}
