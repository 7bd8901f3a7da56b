/*
 * hostkit/services.h - the service registry: services under string keys
 * with a lifetime, created by factories, with their dependencies declared
 * so that the whole graph is checked before anything runs (the .NET DI
 * container, done the C way).
 *
 * Lifetimes:
 *   SINGLETON  created once, lazily and thread-safely, on first resolution
 *              from any scope; destroyed when the registry is freed (after
 *              every hosted service stopped), in reverse creation order.
 *   SCOPED     created once per scope; destroyed with the scope.
 *   TRANSIENT  created on every resolution; owned and destroyed by the
 *              scope that asked.
 * A scope disposes what it created in reverse creation order. The root
 * scope (hk_services_root) is for singletons: resolving a scoped service
 * there is an error, never a silent singleton. Transients resolved there
 * (also those a singleton's factory resolves) live until the registry is
 * freed, destroyed among the singletons in reverse creation order.
 *
 * Keys: several registrations under one key are allowed: get returns the
 * last one, get_all every one in registration order. Different keys for the
 * same kind of object are how one implementation is registered twice with
 * different settings.
 *
 * Validation (hk_services_validate, run by the host build; exit 78 lists
 * every problem):
 *   No service registered for "Db" (required by "OrderRepository")
 *   Cannot consume scoped service "DbSession" from singleton "Cache"
 *   Circular dependency: A -> B -> C -> A
 *
 * Hot path: resolve a key to a handle once (hk_services_handle); resolving
 * by handle is O(1) with no hashing and, for an existing singleton or a
 * scoped instance already created in the scope, no locking.
 *
 * Threading: registration and validation happen before the host runs, on
 * one thread. A scope is used by one thread at a time (create one per unit
 * of work); the root scope may be used from any thread. Factories run on
 * the resolving thread; a singleton's factory runs once even when many
 * threads resolve it first at the same time.
 */
#ifndef HOSTKIT_SERVICES_H
#define HOSTKIT_SERVICES_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hk_services_s hk_services_t;
typedef struct hk_scope_s hk_scope_t;

typedef enum hk_lifetime {
    HK_LIFETIME_SINGLETON = 0,
    HK_LIFETIME_SCOPED = 1,
    HK_LIFETIME_TRANSIENT = 2
} hk_lifetime_t;

/*
 * Creates an instance. Resolve dependencies through scope (hk_scope_get);
 * they are created first and destroyed after this instance. Return 0 with
 * *ret_instance set (NULL is a valid instance), or a negative errno, with
 * hk_scope_fail for a message.
 */
typedef int (*hk_factory_cb)(hk_scope_t *scope, void *data, void **ret_instance);
/* Destroys an instance the factory created. */
typedef void (*hk_instance_free_cb)(void *instance, void *data);

typedef struct hk_service_desc {
    const char *key;              /* copied; 1..127 characters, case-sensitive */
    hk_lifetime_t lifetime;
    hk_factory_cb factory;
    hk_instance_free_cb free;     /* may be NULL */
    void *data;                   /* passed to factory and free */
    hk_destroy_cb data_destroy;   /* releases data with the registry, may be NULL */
    const char *const *deps;      /* keys it resolves, NULL-terminated; may be NULL */
} hk_service_desc_t;

/* A resolved key: index of its last registration, 0 when unknown. */
typedef uint32_t hk_handle_t;
#define HK_HANDLE_NONE ((hk_handle_t)0)

/* Creates an empty registry. Returns 0 or -ENOMEM. */
HK_EXTERN int hk_services_new(hk_services_t **ret_services);

/*
 * Destroys every singleton created (reverse creation order), then every
 * registration's data (data_destroy). Every scope must have been freed.
 * Accepts NULL.
 */
HK_EXTERN void hk_services_free(hk_services_t *services);

/*
 * Registers a service. Strings and the deps array are copied. On success
 * the registry owns data (data_destroy runs when it is freed); on failure
 * nothing is kept. Returns 0, -EINVAL (no key, bad lifetime, no factory, a
 * dep key empty or longer than 127 characters), -EBUSY (the registry is
 * frozen: validated, or hk_services_root/hk_scope_new called) or -ENOMEM.
 * Before validation and before any resolution only.
 */
HK_EXTERN int hk_services_add(hk_services_t *services, const hk_service_desc_t *desc);

/* Shorthands for hk_services_add with the given lifetime. */
HK_EXTERN int hk_services_add_singleton(hk_services_t *services, const char *key, hk_factory_cb factory,
                                        hk_instance_free_cb free_cb, void *data,
                                        const char *const *deps);
HK_EXTERN int hk_services_add_scoped(hk_services_t *services, const char *key, hk_factory_cb factory,
                                     hk_instance_free_cb free_cb, void *data, const char *const *deps);
HK_EXTERN int hk_services_add_transient(hk_services_t *services, const char *key,
                                        hk_factory_cb factory, hk_instance_free_cb free_cb, void *data,
                                        const char *const *deps);

/*
 * Checks the whole graph: missing dependencies, scoped services consumed
 * by singletons (captive dependencies, also through transients), cycles.
 * Calls on_error (may be NULL) once per problem with the messages shown
 * above, and returns the number of problems (0: valid) or -ENOMEM.
 */
HK_EXTERN int hk_services_validate(hk_services_t *services,
                                   void (*on_error)(void *data, const char *msg), void *data);

/* The handle of key's last registration, or HK_HANDLE_NONE. */
HK_EXTERN hk_handle_t hk_services_handle(const hk_services_t *services, const char *key);

/* The root scope (owned by the registry): singletons and transients, not
 * scoped services. Any thread. */
HK_EXTERN hk_scope_t *hk_services_root(hk_services_t *services);

/* Creates a scope. Returns 0 or -ENOMEM. */
HK_EXTERN int hk_scope_new(hk_services_t *services, hk_scope_t **ret_scope);

/* Destroys what the scope created, in reverse creation order. Accepts NULL
 * (and ignores the root scope). */
HK_EXTERN void hk_scope_free(hk_scope_t *scope);

/*
 * Resolves key (its last registration) in scope, creating it and its
 * dependencies as their lifetimes require. Returns 0 with *ret_instance
 * set; -ENOENT (not registered); -EINVAL (scoped service from the root
 * scope, or a cycle at run time); or the factory's error. On error every
 * instance this call created is destroyed again and *ret_instance is
 * untouched; hk_services_last_error() tells what failed and why.
 */
HK_EXTERN int hk_scope_get(hk_scope_t *scope, const char *key, void **ret_instance);
HK_EXTERN int hk_scope_get_handle(hk_scope_t *scope, hk_handle_t handle, void **ret_instance);

/*
 * Resolves every registration under key, in registration order. The array
 * is owned by the scope and valid until it is freed. Returns the count (0
 * when none is registered, *ret_instances then NULL) or an error as
 * hk_scope_get (and then destroys what this call created).
 */
HK_EXTERN int hk_scope_get_all(hk_scope_t *scope, const char *key, void *const **ret_instances);

/* The registry a scope belongs to. */
HK_EXTERN hk_services_t *hk_scope_services(const hk_scope_t *scope);

/*
 * For factories: records why creation failed (printf-style) and returns
 * err (negative; a non-negative err becomes -EIO).
 */
HK_EXTERN int hk_scope_fail(hk_scope_t *scope, int err, const char *fmt, ...) HK_PRINTF(3, 4);

/*
 * The message of this thread's last failed resolution, e.g.
 * `Cannot create "OrderRepository": creating "Db": connection refused`.
 * Thread-local; overwritten by this thread's next failed resolution (a
 * successful one leaves it alone). "" if none.
 */
HK_EXTERN const char *hk_services_last_error(void);

/* Typed convenience: resolve and cast. ret_ptr must be a type ** (a
 * different pointer type is a compile-time warning). */
#define HK_SCOPE_GET(scope, key, type, ret_ptr)                                                    \
    hk_scope_get((scope), (key), (void **)(1 ? (ret_ptr) : (type **)NULL))

#ifdef __cplusplus
}
#endif
#endif /* HOSTKIT_SERVICES_H */
