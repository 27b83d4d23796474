// The portable baseline copy of the CPU kernels (compiled with the compiler's default x86-64
// flags, as the rest of the extension), and the run-time choice between the copies.
#define CPU_CAPABILITY DEFAULT
#include "coral_cpu_kernels.h"

#include <cstdlib>
#include <cstring>

namespace bookcover {
namespace cpu {

Kernels kernels_default() { return DEFAULT::make_kernels("default"); }

namespace {

Kernels choose() {
  // ATEN_CPU_CAPABILITY=default is PyTorch's documented switch to its baseline kernels.
  const char* asked = std::getenv("ATEN_CPU_CAPABILITY");
  const bool baseline = asked != nullptr && std::strcmp(asked, "default") == 0;
#if BOOKCOVER_HAVE_AVX2_KERNELS
  if (!baseline && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return kernels_avx2();
#endif
  (void)baseline;
  return kernels_default();
}

}  // namespace

const Kernels& kernels() {
  static const Kernels chosen = choose();
  return chosen;
}

}  // namespace cpu
}  // namespace bookcover
