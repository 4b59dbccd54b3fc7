/* p11proxy_pkcs11.h: the one header Swift imports for PKCS#11 types.
 * PKCS#11 2.40 comes from libp11-kit-dev's <p11-kit/pkcs11.h> (standard names,
 * CRYPTOKI_COMPAT); the 3.0 additions we use are in pkcs11_3_0.h, the 3.1 and 3.2 ones
 * in pkcs11_3_2.h. */
#ifndef P11PROXY_PKCS11_H
#define P11PROXY_PKCS11_H

#define CRYPTOKI_COMPAT 1
#include <p11-kit/pkcs11.h>
#include "pkcs11_3_0.h"
#include "pkcs11_3_2.h"

/* Build-time paths from `pkg-config p11-kit-1`, written by the Makefile.
 * Without it (a bare `swift build`) Debian's values are used. */
#if __has_include("p11kit_paths.h")
#include "p11kit_paths.h"
#endif
#ifndef P11PROXY_P11_MODULE_PATH
#define P11PROXY_P11_MODULE_PATH "/usr/lib/x86_64-linux-gnu/pkcs11"
#endif
#ifndef P11PROXY_P11_SYSTEM_CONFIG
#define P11PROXY_P11_SYSTEM_CONFIG "/etc/pkcs11/pkcs11.conf"
#endif
#ifndef P11PROXY_P11_SYSTEM_CONFIG_MODULES
#define P11PROXY_P11_SYSTEM_CONFIG_MODULES "/etc/pkcs11/modules"
#endif
#ifndef P11PROXY_P11_PACKAGE_CONFIG_MODULES
#define P11PROXY_P11_PACKAGE_CONFIG_MODULES "/usr/share/p11-kit/modules"
#endif

#endif
