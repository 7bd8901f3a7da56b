/*
 * Private interface of the service registry (src/di/services.c) for the
 * host builder. Depends on the public services header.
 */
#ifndef HK_SRC_SERVICES_INT_H
#define HK_SRC_SERVICES_INT_H

#include "hostkit/services.h"

/* The lifetime of a registration (hk_lifetime_t), or -1 for a bad handle. */
int hk__services_lifetime(const hk_services_t *services, hk_handle_t handle);

#endif
