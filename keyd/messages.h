/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The journal's MESSAGE_ID of each kind of event keyd logs, so that `journalctl
 * MESSAGE_ID=...` finds every unlock failure of a fleet (docs/journal.md lists them). Made once
 * with uuid4, never to be changed: dashboards and alerts match on them. */
#pragma once

#define MESSAGE_KEYD_STARTED	 "d0655e6e95504722bfd6f9bef6df6732"
#define MESSAGE_KEYD_READY	 "b9723a4c601943b39670a49c4f2f232d"
#define MESSAGE_VOLUME_OPENED	 "489d22a05b584baa9d5d5cf1d64b8da3"
#define MESSAGE_VOLUME_VERIFIED	 "59010e73c3234a55b836657e3637f1f0"
#define MESSAGE_UNLOCK_FAILED	 "cc527d2688c8481c8387f9a7516a3722"
#define MESSAGE_KMS_WAITING	 "aa00a5f6b0c7484b8501a8856cba4566"
#define MESSAGE_REWRAPPED	 "95d027895a5a4d239be7f75aa4dac65a"
#define MESSAGE_REKEYED		 "f7f7d25c009c4affbac5754877414537"
#define MESSAGE_REVOKED		 "5dd434e166a74e7ea5fc0ae5f312becb"
#define MESSAGE_RESTORED	 "39dbae453c344da29e7dc8430a42f144"
#define MESSAGE_RELEASED	 "92d81dfccc254d2a9c865994970cd553"
#define MESSAGE_CALLBACK_REFUSED "47b6f18c67c4465a90a4ed4dc85b5757"
