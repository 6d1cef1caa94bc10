/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The PKCS#11 (Cryptoki) types and constants keyd uses: p11-kit's pkcs11.h (libp11-kit-dev,
 * header only: keyd never links libp11-kit), plus the few PKCS#11 3.0 values it lacks. */
#pragma once

#include <p11-kit/pkcs11.h>

/* PKCS#11 v3.0, section 2.14.5 and table 2 (return values); p11-kit 0.24's header is 2.40. */
#ifndef CKM_AES_KEY_WRAP_KWP
#define CKM_AES_KEY_WRAP_KWP (0x210bUL)
#endif
#ifndef CKR_AEAD_DECRYPT_FAILED
#define CKR_AEAD_DECRYPT_FAILED (0x42UL)
#endif
