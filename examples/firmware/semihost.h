/*
 * The three Arm semihosting calls the start-up code makes itself (newlib's
 * rdimon library does file and console I/O): print a string, get the
 * command line, exit with a status.  Semihosting traps to the debugger --
 * here QEMU -- with BKPT 0xAB on M-profile cores.
 */
#ifndef SEMIHOST_H
#define SEMIHOST_H

#include <stddef.h>
#include <stdint.h>

#define SEMIHOST_SYS_WRITE0 0x04
#define SEMIHOST_SYS_GET_CMDLINE 0x15
#define SEMIHOST_SYS_EXIT_EXTENDED 0x20
#define SEMIHOST_ADP_STOPPED_APPLICATION_EXIT 0x20026

static inline int32_t semihost_call(int32_t op, const void *arg)
{
    register int32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static inline void semihost_write0(const char *text)
{
    semihost_call(SEMIHOST_SYS_WRITE0, text);
}

/* The host's command line (QEMU: -semihosting-config arg=...), joined by spaces. 0 on success. */
static inline int semihost_get_cmdline(char *buf, size_t size)
{
    uint32_t block[2];
    block[0] = (uint32_t)(uintptr_t)buf;
    block[1] = (uint32_t)size;
    return semihost_call(SEMIHOST_SYS_GET_CMDLINE, block);
}

/* End the emulation; QEMU exits with `status`. */
__attribute__((noreturn)) static inline void semihost_exit(int status)
{
    uint32_t block[2];
    block[0] = SEMIHOST_ADP_STOPPED_APPLICATION_EXIT;
    block[1] = (uint32_t)status;
    semihost_call(SEMIHOST_SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}

#endif /* SEMIHOST_H */
