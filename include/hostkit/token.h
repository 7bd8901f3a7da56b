/*
 * hostkit/token.h - cancellation tokens.
 *
 * A token starts uncancelled and is cancelled at most once, by anyone who
 * holds it (the host cancels the tokens it hands to services; a program can
 * cancel its own). Waiters can poll it (hk_token_is_cancelled, an atomic
 * load), sleep on it (hk_token_sleep), wait on a file descriptor
 * (hk_token_fd, readable once cancelled) or register callbacks. A linked
 * token is cancelled when any of its parents is.
 *
 * Thread-safety: every function may be called from any thread, concurrently
 * with any other, except hk_token_free (nobody may use the token once it is
 * called). No function is async-signal-safe. Wake-ups are never lost: a
 * waiter that sees "not cancelled" and then waits is woken by a cancel that
 * happens at any point after its check.
 */
#ifndef HOSTKIT_TOKEN_H
#define HOSTKIT_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hk_token_s hk_token_t;
typedef struct hk_token_reg_s hk_token_reg_t;

/* Runs once, on the thread that cancels the token, with the registration's data. */
typedef void (*hk_token_cb)(hk_token_t *token, void *data);

/*
 * A callback registration. The caller owns the memory (put it in your own
 * struct, as with libuv handles); hostkit keeps a pointer to it from
 * hk_token_register() until the callback has run or hk_token_unregister()
 * returned. Its fields are private.
 */
struct hk_token_reg_s {
    hk_token_cb _cb;
    void *_data;
    hk_token_t *_token;
    struct hk_token_reg_s *_prev, *_next;
    int _state;
};

/*
 * Creates an uncancelled token in *ret_token.
 * Returns 0 or -ENOMEM (then *ret_token is untouched).
 */
HK_EXTERN int hk_token_new(hk_token_t **ret_token);

/*
 * Creates a token that is cancelled as soon as any of the n parents is (at
 * once if one already is). It can also be cancelled on its own without
 * affecting the parents. Every parent must outlive the linked token: free the
 * linked token first (hk_token_free detaches it from its parents).
 * Returns 0, -EINVAL (n == 0 or a NULL parent) or -ENOMEM.
 */
HK_EXTERN int hk_token_new_linked(hk_token_t *const *parents, size_t n, hk_token_t **ret_token);

/*
 * Frees the token: detaches it from its parents, stops its timer (see
 * hk_token_cancel_after), closes its fd. Callbacks still registered are
 * dropped without running. Accepts NULL. Nobody may use the token during or
 * after this call.
 */
HK_EXTERN void hk_token_free(hk_token_t *token);

/*
 * Cancels the token: sets the flag, wakes sleepers and makes the fd
 * readable, then runs the registered callbacks on this thread in
 * registration order. A waiter may return before the callbacks have run:
 * free the token only once this call has returned.
 * Returns true if this call cancelled it, false if it was already cancelled
 * (then it does nothing). Safe to call from a token callback.
 */
HK_EXTERN bool hk_token_cancel(hk_token_t *token);

/* True once the token has been cancelled. An atomic load; never blocks. */
HK_EXTERN bool hk_token_is_cancelled(const hk_token_t *token);

/*
 * Sleeps for ms milliseconds or until the token is cancelled, whichever
 * comes first. Returns 0 after the full sleep, -ECANCELED if the token is or
 * becomes cancelled (at once if it already is).
 */
HK_EXTERN int hk_token_sleep(hk_token_t *token, uint64_t ms);

/*
 * Like hk_token_sleep with no time limit: blocks until the token is cancelled.
 * Returns -ECANCELED.
 */
HK_EXTERN int hk_token_wait(hk_token_t *token);

/*
 * A file descriptor that becomes readable (POLLIN) when the token is
 * cancelled and stays readable; never read from it or close it. Created on
 * first call (an eventfd, O_CLOEXEC), closed by hk_token_free.
 * Returns the fd, or a negative errno (-EMFILE, ...) if it cannot be created.
 */
HK_EXTERN int hk_token_fd(hk_token_t *token);

/*
 * Registers cb to run once when the token is cancelled, on the cancelling
 * thread. If the token is already cancelled, cb runs now, on this thread,
 * before this function returns, and the return value is 1. Otherwise returns
 * 0 and reg stays in use until the callback has run or is unregistered.
 * Returns -EINVAL for NULL arguments or a registration already in use.
 */
HK_EXTERN int hk_token_register(hk_token_t *token, hk_token_reg_t *reg, hk_token_cb cb,
                                void *data);

/*
 * Removes a registration. Returns 1 if the callback was removed before it ran
 * (it will never run), 0 if it has already run or is running on this thread.
 * If the callback is running on another thread at that moment, waits for it
 * to finish, so once this returns the callback no longer runs anywhere and
 * reg and its data may be freed. Safe after the token was cancelled, safe to
 * call twice, and safe on a registration that was never registered
 * (zero-initialised); not after the token was freed (a registration dropped
 * by hk_token_free is reset and may be reused). Returns 0 for NULL. A
 * callback that hk_token_register ran at once (token already cancelled) has
 * finished by the time register returns; unregistering it concurrently from
 * another thread does not wait for it. Never call it from a callback on a
 * different registration of the same token that is running on another
 * thread's cancel (that is a deadlock, as with any lock).
 */
HK_EXTERN int hk_token_unregister(hk_token_reg_t *reg);

/*
 * Cancels the token ms milliseconds from now (ms == 0: now). Calling it again
 * replaces the deadline. The timer runs on a helper thread that is started
 * on first use; it ends when the token is cancelled and is joined by
 * hk_token_free.
 * Returns 0, or -EAGAIN/-ENOMEM if the helper thread cannot be started.
 */
HK_EXTERN int hk_token_cancel_after(hk_token_t *token, uint64_t ms);

#ifdef __cplusplus
}
#endif
#endif /* HOSTKIT_TOKEN_H */
