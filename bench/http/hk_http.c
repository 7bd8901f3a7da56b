/*
 * HTTP benchmark, hostkit side: a web host answering GET / with
 * "Hello, World!" (text/plain) and GET /json with {"message":"Hello, World!"}
 * serialised per request (TechEmpower's plaintext and json tests). bench/run
 * starts it with --Web:Urls=http://127.0.0.1:PORT, waits for "Application
 * started" and drives it with wrk beside nginx (bench/peers/http/nginx).
 *
 * Depends on the public API (hostkit/web.h, hostkit/hostkit.h) and libc only.
 * Defaults set here (the command line may override them): request logging
 * off (Web:RequestLogLevel=None), console at Warning except the three
 * lifetime lines the harness waits for, Web:Threads=0 (one engine thread per
 * CPU), Web:Limits:MaxConnections=20000 (the 10 000 idle connections test).
 */
#include <stdio.h>

#include <hostkit/web.h>

static const char HELLO[] = "Hello, World!";

static int plaintext(hk_web_request_t *req, void *data) {
    (void)data;
    return hk_web_response_text(req, 200, "text/plain", HELLO);
}

static int json(hk_web_request_t *req, void *data) {
    (void)data;
    return hk_web_response_json(req, 200, json_pack("{s:s}", "message", HELLO));
}

static const char *const DEFAULTS[][2] = {
    {"Web:RequestLogLevel", "None"},
    {"Web:Threads", "0"},
    {"Web:Limits:MaxConnections", "20000"},
    {"Logging:LogLevel:Default", "Warning"},
    {"Logging:LogLevel:hostkit.lifetime", "Information"},
    {"Host:SuppressStatusMessages", "false"},
};

int main(int argc, char **argv) {
    hk_builder_t *b = hk_builder_new(argc, argv);
    if (!b)
        return 1;
    hk_config_t *cfg = hk_builder_config(b);
    for (size_t i = 0; i < sizeof DEFAULTS / sizeof DEFAULTS[0]; i++) {
        /* Defaults: the command line and the environment win over them. */
        if (hk_config_set_default(cfg, DEFAULTS[i][0], DEFAULTS[i][1]) < 0) {
            fprintf(stderr, "hk_http: cannot set %s\n", DEFAULTS[i][0]);
            hk_builder_free(b);
            return 1;
        }
    }
    hk_web_t *web = NULL;
    if (hk_builder_add_web(b, &web) == 0) { /* errors are recorded: the build fails */
        (void)hk_web_map(web, "GET", "/", plaintext, NULL);
        (void)hk_web_map(web, "GET", "/json", json, NULL);
    }
    return hk_builder_run(b);
}
