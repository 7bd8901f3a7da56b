/*
 * hostkit/hostkit.h - the whole public API of libhostkit.
 * Include this one header; each subsystem's header documents its part.
 */
#ifndef HOSTKIT_HOSTKIT_H
#define HOSTKIT_HOSTKIT_H

#include "common.h"
#include "config.h"
#include "health.h"
#include "host.h"
#include "jobs.h"
#include "log.h"
#include "metrics.h"
#include "services.h"
#include "systemd.h"
#include "token.h"

#endif /* HOSTKIT_HOSTKIT_H */
