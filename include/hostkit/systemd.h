/*
 * hostkit/systemd.h - systemd integration, implemented from the documented
 * protocols (no libsystemd): the notify protocol (READY, STATUS, STOPPING,
 * RELOADING, EXTEND_TIMEOUT_USEC, ERRNO, MAINPID, WATCHDOG), the watchdog,
 * and socket activation (LISTEN_FDS).
 *
 * What the host does on its own when NOTIFY_SOCKET is set (path or
 * abstract "@name" socket):
 *   start-up   STATUS=Starting 3/10: name (per service)
 *   started    READY=1 + STATUS=Running
 *   reload     RELOADING=1 + MONOTONIC_USEC=..., then READY=1 + STATUS=Running
 *   stopping   STOPPING=1 + STATUS=Stopping, then STATUS=Stopping 2/10: name
 *   failure    STATUS=Failed: <what failed> + ERRNO=<errno>, before run returns
 * With Systemd:ExtendTimeoutSeconds > 0 (default 0: off), while a start or
 * stop phase is running the host sends EXTEND_TIMEOUT_USEC for that many
 * seconds every half of it, as long as a service finished starting or
 * stopping (or called hk_host_extend_timeout) within the last period.
 *
 * Watchdog: when WATCHDOG_USEC is set (and WATCHDOG_PID is unset or this
 * process), the host sends WATCHDOG=1 every half interval from its loop,
 * but only while the loop turns and every liveness check passes
 * (hk_host_add_liveness_check) and, when checks are tagged live, the last
 * run of the live health checks is not Unhealthy (docs/health.md); a stuck
 * or unhealthy host stops pinging and systemd restarts it.
 *
 * Socket activation: hk_builder_new reads LISTEN_PID, LISTEN_FDS and
 * LISTEN_FDNAMES once, validates them (wrong pid or malformed values are
 * ignored with a warning at build), sets FD_CLOEXEC on the descriptors and
 * unsets the variables; the host then offers the descriptors by index and
 * by name. They belong to the host, which closes those nobody took
 * (hk_host_take_listen_fd) when it is freed.
 *
 * Detection: under systemd (INVOCATION_ID, NOTIFY_SOCKET, or JOURNAL_STREAM
 * matching stderr) the started message drops "Press Ctrl+C to shut down.";
 * when stderr is the journal, log lines carry syslog priorities ("<6>").
 *
 * Every function here is a no-op returning 0 when not running under
 * systemd (NOTIFY_SOCKET unset), as sd_notify() is.
 */
#ifndef HOSTKIT_SYSTEMD_H
#define HOSTKIT_SYSTEMD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct hk_host_s;

/*
 * Sends a raw notify message ("KEY=VALUE" lines separated by '\n') to the
 * service manager. Returns 1 when sent, 0 when not under systemd, or a
 * negative errno. Any thread; not async-signal-safe.
 */
HK_EXTERN int hk_host_notify(struct hk_host_s *host, const char *message);

/* STATUS=<text> (printf-style): the service's own status line in `systemctl status`. */
HK_EXTERN int hk_host_set_status(struct hk_host_s *host, const char *fmt, ...) HK_PRINTF(2, 3);

/* MAINPID=<pid>, for programs that fork a new main process. */
HK_EXTERN int hk_host_notify_mainpid(struct hk_host_s *host, pid_t pid);

/* EXTEND_TIMEOUT_USEC=<usec>: asks for more time in a slow start or stop. */
HK_EXTERN int hk_host_extend_timeout(struct hk_host_s *host, unsigned long long usec);

/* WATCHDOG=trigger: tells systemd the program knows it is broken (the
 * watchdog action, a restart with Restart=on-watchdog, follows). */
HK_EXTERN int hk_host_watchdog_trigger(struct hk_host_s *host);

/*
 * Registers a liveness check: called on the host thread before each
 * watchdog ping; returning false skips the ping (so a persistently failing
 * check gets the host restarted). Call before run or on the host thread.
 * Returns 0, -EINVAL or -ENOMEM.
 */
typedef bool (*hk_liveness_cb)(struct hk_host_s *host, void *data);
HK_EXTERN int hk_host_add_liveness_check(struct hk_host_s *host, hk_liveness_cb cb, void *data);

/* Socket activation: how many descriptors were passed (0 when none). */
HK_EXTERN size_t hk_host_listen_fd_count(const struct hk_host_s *host);
/* The i-th descriptor (3 + i), or -1 past the end or when taken. */
HK_EXTERN int hk_host_listen_fd(const struct hk_host_s *host, size_t i);
/* Its name from LISTEN_FDNAMES ("unknown" when none was given). */
HK_EXTERN const char *hk_host_listen_fd_name(const struct hk_host_s *host, size_t i);
/* The first descriptor with that name, or -1. */
HK_EXTERN int hk_host_listen_fd_by_name(const struct hk_host_s *host, const char *name);
/* Takes ownership of the i-th descriptor (the host will not close it). Returns it or -1. */
HK_EXTERN int hk_host_take_listen_fd(struct hk_host_s *host, size_t i);

/* True when the process runs under systemd (see Detection above). */
HK_EXTERN bool hk_under_systemd(void);

#ifdef __cplusplus
}
#endif
#endif /* HOSTKIT_SYSTEMD_H */
