/*
 * The request and response accessors of hostkit/web.h, async completion
 * and the request's release. Runs on whichever thread owns the request.
 * May depend on: hostkit public headers, src/common, src/web/web_int.h,
 * jansson.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "web/web_int.h"

/* ---- lifetime --------------------------------------------------------------------------- */

void hk__web_response_reset(hk_web_request_t *req) {
    for (size_t i = 0; i < req->nheaders; i++)
        hk__free(req->headers[i].name); /* the value is in the same block */
    if (req->headers != req->hinline)
        hk__free(req->headers);
    req->headers = NULL;
    req->nheaders = req->hcap = 0;
    req->has_ctype = false;
    hk__free(req->rbody);
    req->rbody = NULL;
    req->rbody_len = req->rbody_cap = 0;
    if (req->rfd >= 0)
        close(req->rfd);
    req->rfd = -1;
    req->status = 200;
}

void hk__web_request_release(hk_web_request_t *req) {
    if (!req || atomic_fetch_sub(&req->refs, 1) != 1)
        return;
    hk__web_response_reset(req);
    if (req->match.nparams) /* the values to free; the request goes next */
        hk__route_match_clear(&req->match);
    for (size_t i = 0; i < req->nquery; i++) {
        hk__free(req->query[i].name);
        hk__free(req->query[i].value);
    }
    hk__free(req->query);
    if (req->body != req->empty_body)
        hk__free(req->body);
    pthread_mutex_destroy(&req->amu);
    hk__free(req);
}

void hk_web_complete(hk_web_request_t *req) {
    if (!req)
        return;
    pthread_mutex_lock(&req->amu);
    if (!req->forced) {
        req->completed = true;
        if (req->suspended) {
            req->suspended = false;
            MHD_resume_connection(req->conn);
        }
    }
    pthread_mutex_unlock(&req->amu);
    hk__web_request_release(req);
}

/* ---- request ------------------------------------------------------------------------------ */

const char *hk_web_request_method(const hk_web_request_t *req) { return req ? req->method : NULL; }
const char *hk_web_request_path(const hk_web_request_t *req) { return req ? req->path : NULL; }
const char *hk_web_request_peer(const hk_web_request_t *req) { return req ? req->peer : "unix"; }
hk_host_t *hk_web_request_host(const hk_web_request_t *req) { return req ? req->web->host : NULL; }
void hk_web_request_set_item(hk_web_request_t *req, void *item) {
    if (req)
        req->item = item;
}
void *hk_web_request_item(const hk_web_request_t *req) { return req ? req->item : NULL; }

const char *hk_web_request_route(const hk_web_request_t *req) {
    return req && req->route ? req->route->pattern : NULL;
}

const char *hk_web_request_param(const hk_web_request_t *req, const char *name) {
    if (!req || !name || !req->matched)
        return NULL;
    for (size_t i = 0; i < req->match.nparams; i++)
        if (!strcmp(req->match.names[i], name))
            return req->match.values[i];
    return NULL;
}

static int unhex(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes application/x-www-form-urlencoded text (invalid escapes kept as is). */
static char *form_decode(const char *s, size_t n) {
    char *o = hk__malloc(n + 1);
    if (!o)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+')
            o[j++] = ' ';
        else if (s[i] == '%' && i + 2 < n && unhex((unsigned char)s[i + 1]) >= 0 &&
                 unhex((unsigned char)s[i + 2]) >= 0) {
            o[j++] = (char)(unhex((unsigned char)s[i + 1]) * 16 + unhex((unsigned char)s[i + 2]));
            i += 2;
        } else
            o[j++] = s[i];
    }
    o[j] = 0;
    return o;
}

int hk__web_query_parse(hk_web_request_t *req) {
    req->query_parsed = true;
    const char *q = req->query_raw;
    if (!q || !*q)
        return 0;
    size_t n = 1;
    for (const char *p = q; *p; p++)
        n += *p == '&';
    req->query = hk__calloc(n, sizeof *req->query);
    if (!req->query)
        return -ENOMEM;
    while (*q) {
        size_t len = strcspn(q, "&");
        if (len) {
            const char *eq = memchr(q, '=', len);
            size_t nl = eq ? (size_t)(eq - q) : len;
            web_query_t *e = &req->query[req->nquery];
            e->name = form_decode(q, nl);
            e->value = eq ? form_decode(eq + 1, len - nl - 1) : hk__strdup("");
            if (!e->name || !e->value) {
                hk__free(e->name);
                hk__free(e->value);
                return -ENOMEM;
            }
            req->nquery++;
        }
        q += len;
        if (*q == '&')
            q++;
    }
    return 0;
}

const char *hk_web_request_query(const hk_web_request_t *creq, const char *name) {
    hk_web_request_t *req = (hk_web_request_t *)creq; /* parsed lazily, once */
    if (!req || !name)
        return NULL;
    if (!req->query_parsed)
        (void)hk__web_query_parse(req);
    for (size_t i = 0; i < req->nquery; i++)
        if (!strcmp(req->query[i].name, name))
            return req->query[i].value;
    return NULL;
}

const char *hk_web_request_header(const hk_web_request_t *req, const char *name) {
    if (!req || !name || !req->conn)
        return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *hk_web_request_body(const hk_web_request_t *req, size_t *ret_len) {
    if (!req || !req->body) {
        if (ret_len)
            *ret_len = 0;
        return NULL;
    }
    if (ret_len)
        *ret_len = req->body_len;
    return req->body;
}

int hk_web_request_json(const hk_web_request_t *req, json_t **ret_json, char *err, size_t err_len) {
    if (!req || !ret_json)
        return -EINVAL;
    if (!req->body || !req->body_len) {
        if (err && err_len)
            snprintf(err, err_len, "no body");
        return -ENODATA;
    }
    json_error_t je;
    json_t *j = json_loadb(req->body, req->body_len, JSON_DECODE_ANY, &je);
    if (!j) {
        if (err && err_len)
            snprintf(err, err_len, "%s (line %d, column %d)", je.text, je.line, je.column);
        return -EINVAL;
    }
    *ret_json = j;
    return 0;
}

hk_scope_t *hk_web_request_scope(hk_web_request_t *req) {
    if (!req)
        return NULL;
    if (!req->scope && hk_scope_new(hk_host_services(req->web->host), &req->scope) < 0)
        return NULL;
    return req->scope;
}

/* ---- response ------------------------------------------------------------------------------ */

int hk_web_response_status(hk_web_request_t *req, int status) {
    if (!req || status < 100 || status > 599)
        return -EINVAL;
    req->status = status;
    return 0;
}

int hk_web_response_get_status(const hk_web_request_t *req) { return req ? req->status : 0; }

static bool header_ok(const char *s) { return s && !strpbrk(s, "\r\n"); }

/* "name\0value\0" in one allocation. */
static int header_make(web_header_t *h, const char *name, const char *value) {
    size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
    char *b = hk__malloc(nl + vl);
    if (!b)
        return -ENOMEM;
    memcpy(b, name, nl);
    memcpy(b + nl, value, vl);
    h->name = b;
    h->value = b + nl;
    return 0;
}

int hk_web_response_header(hk_web_request_t *req, const char *name, const char *value) {
    if (!req || !header_ok(name) || !*name || strpbrk(name, ": \t") || !header_ok(value) ||
        !strcasecmp(name, "Content-Length"))
        return -EINVAL;
    bool ctype = !strcasecmp(name, "Content-Type");
    if (ctype && req->has_ctype) {
        for (size_t i = 0; i < req->nheaders; i++)
            if (!strcasecmp(req->headers[i].name, "Content-Type")) {
                web_header_t h;
                if (header_make(&h, req->headers[i].name, value) < 0)
                    return -ENOMEM;
                hk__free(req->headers[i].name);
                req->headers[i] = h;
                return 0;
            }
    }
    if (req->nheaders == req->hcap) { /* the first few live in the request */
        size_t cap = req->hcap ? req->hcap * 2 : HK_ARRAY_SIZE(req->hinline);
        web_header_t *g;
        if (!req->hcap) {
            g = req->hinline;
        } else if (req->headers == req->hinline) {
            g = hk__malloc(cap * sizeof *g);
            if (g)
                memcpy(g, req->hinline, req->nheaders * sizeof *g);
        } else {
            g = hk__realloc(req->headers, cap * sizeof *g);
        }
        if (!g)
            return -ENOMEM;
        req->headers = g;
        req->hcap = cap;
    }
    if (header_make(&req->headers[req->nheaders], name, value) < 0)
        return -ENOMEM;
    req->nheaders++;
    if (ctype)
        req->has_ctype = true;
    return 0;
}

int hk_web_response_body(hk_web_request_t *req, const void *data, size_t len) {
    if (!req || (!data && len))
        return -EINVAL;
    char *b = NULL;
    if (len) {
        b = hk__malloc(len);
        if (!b)
            return -ENOMEM;
        memcpy(b, data, len);
    }
    hk__free(req->rbody);
    req->rbody = b;
    req->rbody_len = req->rbody_cap = len;
    if (req->rfd >= 0) {
        close(req->rfd);
        req->rfd = -1;
    }
    return 0;
}

int hk_web_response_text(hk_web_request_t *req, int status, const char *content_type,
                         const char *text) {
    if (!req || !text)
        return -EINVAL;
    int rc = hk_web_response_status(req, status);
    if (rc == 0)
        rc = hk_web_response_header(req, "Content-Type",
                                    content_type ? content_type : "text/plain; charset=utf-8");
    if (rc == 0)
        rc = hk_web_response_body(req, text, strlen(text));
    return rc;
}

int hk_web_response_json(hk_web_request_t *req, int status, json_t *json) {
    if (!json)
        return -ENOMEM;
    int rc = -EINVAL;
    if (req) {
        char *s = json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s)
            rc = -ENOMEM;
        else {
            rc = hk_web_response_status(req, status);
            if (rc == 0)
                rc = hk_web_response_header(req, "Content-Type", "application/json");
            if (rc == 0)
                rc = hk_web_response_body(req, s, strlen(s));
            free(s); /* jansson's allocator */
        }
    }
    json_decref(json);
    return rc;
}

static const char *guess_type(const char *path) {
    static const char *const map[][2] = {
        {".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".js", "text/javascript; charset=utf-8"},
        {".json", "application/json"},         {".txt", "text/plain; charset=utf-8"},
        {".png", "image/png"},                 {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},               {".gif", "image/gif"},
        {".svg", "image/svg+xml"},             {".ico", "image/x-icon"},
        {".wasm", "application/wasm"},         {".pdf", "application/pdf"},
    };
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < HK_ARRAY_SIZE(map); i++)
            if (!strcasecmp(dot, map[i][0]))
                return map[i][1];
    return "application/octet-stream";
}

int hk_web_response_file(hk_web_request_t *req, const char *path, const char *content_type) {
    if (!req || !path)
        return -EINVAL;
    /* O_NONBLOCK: open(2) on a FIFO with no writer would block this engine
     * thread (and every connection on it) until one comes. Cleared below for
     * the regular file it must be. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (S_ISDIR(st.st_mode) || !S_ISREG(st.st_mode)) {
        close(fd);
        return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    int rc = hk_web_response_header(req, "Content-Type", content_type ? content_type : guess_type(path));
    if (rc < 0) {
        close(fd);
        return rc;
    }
    hk__free(req->rbody);
    req->rbody = NULL;
    req->rbody_len = req->rbody_cap = 0;
    if (req->rfd >= 0)
        close(req->rfd);
    req->rfd = fd;
    req->rfd_size = (uint64_t)st.st_size;
    return 0;
}
