/*
 * Lifecycle benchmark, bare C peer (the floor): 10 background services
 * (pthreads), each looping on a shared stop flag with a 1 s interval
 * (pthread_cond_timedwait on CLOCK_MONOTONIC); the main thread blocks
 * SIGTERM/SIGINT/SIGQUIT before starting them and reads them from a
 * signalfd; on the first it sets the flag, broadcasts, joins the services
 * and exits 0. Prints the same lifetime lines as hostkit, on stderr, with
 * write(2). No configuration, no logging library, no event loop: the least
 * a C program can do for the same observable behaviour. Depends on libc and
 * pthreads only. bench/run builds it with gcc -O2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

enum { SERVICES = 10, INTERVAL_MS = 1000 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond;
static bool stopping;

static void *service_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!stopping) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += INTERVAL_MS / 1000;
        while (!stopping && pthread_cond_timedwait(&cond, &mu, &deadline) != ETIMEDOUT) {
        }
        /* one unit of (no) work per interval */
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void say(const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

int main(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by the services */
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        perror("signalfd");
        return 1;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cond, &ca);
    pthread_condattr_destroy(&ca);

    pthread_t threads[SERVICES];
    for (int i = 0; i < SERVICES; i++) {
        int rc = pthread_create(&threads[i], NULL, service_main, NULL);
        if (rc != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(rc));
            return 1;
        }
    }
    char cwd[4096], line[4400];
    if (!getcwd(cwd, sizeof cwd))
        strcpy(cwd, "?");
    snprintf(line, sizeof line,
             "info: lifetime[0] Application started. Press Ctrl+C to shut down.\n"
             "info: lifetime[0] Hosting environment: Production\n"
             "info: lifetime[0] Content root path: %s\n",
             cwd);
    say(line);

    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) < 0 && errno == EINTR) {
    }
    say("info: lifetime[0] Application is shutting down...\n");
    pthread_mutex_lock(&mu);
    stopping = true;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < SERVICES; i++)
        pthread_join(threads[i], NULL);
    close(sfd);
    return 0;
}
