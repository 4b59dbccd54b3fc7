/* p11proxy_libc.h: glibc's posix_spawn_file_actions_addclosefrom_np (glibc 2.34, <spawn.h>
 * under _GNU_SOURCE), declared again for the full-stdlib build, whose Glibc module is read
 * without _GNU_SOURCE. The Embedded build's support/embedded-libc sees the same declaration. */
#ifndef P11PROXY_LIBC_H
#define P11PROXY_LIBC_H

#include <spawn.h>

extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);

#endif
