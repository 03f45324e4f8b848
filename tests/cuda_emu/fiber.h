/* fiber.h: the emulation's fibers (cuda_emu.cpp runs a block's threads on them): a stack each and a switch
 * between them. On x86-64 the switch saves and loads the callee-saved registers and the stack pointer (a
 * few nanoseconds; glibc's swapcontext also makes a system call for the signal mask, which the emulation
 * of the warp-per-row kernels would pay thousands of times per launch); elsewhere it is swapcontext. Under
 * AddressSanitizer each switch is announced to it (__sanitizer_start/finish_switch_fiber). */
#ifndef EDM2_EMU_FIBER_H
#define EDM2_EMU_FIBER_H

#include <cstddef>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

struct Fiber {
    char *stack; /* NULL: the thread's own stack (the scheduler) */
    size_t size;
    void *fake;  /* AddressSanitizer's fake stack, kept while the fiber is switched out */
#if defined(__x86_64__)
    void *sp;
#else
    ucontext_t ctx;
#endif
};

/* f starts, at its first switch-in, by calling entry() on stack[size]; entry must end with
 * fiber_switch(f, to, true) and never return. */
void fiber_make(Fiber *f, char *stack, size_t size, void (*entry)());
/* Suspends `from` (the running fiber, or the scheduler: the thread's own stack) and runs `to` (another fiber,
 * or the scheduler); returns when something switches back to `from`.
 * `from_ends`: from will never run again. */
void fiber_switch(Fiber *from, Fiber *to, bool from_ends);
/* The first call of a new fiber's entry function (AddressSanitizer's bookkeeping). */
void fiber_started();

#endif
