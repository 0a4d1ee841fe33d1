/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* statedir.h: the name of every file in state_dir (/var/lib/aadguest by
 * default), who writes it and who reads it; ag_config_state_path() joins one to
 * state_dir. Macros only: the NSS module (libc only) includes it too. */
#ifndef AADGUEST_STATEDIR_H
#define AADGUEST_STATEDIR_H

/* The public snapshot (0644): written whole or appended to by `sync` (and
 * installed by a fleet follower); read by the NSS and PAM modules and by
 * `status`, `list`, `check`. */
#define AG_STATE_SNAPSHOT "guests.db"
/* The ledger (root only, 0600): UIDs, states, tombstones, the contested names.
 * Written by `sync` (common/ledger.c); read by `sync`, `status`, `list`. */
#define AG_STATE_LEDGER "ledger"
/* The ledger's journal (root only, 0600): what syncs changed since the ledger
 * was written. Appended by `sync`; read with the ledger (ledger_journal_path()). */
#define AG_STATE_LEDGER_JOURNAL AG_STATE_LEDGER ".journal"
/* The ledger and its journal as aadguest 0.x named them. The next `sync`
 * renames them to the two above (ledger_migrate()); until it does, `status`
 * and `list` read them (ledger_locate()). */
#define AG_STATE_LEDGER_OLD	    "state.json"
#define AG_STATE_LEDGER_JOURNAL_OLD AG_STATE_LEDGER_OLD ".journal"
/* The last attempt, success, error and forced resync (JSON, 0600). Written by
 * `sync` (sync_status_save()); read by `sync` and `status`. */
#define AG_STATE_SYNC_STATUS "sync.status"
/* Held with flock(2) by `sync` for the whole run (a fleet publication or a
 * follower's install included): one sync at a time. Never read. */
#define AG_STATE_SYNC_LOCK "sync.lock"
/* The Graph access token (0600). Written and read by the Graph client
 * (common/graph.c) of `sync`, `check` and the online check. */
#define AG_STATE_TOKEN_CACHE "token.cache"
/* Where the Graph delta feed stands and what it is good for. Written and read
 * by `sync`. */
#define AG_STATE_DELTA_LINK "delta.link"
/* A fleet follower: the generation it installed, and the manifest it
 * installed it from. Written by a follower's `sync`; read by it and by
 * `status`. */
#define AG_STATE_SOURCE_STATE	 "source.state"
#define AG_STATE_SOURCE_MANIFEST "source.manifest"
/* A fleet publisher: the last generation it published. Written by `sync`
 * when publish_dir is set; read by it and by `status`. */
#define AG_STATE_PUBLISH_STATE "publish.state"
/* The sign-in key set (JWKS) cached by the sign-in helper (`helper`), which
 * writes and reads it. */
#define AG_STATE_SIGNIN_KEYS "signin-keys.json"

/* A file is replaced by writing "<file>.tmp.XXXXXX" (mkostemp) next to it and
 * renaming that over it; `sync` removes the ones a killed run left (under the
 * sync lock), sparing a token cache being written by a concurrent check. */
#define AG_STATE_TEMP_TEMPLATE "%s.tmp.XXXXXX"
#define AG_STATE_TEMP_INFIX    ".tmp."
#define AG_STATE_TOKEN_TEMP    AG_STATE_TOKEN_CACHE AG_STATE_TEMP_INFIX

#endif
