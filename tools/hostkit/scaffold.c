/*
 * tools/hostkit/scaffold.c - project names, template rendering, and writing a
 * project as one new directory (see scaffold.h).
 *
 * Divisions: names and messages; rendering ({{key}} placeholders); writing
 * (temporary directory, files, rename into place, cleanup).
 *
 * Invariant of cli_project_write: outside the temporary directory it creates,
 * the only change it ever makes to the file system is the final rename(2). If
 * anything fails before that, the temporary directory is removed again, so a
 * failed run leaves parent as it found it.
 *
 * Depends on libc and POSIX only (it does not link libhostkit), and on the
 * embedded template table (templates.h).
 */
#include "scaffold.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "templates.h"

/* ---- names and messages ---------------------------------------------------- */

static bool is_letter(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

const char *cli_quote(const char *s, char *buf, size_t len) {
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (len < 4) { /* no room for anything useful */
        if (len)
            buf[0] = '\0';
        return buf;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char piece[4] = {(char)*p};
        size_t n = 1;
        if (*p < 0x20 || *p >= 0x7f) {
            piece[0] = '\\';
            piece[1] = 'x';
            piece[2] = hex[*p >> 4];
            piece[3] = hex[*p & 15];
            n = 4;
        }
        if (o + n > len - 4) { /* always keep room for "..." and the NUL */
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(buf + o, piece, n);
        o += n;
    }
    buf[o] = '\0';
    return buf;
}

int cli_name_check(const char *name, char *err, size_t err_len) {
    size_t n = strlen(name);
    if (n == 0) {
        snprintf(err, err_len, "it is empty");
        return -EINVAL;
    }
    if (!is_letter(name[0])) {
        snprintf(err, err_len, "it must start with a letter (A-Z or a-z)");
        return -EINVAL;
    }
    for (size_t i = 1; i < n; i++) {
        char c = name[i];
        if (is_letter(c) || is_digit(c) || c == '_' || c == '-')
            continue;
        char q[8];
        char one[2] = {c, '\0'};
        snprintf(err, err_len, "'%s' is not allowed (use letters, digits, '_' and '-')",
                 cli_quote(one, q, sizeof q));
        return -EINVAL;
    }
    if (n > CLI_NAME_MAX) {
        snprintf(err, err_len, "it is %zu characters long (at most %d)", n, CLI_NAME_MAX);
        return -EINVAL;
    }
    return 0;
}

/* ---- rendering ----------------------------------------------------------------- */

/* A growable byte buffer; data is NUL-terminated while non-NULL. */
typedef struct buf {
    char *data;
    size_t len, cap;
} buf_t;

static int buf_add(buf_t *b, const char *p, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static bool is_key_char(char c) {
    return is_letter(c) || is_digit(c) || c == '_';
}

static const char *find_var(const cli_var_t *vars, size_t nvars, const char *key, size_t n) {
    for (size_t i = 0; i < nvars; i++)
        if (strlen(vars[i].key) == n && memcmp(vars[i].key, key, n) == 0)
            return vars[i].value;
    return NULL;
}

/*
 * Renders src (n bytes) into *ret (a new NUL-terminated string, *ret_len
 * bytes). what names the source in messages ("worker/src/main.c").
 */
static int render(const char *what, const char *src, size_t n, const cli_var_t *vars,
                  size_t nvars, char **ret, size_t *ret_len, char *err, size_t err_len) {
    buf_t b = {0};
    size_t line = 1, i = 0;
    int r = buf_add(&b, "", 0); /* an empty source still gives a string */
    while (r == 0 && i < n) {
        if (src[i] == '{' && i + 1 < n && src[i + 1] == '{') {
            size_t k = i + 2;
            while (k < n && is_key_char(src[k]))
                k++;
            if (k > i + 2 && k + 1 < n && src[k] == '}' && src[k + 1] == '}') {
                const char *value = find_var(vars, nvars, src + i + 2, k - i - 2);
                if (!value) {
                    snprintf(err, err_len, "template %s:%zu: unknown placeholder {{%.*s}}", what,
                             line, (int)(k - i - 2), src + i + 2);
                    r = -EINVAL;
                    break;
                }
                r = buf_add(&b, value, strlen(value));
                i = k + 2;
                continue;
            }
        }
        if (src[i] == '\n')
            line++;
        r = buf_add(&b, src + i, 1);
        i++;
    }
    if (r < 0) {
        if (r == -ENOMEM)
            snprintf(err, err_len, "rendering template %s: out of memory", what);
        free(b.data);
        return r;
    }
    *ret = b.data;
    *ret_len = b.len;
    return 0;
}

/* The part of path below "<kind>/", or NULL when path is not in that template. */
static const char *below(const char *path, const char *kind) {
    size_t n = strlen(kind);
    return strncmp(path, kind, n) == 0 && path[n] == '/' ? path + n + 1 : NULL;
}

bool cli_template_exists(const char *kind) {
    for (size_t i = 0; i < cli_template_nfiles; i++)
        if (below(cli_template_files[i].path, kind))
            return true;
    return false;
}

const char *cli_template_names(char *buf, size_t len) {
    size_t o = 0, prev_len = 0;
    const char *prev = NULL;
    if (len)
        buf[0] = '\0';
    /* The table is sorted by path, so the files of one template are adjacent. */
    for (size_t i = 0; i < cli_template_nfiles; i++) {
        const char *path = cli_template_files[i].path;
        const char *slash = strchr(path, '/');
        size_t n = slash ? (size_t)(slash - path) : 0;
        if (n == 0 || (prev && n == prev_len && memcmp(path, prev, n) == 0))
            continue;
        int w = snprintf(buf + o, len - o, "%s%.*s", prev ? ", " : "", (int)n, path);
        if (w < 0 || (size_t)w >= len - o)
            break; /* truncated: the names that fit */
        o += (size_t)w;
        prev = path;
        prev_len = n;
    }
    return buf;
}

void cli_project_free(cli_project_t *project) {
    if (!project)
        return;
    for (size_t i = 0; i < project->n; i++) {
        free(project->files[i].path);
        free(project->files[i].data);
    }
    free(project->files);
    project->files = NULL;
    project->n = 0;
}

int cli_project_render(const char *kind, const cli_var_t *vars, size_t nvars,
                       cli_project_t *ret_project, char *err, size_t err_len) {
    cli_project_t p = {0};
    size_t count = 0;
    for (size_t i = 0; i < cli_template_nfiles; i++)
        if (below(cli_template_files[i].path, kind))
            count++;
    if (count == 0) {
        snprintf(err, err_len, "no template named '%s'", kind);
        return -ENOENT;
    }
    p.files = calloc(count, sizeof *p.files);
    if (!p.files) {
        snprintf(err, err_len, "rendering template %s: out of memory", kind);
        return -ENOMEM;
    }
    int r = 0;
    for (size_t i = 0; i < cli_template_nfiles && r == 0; i++) {
        const cli_template_file_t *t = &cli_template_files[i];
        const char *rel = below(t->path, kind);
        if (!rel)
            continue;
        cli_file_t *f = &p.files[p.n];
        size_t path_len;
        r = render(t->path, rel, strlen(rel), vars, nvars, &f->path, &path_len, err, err_len);
        if (r == 0) {
            r = render(t->path, t->data, t->size, vars, nvars, &f->data, &f->size, err, err_len);
            if (r < 0) {
                free(f->path);
                f->path = NULL;
            }
        }
        if (r == 0)
            p.n++;
    }
    if (r < 0) {
        cli_project_free(&p);
        return r;
    }
    *ret_project = p;
    return 0;
}

/* ---- writing --------------------------------------------------------------------- */

/* nftw callback: removes what it visits (children first, thanks to FTW_DEPTH). */
static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path) < 0 ? -1 : 0;
}

/* Removes the directory tree at path without following symlinks. Returns 0 or -errno. */
static int remove_tree(const char *path) {
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
        return errno ? -errno : -EIO;
    return 0;
}

/* Whether the directory at path is empty: 1, 0, or -errno. */
static int dir_is_empty(const char *path) {
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    int empty = 1;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    }
    int r = errno && empty ? -errno : empty;
    closedir(d);
    return r;
}

/* Writes all n bytes to fd, retrying after EINTR and short writes. */
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

/*
 * Creates file->path (and its parent directories) below the directory dirfd.
 * On failure err names the file as it will appear in the project (shown).
 */
static int write_file(int dirfd, const cli_file_t *file, const char *shown, char *err,
                      size_t err_len) {
    char rel[4096];
    if ((size_t)snprintf(rel, sizeof rel, "%s", file->path) >= sizeof rel) {
        snprintf(err, err_len, "%s/%s: path too long", shown, file->path);
        return -ENAMETOOLONG;
    }
    /* Parent directories, one component at a time (existing ones are fine). */
    for (char *slash = strchr(rel, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (mkdirat(dirfd, rel, 0777) < 0 && errno != EEXIST) {
            int e = errno;
            snprintf(err, err_len, "cannot create directory %s/%s: %s", shown, rel, strerror(e));
            return -e;
        }
        *slash = '/';
    }
    int fd = openat(dirfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd < 0) {
        int e = errno;
        snprintf(err, err_len, "cannot create %s/%s: %s", shown, rel, strerror(e));
        return -e;
    }
    int r = write_all(fd, file->data, file->size);
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r < 0)
        snprintf(err, err_len, "cannot write %s/%s: %s", shown, rel, strerror(-r));
    return r;
}

/* The mode mkdir(path, 0777) would give under the current umask. */
static mode_t new_dir_mode(void) {
    mode_t mask = umask(0);
    umask(mask);
    return 0777 & ~mask;
}

int cli_project_write(const cli_project_t *project, const char *parent, const char *target,
                      char *err, size_t err_len) {
    struct stat st;
    const char *name = strrchr(target, '/');
    name = name ? name + 1 : target;

    int e = stat(parent, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
    if (e) {
        snprintf(err, err_len, "cannot use output directory %s: %s", parent, strerror(e));
        return -e;
    }
    /* Refusals: nothing is created when the target is taken. */
    if (lstat(target, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, err_len, "%s exists and is not a directory", target);
            return -EEXIST;
        }
        int empty = dir_is_empty(target);
        if (empty < 0) {
            snprintf(err, err_len, "cannot read directory %s: %s", target, strerror(-empty));
            return empty;
        }
        if (!empty) {
            snprintf(err, err_len, "%s exists and is not empty", target);
            return -ENOTEMPTY;
        }
    } else if (errno != ENOENT) {
        e = errno;
        snprintf(err, err_len, "cannot use %s: %s", target, strerror(e));
        return -e;
    }

    /* Fill a private temporary directory next to the target. */
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.%s.hostkit-XXXXXX", parent, name) >= sizeof tmp) {
        snprintf(err, err_len, "cannot use output directory %s: path too long", parent);
        return -ENAMETOOLONG;
    }
    if (!mkdtemp(tmp)) {
        e = errno;
        snprintf(err, err_len, "cannot create a directory in %s: %s", parent, strerror(e));
        return -e;
    }
    int r = 0;
    int dirfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        r = -errno;
        snprintf(err, err_len, "cannot open %s: %s", tmp, strerror(-r));
    }
    for (size_t i = 0; r == 0 && i < project->n; i++)
        r = write_file(dirfd, &project->files[i], target, err, err_len);
    if (dirfd >= 0)
        close(dirfd);
    if (r == 0 && chmod(tmp, new_dir_mode()) < 0) {
        r = -errno;
        snprintf(err, err_len, "cannot chmod %s: %s", tmp, strerror(-r));
    }

    /* One step into place: rename(2) replaces an empty directory, never a full one. */
    if (r == 0 && rename(tmp, target) < 0) {
        r = -errno;
        if (r == -ENOTEMPTY || r == -EEXIST) { /* taken since the check above */
            snprintf(err, err_len, "%s exists and is not empty", target);
            r = -ENOTEMPTY;
        } else if (r == -ENOTDIR) {
            snprintf(err, err_len, "%s exists and is not a directory", target);
            r = -EEXIST;
        } else {
            snprintf(err, err_len, "cannot rename %s to %s: %s", tmp, target, strerror(-r));
        }
    }
    if (r < 0) {
        size_t used = strlen(err);
        int c = remove_tree(tmp);
        if (c < 0)
            snprintf(err + used, err_len - used, "; cannot remove %s: %s", tmp, strerror(-c));
        else if (r != -ENOTEMPTY && r != -EEXIST)
            snprintf(err + used, err_len - used, "; nothing was created");
    }
    return r;
}
