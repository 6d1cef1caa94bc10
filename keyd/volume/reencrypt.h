/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Re-encryption: a new LUKS2 volume key, the data re-encrypted by libcryptsetup (offline on an
 * unused device, online under the volume's dm-crypt mapping), resumable after any interruption.
 * The keyd token names the new keyslot before libcryptsetup starts, so it is still right when
 * libcryptsetup removes the old keyslot at the end. Never writes the token meanwhile; never
 * prints or logs (keydctl's terminal side is ctl/reencrypt_ui.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms.h"
#include "luks.h"
#include "token.h"

/* One step of libcryptsetup's run: progress and interruption happen between steps, and its
 * buffer is this big (offline, the library's default is as large as its checksum area
 * allows: a 256 MiB volume in one step). */
#define REENCRYPT_HOTZONE_BYTES (64ULL << 20)
#define REENCRYPT_RESILIENCE	"checksum"
#define REENCRYPT_HASH		"sha256"

struct reencrypt_progress {
	uint64_t done, total; /* bytes of the data area re-encrypted so far (all runs), and all */
	uint64_t run_done;    /* bytes re-encrypted by this run */
	uint64_t elapsed_us;  /* since this run began re-encrypting */
};

/* Called before the first header change (done = what earlier runs did), when libcryptsetup
 * begins, after each step and at the end. A non-zero return stops cleanly: before any change,
 * or after the current step with the header recording how far it got (resumable). */
typedef int (*reencrypt_progress_fn)(void *userdata, const struct reencrypt_progress *p);

struct reencrypt_request {
	const char *device; /* resolved device node */
	struct kms *kms;    /* one of the KMS the token is wrapped by */
	/* Active dm-crypt mapping of @device (online); NULL: found through the device's holders,
	 * offline when it has none. */
	const char *name;
	bool resume_only; /* continue an interrupted re-encryption; never start one */
	/* A passphrase (key file content) whose keyslot should survive: it gets a keyslot of the
	 * new volume key. Every other keyslot of the old volume key is gone at the end. */
	const uint8_t *keep;
	size_t keep_len;
	reencrypt_progress_fn progress;
	void *userdata;
};

struct reencrypt_result {
	char uuid[LUKS_UUID_MAX];
	char mapping[128]; /* the mapping re-encrypted online; "" offline */
	int token;
	int old_keyslot, new_keyslot; /* the keyd keyslot before and after; old -1 on resume */
	int keep_old, keep_new;	      /* the kept passphrase's keyslots; -1 without one */
	uint32_t removed;	      /* keyslots (bits) of the old volume key removed at the end */
	bool resumed;		      /* an interrupted re-encryption was continued */
	uint64_t done, total;	      /* bytes, as in struct reencrypt_progress */
	uint64_t run_bytes, run_us;   /* this run's share and its re-encryption time */
	int converged;		      /* header changes convergence and tidying made first */
	struct token_changes changes; /* of those, what token_converge tells the operator */
	/* What an interrupted earlier start left and this run undid before starting afresh. */
	int token_moved_from, token_moved_to; /* the token put back on its keyslot; -1: not */
	uint32_t unbound_removed;	      /* unbound keyslots (bits) removed */
};

/* Re-encrypts @req->device with a new volume key of the same cipher, key size and sector
 * size, or continues an interrupted re-encryption. Takes the rotation lock; the DEK comes from
 * the KMS through the keyd token and lives in secure memory for the call only.
 * -EINTR: stopped by @req->progress (resumable: call again); -ENOENT: @req->resume_only and
 * nothing to resume; -EBUSY: the device is in use by something that is not its mapping;
 * -ENOKEY: not enrolled; -EXDEV: token of another KMS; -EOPNOTSUPP: online without
 * device-mapper, or header requirements libcryptsetup cannot handle; -EPROTO: a re-encryption
 * keyd did not start; -ENOTRECOVERABLE: libcryptsetup was killed between its last header writes,
 * or before them with all the data re-encrypted, where its resume would re-encrypt it again
 * (docs/reencrypt.md); other -errno from libcryptsetup or the KMS. @err says which step failed
 * and why. */
int volume_reencrypt(const struct reencrypt_request *req, struct reencrypt_result *res,
		     struct error *err);

/* Whether @cd's header is where libcryptsetup's last re-encryption step can leave it ("Stuck at
 * the end", docs/reencrypt.md): in reencryption, and no keyslot left for the old volume key,
 * or (@r, what opening it with the DEK returned, is -ENOENT) none the DEK still opens: the last
 * step was wiping them. */
bool reencrypt_stuck(struct crypt_device *cd, int r);
/* Says so in @err, naming @device and @keyslot (the new key's); returns -ENOTRECOVERABLE. */
int reencrypt_stuck_error(struct error *err, const char *device, int keyslot);
