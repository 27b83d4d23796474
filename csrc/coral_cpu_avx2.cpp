// The AVX2+FMA copy of the CPU kernels. Only this file is compiled for AVX2 (the target pragma
// below, before any include), and its functions run only after coral_cpu_default.cpp has
// checked that the CPU has AVX2 and FMA: the rest of the extension stays portable x86-64.
// tests/coral/test_cpu_dispatch.py disassembles the built library to keep it that way.
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif
// The pragma changes code generation but not the predefined macros, and sleef.h (included by
// ATen's vec headers) declares its 8-lane functions only under __AVX__: say what the pragma enabled.
#ifndef __AVX__
#define __AVX__ 1
#endif
#ifndef __AVX2__
#define __AVX2__ 1
#endif
#ifndef __FMA__
#define __FMA__ 1
#endif
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#include "coral_cpu_kernels.h"

namespace bookcover {
namespace cpu {

Kernels kernels_avx2() { return AVX2::make_kernels("avx2"); }

}  // namespace cpu
}  // namespace bookcover

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif  // x86 with GCC or clang (BOOKCOVER_HAVE_AVX2_KERNELS)
