/* fiber.cpp: fiber.h. */
#include "fiber.h"

#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN_FIBERS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMU_ASAN_FIBERS 1
#endif
#endif
#ifdef EMU_ASAN_FIBERS
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace {
#ifdef EMU_ASAN_FIBERS
/* The scheduler's stack (the running launch's host thread's own), as AddressSanitizer reports it when a
 * fiber starts. Plain globals: one launch runs at a time (cuda_emu.cpp), and a thread-local variable of a
 * shared library costs a call through AddressSanitizer's interceptor at each switch. */
const void *sched_bottom;
size_t sched_size;
bool from_scheduler; /* the switch under way leaves the scheduler (set just before it) */
#endif

void announce(Fiber *from, Fiber *to, bool from_ends) {
#ifdef EMU_ASAN_FIBERS
    from_scheduler = !from->stack;
    __sanitizer_start_switch_fiber(from_ends ? nullptr : &from->fake, to->stack ? to->stack : sched_bottom,
                                   to->stack ? to->size : sched_size);
#else
    (void)from, (void)to, (void)from_ends;
#endif
}
#ifdef EMU_ASAN_FIBERS
/* A switch has arrived (on a fiber: `on_fiber`); fake: the fake stack saved when this side left. The stack left
 * behind is recorded as the scheduler's where a fiber arrives from it (not from another fiber). */
void finish(void *fake, bool on_fiber) {
    const bool keep = on_fiber && from_scheduler;
    __sanitizer_finish_switch_fiber(fake, keep ? &sched_bottom : nullptr, keep ? &sched_size : nullptr);
}
#endif
void arrived(Fiber *self) {
#ifdef EMU_ASAN_FIBERS
    finish(self->fake, self->stack != nullptr);
#else
    (void)self;
#endif
}
} // namespace

/* A stack reused for a new fiber still holds the poisoned redzones of the frames that never returned on
 * it: those of the last fiber's entry function and its final switch, at the stack's top (the kernel's
 * frames below them all returned: a fiber ends only when its kernel has). Those are cleared, as
 * AddressSanitizer's makecontext does for a whole stack: only the top FRESH_TOP bytes, since clearing
 * all 128 KiB for each block's first thread took a sixth of test_cuda_network_emu's time. */
static const size_t FRESH_TOP = 16 * 1024;
static void fresh_stack(char *stack, size_t size) {
#ifdef EMU_ASAN_FIBERS
    const size_t n = size < FRESH_TOP ? size : FRESH_TOP;
    __asan_unpoison_memory_region(stack + size - n, n);
#else
    (void)stack, (void)size;
#endif
}

void fiber_started() {
#ifdef EMU_ASAN_FIBERS
    finish(nullptr, true);
#endif
}

#if defined(__x86_64__)
/* emu_fiber_jump(save, load): pushes the callee-saved registers, stores the stack pointer in *save, loads
 * `load` as the stack pointer, pops the registers saved there and returns into that fiber. */
asm(".text\n"
    ".globl emu_fiber_jump\n"
    ".hidden emu_fiber_jump\n"
    ".type emu_fiber_jump,@function\n"
    "emu_fiber_jump:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size emu_fiber_jump, .-emu_fiber_jump\n");
extern "C" void emu_fiber_jump(void **save, void *load);

void fiber_make(Fiber *f, char *stack, size_t size, void (*entry)()) {
    fresh_stack(stack, size);
    f->stack = stack, f->size = size, f->fake = nullptr;
    void **sp = (void **)((uintptr_t)(stack + size) & ~(uintptr_t)15);
    *--sp = nullptr;          /* where entry's return address would be: entry never returns */
    *--sp = (void *)entry;    /* emu_fiber_jump's ret goes there, the stack then aligned as after a call */
    for (int i = 0; i < 6; i++) *--sp = nullptr; /* rbp rbx r12 r13 r14 r15 */
    f->sp = sp;
}

void fiber_switch(Fiber *from, Fiber *to, bool from_ends) {
    announce(from, to, from_ends);
    emu_fiber_jump(&from->sp, to->sp);
    arrived(from);
}
#else
void fiber_make(Fiber *f, char *stack, size_t size, void (*entry)()) {
    fresh_stack(stack, size);
    f->stack = stack, f->size = size, f->fake = nullptr;
    getcontext(&f->ctx);
    f->ctx.uc_stack.ss_sp = stack;
    f->ctx.uc_stack.ss_size = size;
    f->ctx.uc_link = nullptr;
    makecontext(&f->ctx, entry, 0);
}

void fiber_switch(Fiber *from, Fiber *to, bool from_ends) {
    announce(from, to, from_ends);
    swapcontext(&from->ctx, &to->ctx);
    arrived(from);
}
#endif
