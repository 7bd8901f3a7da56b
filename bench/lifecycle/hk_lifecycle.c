/*
 * Lifecycle benchmark, hostkit side: a host with 10 background services,
 * each looping on its stopping token with a 1 s interval
 * (hk_token_sleep(stopping, 1000)). bench/run starts it, waits for the
 * "Application started" line on stderr (or READY=1 on $NOTIFY_SOCKET),
 * sends SIGTERM and waits for the exit; the peers in
 * bench/peers/lifecycle/ do the same work in Go, Node, Python and bare C.
 *
 * Depends on the public API (hostkit/hostkit.h) and libc only. The lifetime
 * messages are on (Host:SuppressStatusMessages=false), so it logs what the
 * peers print: three lines when started, one when shutting down.
 */
#include <errno.h>
#include <stdio.h>

#include <hostkit/hostkit.h>

enum { SERVICES = 10, INTERVAL_MS = 1000 };

static int service_execute(hk_service_t *svc, hk_token_t *stopping) {
    (void)svc;
    while (hk_token_sleep(stopping, INTERVAL_MS) == 0) {
        /* one unit of (no) work per interval */
    }
    return 0;
}

int main(int argc, char **argv) {
    hk_builder_t *b = hk_builder_new(argc, argv);
    if (!b)
        return 1;
    /* The default already, but stated: the readiness line is a status message. */
    if (hk_config_set(hk_builder_config(b), "Host:SuppressStatusMessages", "false") < 0) {
        hk_builder_free(b);
        return 1;
    }
    for (int i = 0; i < SERVICES; i++) {
        char name[32];
        snprintf(name, sizeof name, "service-%d", i + 1);
        (void)hk_builder_add_background(b, name, service_execute, NULL, NULL); /* errors: at build */
    }
    return hk_builder_run(b);
}
