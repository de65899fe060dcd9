/*
 * Bare-metal start-up for the reference firmware on QEMU's mps2-an385 /
 * mps2-an386 (Cortex-M3 / Cortex-M4): vector table, reset handler (FPU on,
 * .data copied, .bss zeroed, newlib's semihosting handles opened), the
 * program's arguments from the host (semihosting SYS_GET_CMDLINE), and an
 * exit that hands main's return value to QEMU as its exit status
 * (SYS_EXIT_EXTENDED).
 */
#include <stdint.h>
#include <string.h>

#include "semihost.h"

extern int main(int argc, char **argv);
extern void initialise_monitor_handles(void);

extern uint32_t __data_load__, __data_start__, __data_end__;
extern uint32_t __bss_start__, __bss_end__;
extern uint32_t __stack_top__;

void Reset_Handler(void);
void Fault_Handler(void);

#define MAX_ARGS 8
static char cmdline[256];
static char *argv_buf[MAX_ARGS + 1];

__attribute__((section(".isr_vector"), used))
static void (*const vector_table[16])(void) = {
    (void (*)(void))(&__stack_top__), /* initial stack pointer */
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
    0, 0, 0, 0,
    Fault_Handler, /* SVCall */
    Fault_Handler, /* DebugMon */
    0,
    Fault_Handler, /* PendSV */
    Fault_Handler, /* SysTick */
};

void Fault_Handler(void)
{
    semihost_write0("firmware: fault exception\n");
    semihost_exit(3);
}

static int split_args(char *line, char **argv, int max)
{
    int argc = 0;
    char *p = line;
    while (*p && argc < max) {
        while (*p == ' ') {
            *p++ = '\0';
        }
        if (!*p) {
            break;
        }
        argv[argc++] = p;
        while (*p && *p != ' ') {
            ++p;
        }
    }
    argv[argc] = 0;
    return argc;
}

void Reset_Handler(void)
{
#if defined(__ARM_FP)
    /* CPACR: full access to CP10/CP11 before any floating-point instruction */
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20);
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    uint32_t *src = &__data_load__;
    for (uint32_t *dst = &__data_start__; dst < &__data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0;
    }
    initialise_monitor_handles();
    int argc = 0;
    if (semihost_get_cmdline(cmdline, sizeof cmdline) == 0) {
        argc = split_args(cmdline, argv_buf, MAX_ARGS);
    }
    semihost_exit(main(argc, argv_buf));
}
