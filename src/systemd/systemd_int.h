/*
 * Private interface of the systemd protocols (src/systemd/): the notify
 * socket, the watchdog interval, socket activation, journal detection.
 * Depends on libc only; the host (src/core) drives them.
 */
#ifndef HK_SRC_SYSTEMD_INT_H
#define HK_SRC_SYSTEMD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

typedef struct hk__notify {
    int fd; /* datagram socket, -1 when NOTIFY_SOCKET is unset or unusable */
    struct sockaddr_un addr;
    socklen_t addr_len;
} hk__notify_t;

/*
 * Opens the notify socket named by NOTIFY_SOCKET (a path, or "@name" for an
 * abstract socket). Returns 0 (also when unset: fd stays -1) or a negative
 * errno with *ret_error describing the problem (static string).
 */
int hk__notify_open(hk__notify_t *n, const char **ret_error);
void hk__notify_close(hk__notify_t *n);
/* Sends msg as one datagram. 1 sent, 0 not under systemd, -errno. Any thread. */
int hk__notify_send(const hk__notify_t *n, const char *msg);

/*
 * The watchdog interval from WATCHDOG_USEC when it applies to this process
 * (WATCHDOG_PID unset or equal to getpid()); 0 when there is none.
 */
uint64_t hk__watchdog_usec(void);

/* Socket activation: descriptors and names read from LISTEN_* once. */
typedef struct hk__listen {
    int *fds;
    char **names;
    size_t n;
    char *warning; /* why LISTEN_* were ignored (allocated), or NULL */
} hk__listen_t;

/*
 * Reads LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES. When they are for this
 * process and well-formed: takes the descriptors (FD_CLOEXEC set) and unsets
 * the variables. Otherwise takes nothing and sets l->warning. Returns 0 or
 * -ENOMEM.
 */
int hk__listen_read(hk__listen_t *l);
/* Closes every descriptor still held (>= 0) and frees. */
void hk__listen_free(hk__listen_t *l);

/* Whether fd is the journal stream named by $JOURNAL_STREAM (device and
 * inode); hk__stderr_is_journal asks it of stderr. */
bool hk__fd_is_journal(int fd);
bool hk__stderr_is_journal(void);

#endif
