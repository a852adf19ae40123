/* coord: several egressd members, one fleet, on Kubernetes Leases
 * (coordination.k8s.io/v1) in a coordination cluster, as client-go's leader
 * election uses them. See docs/ha.md.
 *
 * Every retryPeriod a round runs on the kube loop: renew this member's
 * Lease egressd-member-<identity>; LIST egressd's Leases in the namespace;
 * then acquire or renew the Leases this member should hold (sharded: one
 * egressd-cluster-<name> per cluster that rendezvous hashing over the live
 * members gives it; standby: egressd-leader and, while it holds that, every
 * cluster's) and release the ones it holds but should not (once the daemon
 * has no job running there). The cluster Leases also carry each cluster's
 * rollout phase, for the other members.
 *
 * Expiry follows client-go: a Lease held by another member is taken only
 * when its record (holder, renewTime) has not changed for
 * leaseDurationSeconds as measured on this member's monotonic clock since
 * it first saw that record, so clocks need not agree, only tick at about
 * the same rate. The fence: this member writes to a cluster only while
 * now < (when it sent the last successful renewal) + renewDeadline, which
 * is before any other member can see the Lease expire.
 *
 * Nothing here logs: the daemon reads coord_next_event() and logs and
 * records in the ledger. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "kube/kube.h"
#include "svc/hostconfig.h"

#define COORD_NAME_MAX 96
#define COORD_PUBLISH_MAX 160

struct coord;

struct coord_params {
  const struct hostconfig *hc;        /* coord settings, read by coord_new() */
  struct kube_loop *loop;
  const char *const *clusters;        /* the host's cluster names */
  size_t n_clusters;
  const char *user_agent;
  /* Whether the daemon still has work on the wire at cluster @i (a lease
   * that moved away is released only once it has not). */
  bool (*busy)(void *userdata, size_t i);
  void *userdata;
};

int coord_new(const struct coord_params *p, struct coord **ret, struct err *err);
void coord_free(struct coord *co);

/* Start a round when one is due; returns when the coordinator next needs
 * a tick (mono). */
uint64_t coord_tick(struct coord *co, uint64_t now);
/* Whether this member may write to cluster @i now: it holds the cluster's
 * Lease (standby: and the leader's), renewed less than renewDeadline ago. */
bool coord_may_write(const struct coord *co, size_t i, uint64_t now);
/* Whether cluster @i is this member's to work on: may write, and nobody
 * else should have it (a cluster moving to a rejoining member is not). */
bool coord_owns(const struct coord *co, size_t i, uint64_t now);
/* When the fence of cluster @i closes unless renewed (mono; 0: not held). */
uint64_t coord_fence(const struct coord *co, size_t i);

enum coord_action {
  COORD_ACQUIRED,
  COORD_LOST,          /* could not renew in time, or another member holds it */
  COORD_RELEASED,      /* given up: the cluster moved to another member, or a stop */
};
struct coord_event {
  enum coord_action action;
  int cluster;                        /* index; -1: the leader Lease (the whole fleet) */
  char lease[COORD_NAME_MAX];
  char reason[256];
};
const char *coord_action_name(enum coord_action a);
bool coord_next_event(struct coord *co, struct coord_event *ev);

/* Give up every Lease held (a stop): holderIdentity emptied so that other
 * members take over at once rather than after leaseDuration. Submits the
 * writes; the caller runs the loop a little for them to go out. */
void coord_release_all(struct coord *co);
/* A counter that moves whenever what the coordinator knows may have
 * changed (a LIST or a write answered, an event): the caller's work that
 * depends on it need not run on every turn of its loop. */
unsigned long coord_changes(const struct coord *co);
/* Whether a request of the coordinator is on the wire. */
bool coord_pending(const struct coord *co);

/* For status and metrics. */
struct coord_member {
  char identity[64];
  bool live;
  uint64_t age_usec;                  /* since its record last changed */
};
const char *coord_identity(const struct coord *co);
bool coord_standby(const struct coord *co);
/* Whether the last round reached the coordination cluster; *@why the
 * problem, if any ("" when none): the last error, or another process that
 * uses this member's identity. */
bool coord_reachable(const struct coord *co, const char **why);
size_t coord_members(const struct coord *co, struct coord_member *out, size_t max, uint64_t now);
/* The holder of cluster @i's Lease as last seen ("" when free) and the age
 * of its record; for standby, the leader's. */
const char *coord_holder(const struct coord *co, size_t i, uint64_t now, uint64_t *age_usec);
/* Sharded rollouts: what this member says of cluster @i (its rollout
 * phase) rides on each renewal of the cluster's Lease, as the annotation
 * egressd.io/rollout; coord_published() is what the cluster's holder said
 * ("" when this member holds it, or nobody said anything). */
void coord_publish(struct coord *co, size_t i, const char *value);
const char *coord_published(const struct coord *co, size_t i);
/* Fleet-wide operator acts: @value rides on this member's own Lease (the
 * same annotation); coord_member_notes() lists what every member's Lease
 * says (from the last LIST, this member's included), gone members too. */
void coord_publish_member(struct coord *co, const char *value);
size_t coord_member_notes(const struct coord *co, const char **identity, const char **value,
                          size_t max);
/* The member rendezvous hashing gives cluster @i among the live members. */
const char *coord_assigned(const struct coord *co, size_t i);
/* Rendezvous (highest random weight) choice among @members for @cluster;
 * pure, for tests. Returns the index, or -1 when there is none. */
int coord_rendezvous(const char *const *members, size_t n, const char *cluster);
