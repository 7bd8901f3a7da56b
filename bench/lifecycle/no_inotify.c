/*
 * Diagnostic for the lifecycle benchmark, not part of any product: an
 * LD_PRELOAD shim whose inotify_init1/inotify_init fail with ENOSYS, so the
 * host runs without its configuration-file watch (libuv's uv_fs_event_start
 * fails and the host carries on without reloads). bench/run runs
 * hk_lifecycle with it as the row "hostkit, no inotify (diagnostic)" to
 * measure what the watch costs at exit: a process that holds inotify marks
 * waits in the kernel, when the inotify fd is released, for the fsnotify
 * mark reaper (a delayed work item plus an SRCU grace period).
 * Depends on libc only.
 */
#include <errno.h>

int inotify_init1(int flags);
int inotify_init(void);

int inotify_init1(int flags) {
    (void)flags;
    errno = ENOSYS;
    return -1;
}

int inotify_init(void) {
    errno = ENOSYS;
    return -1;
}
