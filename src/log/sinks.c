/*
 * The built-in sinks, driven by the log's writer thread only: the console
 * (an fd or a callback), a size-rolled file (reopened on request for
 * logrotate) and the native journald protocol (one datagram per message,
 * a sealed memfd for messages too large for a datagram).
 * Depends on libc, Linux (memfd, SCM_RIGHTS), log_int.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log/log_int.h"
#include "systemd/systemd_int.h"

#define FLUSH_AT (64 * 1024)

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}


/* ---- console ---- */

void hk__console_flush(hk__console_t *c, atomic_ulong *errors) {
    if (c->out.len) {
        int fd = c->fd_override >= 0 ? c->fd_override : c->fd;
        if (write_all(fd, c->out.p, c->out.len) < 0)
            atomic_fetch_add(errors, 1);
        c->out.len = 0;
    }
    c->out.oom = false;
}

void hk__console_write(hk__console_t *c, const hk_log_record_t *rec, atomic_ulong *errors) {
    if (c->cb) {
        hk__fmt_opts_t o = c->opts;
        o.colors = false;
        hk__buf_t line = {0};
        hk__format(&line, rec, &o);
        hk_log_record_t r = *rec;
        r.line = line.p ? line.p : "\n";
        r.len = line.p ? line.len : 1;
        c->cb(&r, c->cb_data);
        hk__buf_free(&line);
        return;
    }
    hk__format(&c->out, rec, &c->opts);
    if (c->out.len >= FLUSH_AT || c->out.oom)
        hk__console_flush(c, errors);
}

/* ---- file ---- */

void hk__file_close(hk__file_t *f) {
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    hk__free(f->path);
    f->path = NULL;
    hk__free(f->opts.ts_format);
    f->opts.ts_format = NULL;
    hk__buf_free(&f->out);
}

static void file_open(hk__file_t *f, atomic_ulong *errors) {
    if (!f->path)
        return;
    f->fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    struct stat st;
    if (f->fd < 0) {
        atomic_fetch_add(errors, 1);
        f->failed = true;
        return;
    }
    f->failed = false;
    f->size = fstat(f->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

void hk__file_configure(hk__file_t *f, const hk__log_settings_t *s, atomic_ulong *errors) {
    bool same = f->path && s->file_path && strcmp(f->path, s->file_path) == 0;
    if (!same) {
        hk__file_flush(f, errors);
        if (f->fd >= 0)
            close(f->fd);
        f->fd = -1;
        hk__free(f->path);
        f->path = hk__strdup(s->file_path);
        file_open(f, errors);
    }
    hk__free(f->opts.ts_format);
    f->opts = s->file;
    f->opts.ts_format = hk__strdup(s->file.ts_format);
    f->opts.colors = false;
    f->max_bytes = s->file_max_bytes;
    f->max_files = s->file_max_files;
}

void hk__file_flush(hk__file_t *f, atomic_ulong *errors) {
    if (f->out.len && f->fd >= 0) {
        if (write_all(f->fd, f->out.p, f->out.len) < 0)
            atomic_fetch_add(errors, 1);
        else
            f->size += f->out.len;
    }
    f->out.len = 0;
    f->out.oom = false;
}

void hk__file_reopen(hk__file_t *f, atomic_ulong *errors) {
    hk__file_flush(f, errors);
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    file_open(f, errors);
}

/* path -> path.1 -> ... -> path.{max_files-1}; the oldest is overwritten. */
static void file_roll(hk__file_t *f, atomic_ulong *errors) {
    hk__file_flush(f, errors);
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    size_t n = strlen(f->path) + 24;
    char *from = hk__malloc(n), *to = hk__malloc(n);
    if (from && to && f->max_files > 1) {
        for (unsigned i = f->max_files - 1; i >= 1; i--) {
            if (i == 1)
                snprintf(from, n, "%s", f->path);
            else
                snprintf(from, n, "%s.%u", f->path, i - 1);
            snprintf(to, n, "%s.%u", f->path, i);
            if (rename(from, to) < 0 && errno != ENOENT)
                atomic_fetch_add(errors, 1);
        }
    } else if (f->max_files <= 1) {
        if (truncate(f->path, 0) < 0 && errno != ENOENT)
            atomic_fetch_add(errors, 1);
    }
    hk__free(from);
    hk__free(to);
    file_open(f, errors);
}

void hk__file_write(hk__file_t *f, const hk_log_record_t *rec, atomic_ulong *errors) {
    if (f->fd < 0)
        return;
    size_t before = f->out.len;
    hk__format(&f->out, rec, &f->opts);
    if (f->out.oom) {
        f->out.len = before;
        hk__file_flush(f, errors);
        return;
    }
    size_t linelen = f->out.len - before;
    if (f->max_bytes && f->size + f->out.len > f->max_bytes && f->size + before > 0) {
        /* the line does not fit: write what precedes it, roll, then the line */
        char *line = hk__malloc(linelen);
        if (line) {
            memcpy(line, f->out.p + before, linelen);
            f->out.len = before;
            if (f->size + before > 0)
                file_roll(f, errors);
            hk__buf_put(&f->out, line, linelen);
            hk__free(line);
        }
    }
    if (f->out.len >= FLUSH_AT)
        hk__file_flush(f, errors);
}

/* ---- journald ---- */

void hk__journal_close(hk__journal_t *j) {
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
    hk__free(j->socket_path);
    hk__free(j->ident);
    j->socket_path = j->ident = NULL;
    hk__buf_free(&j->dg);
}

void hk__journal_configure(hk__journal_t *j, const hk__log_settings_t *s) {
    if (!j->socket_path || !s->journal_socket || strcmp(j->socket_path, s->journal_socket) != 0) {
        if (j->fd >= 0)
            close(j->fd);
        j->fd = -1;
        hk__free(j->socket_path);
        j->socket_path = hk__strdup(s->journal_socket);
    }
    hk__free(j->ident);
    j->ident = hk__strdup(s->journal_ident);
}

/* A journal field name from a hole name: upper case, [A-Z0-9_], not starting with _ or a digit. */
static void field_name(hk__buf_t *b, const char *name) {
    if (!*name || *name == '_' || (*name >= '0' && *name <= '9'))
        hk__buf_puts(b, "F_");
    size_t k = 0;
    for (const char *p = name; *p && k < 60; p++, k++) {
        char c = *p;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            c = '_';
        hk__buf_putc(b, c);
    }
}

/* NAME=value\n, or the binary form when the value has a newline. */
static void field_value(hk__buf_t *b, const char *v, size_t n) {
    if (!memchr(v, '\n', n)) {
        hk__buf_putc(b, '=');
        hk__buf_put(b, v, n);
        hk__buf_putc(b, '\n');
        return;
    }
    hk__buf_putc(b, '\n');
    unsigned char le[8];
    uint64_t len = n;
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(len >> (8 * i));
    hk__buf_put(b, (const char *)le, 8);
    hk__buf_put(b, v, n);
    hk__buf_putc(b, '\n');
}

static void field(hk__buf_t *b, const char *name, const char *v) {
    hk__buf_puts(b, name);
    field_value(b, v, strlen(v));
}

/* The fields this sink writes itself: a hole or scope with one of these
 * names gets an "F_" prefix, so user data never overrides PRIORITY & co. */
static const char *const own_fields[] = {
    "MESSAGE",  "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE",       "CODE_FUNC",
    "LOGGER_CATEGORY",      "EVENT_ID",          "ERRNO",     "TID", "MESSAGE_TEMPLATE"};

static void field_typed(hk__buf_t *b, const hk_log_field_t *f) {
    if (f->value.type == HK_LOG_T_MISSING)
        return;
    size_t at = b->len;
    field_name(b, f->name);
    for (size_t i = 0; !b->oom && i < HK_ARRAY_SIZE(own_fields); i++) {
        if (b->len - at == strlen(own_fields[i]) &&
            memcmp(b->p + at, own_fields[i], b->len - at) == 0) {
            b->len = at;
            hk__buf_puts(b, "F_");
            hk__buf_puts(b, own_fields[i]);
            break;
        }
    }
    char tmp[64];
    const char *str;
    size_t n = hk__value_chars(tmp, sizeof tmp, &f->value, &str);
    field_value(b, str ? str : tmp, n);
}

static int fill_addr(const char *path, struct sockaddr_un *sa, socklen_t *len) {
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof sa->sun_path)
        return -EINVAL;
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, n);
    if (path[0] == '@')
        sa->sun_path[0] = '\0';
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1));
    return 0;
}

/* Too large for a datagram: pass a sealed memfd holding the fields (journald's protocol). */
static int send_memfd(int sock, const struct sockaddr_un *sa, socklen_t salen, const char *p,
                      size_t n) {
    int mfd = memfd_create("hostkit-journal", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0)
        return -errno;
    int rc = write_all(mfd, p, n);
    if (rc == 0 && fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
        rc = -errno;
    if (rc == 0) {
        char ctl[CMSG_SPACE(sizeof(int))];
        memset(ctl, 0, sizeof ctl);
        struct msghdr mh = {.msg_name = (void *)sa, .msg_namelen = salen, .msg_control = ctl,
                            .msg_controllen = sizeof ctl};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &mfd, sizeof(int));
        if (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
            rc = -errno;
    }
    close(mfd);
    return rc;
}

static const int priorities[] = {7, 7, 6, 4, 3, 2};

void hk__journal_write(hk__journal_t *j, const hk_log_record_t *rec, atomic_ulong *errors) {
    if (!j->socket_path)
        return;
    if (j->fd < 0) {
        j->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (j->fd < 0) {
            atomic_fetch_add(errors, 1);
            return;
        }
    }
    hk__buf_t *b = &j->dg;
    b->len = 0;
    b->oom = false;
    field(b, "MESSAGE", rec->message ? rec->message : "");
    hk__buf_printf(b, "PRIORITY=%d\n", priorities[(unsigned)rec->level < 6 ? rec->level : 5]);
    if (j->ident)
        field(b, "SYSLOG_IDENTIFIER", j->ident);
    if (rec->file) {
        field(b, "CODE_FILE", rec->file);
        hk__buf_printf(b, "CODE_LINE=%d\n", rec->line_no);
    }
    if (rec->func)
        field(b, "CODE_FUNC", rec->func);
    field(b, "LOGGER_CATEGORY", rec->category ? rec->category : "");
    if (rec->event_id)
        hk__buf_printf(b, "EVENT_ID=%d\n", rec->event_id);
    if (rec->err)
        hk__buf_printf(b, "ERRNO=%d\n", rec->err);
    hk__buf_printf(b, "TID=%ld\n", rec->tid);
    if (rec->format)
        field(b, "MESSAGE_TEMPLATE", rec->format);
    for (size_t i = 0; i < rec->nfields; i++)
        field_typed(b, &rec->fields[i]);
    for (size_t i = 0; i < rec->nscopes; i++)
        field_typed(b, &rec->scopes[i]);
    if (b->oom) {
        atomic_fetch_add(errors, 1);
        return;
    }
    struct sockaddr_un sa;
    socklen_t salen;
    if (fill_addr(j->socket_path, &sa, &salen) < 0) {
        atomic_fetch_add(errors, 1);
        return;
    }
    ssize_t w;
    do
        w = sendto(j->fd, b->p, b->len, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    while (w < 0 && errno == EINTR);
    if (w < 0 && (errno == EMSGSIZE || errno == ENOBUFS))
        w = send_memfd(j->fd, &sa, salen, b->p, b->len) == 0 ? 0 : -1;
    if (w < 0)
        atomic_fetch_add(errors, 1);
}
