/* The C library as the Embedded Swift build of libp11proxy.so sees it (module.modulemap).
 * Declarations only: the headers the sources use, as the toolchain's Glibc module has them. */
#ifndef P11PROXY_EMBEDDED_LIBC_H
#define P11PROXY_EMBEDDED_LIBC_H

#define _GNU_SOURCE 1 /* environ, as the Glibc overlay declares it */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* open(2)'s fixed-argument entry point (glibc 2.7, what _FORTIFY_SOURCE builds call), declared
 * by <fcntl.h> only under _FORTIFY_SOURCE. Swift cannot call the variadic open. */
extern int __open_2(const char *path, int flags);

#endif
