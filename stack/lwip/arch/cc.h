/* lwIP's platform header for xdpload: x86-64 Linux, GCC or Clang. */
#ifndef XDPLOAD_LWIP_ARCH_CC_H
#define XDPLOAD_LWIP_ARCH_CC_H

#include <stdio.h>
#include <stdlib.h>

#define LWIP_NO_CTYPE_H 0

/* lwIP's asserts guard its internal invariants: a failure is a bug that would
 * corrupt the stack, so say where and stop. */
#define LWIP_PLATFORM_DIAG(x) \
  do {                        \
    printf x;                 \
  } while (0)
#define LWIP_PLATFORM_ASSERT(x)                                                  \
  do {                                                                           \
    fprintf(stderr, "xdpload: lwIP assertion \"%s\" failed at %s:%d\n", x,      \
            __FILE__, __LINE__);                                                 \
    abort();                                                                     \
  } while (0)

/* Byte swaps as single instructions instead of lwIP's shifts. */
#define lwip_htons(x) ((u16_t)__builtin_bswap16((u16_t)(x)))
#define lwip_ntohs(x) lwip_htons(x)
#define lwip_htonl(x) ((u32_t)__builtin_bswap32((u32_t)(x)))
#define lwip_ntohl(x) lwip_htonl(x)

/* Random numbers for the initial local port and IGMP delays. */
unsigned int xdpload_lwip_rand(void);
#define LWIP_RAND() ((u32_t)xdpload_lwip_rand())

#endif
