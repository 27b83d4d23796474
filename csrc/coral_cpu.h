// The vectorised float kernels of the CPU op, compiled once per CPU capability and chosen at run
// time, as ATen does with its DispatchStub: the extension is built for the portable x86-64
// baseline (a wheel or venv built here runs on any x86-64 CPU), and the AVX2+FMA copy
// (coral_cpu_avx2.cpp) runs only where the CPU has both.
#pragma once
#include <cstdint>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define BOOKCOVER_HAVE_AVX2_KERNELS 1
#else
#define BOOKCOVER_HAVE_AVX2_KERNELS 0
#endif

namespace bookcover {
namespace cpu {

// Per-chunk loss work (see coral_cpu_kernels.h): g, labf n rows; dg n; db_part km1; loss_part 1.
using ChunkF32 = void (*)(const float* g, const float* labf, int64_t n, const float* b, const float* w, int64_t km1,
                          float* dg, float* db_part, float* loss_part, float* tmp, float* prod, float* probas,
                          int64_t* rank, bool weighted, bool need_p);
// Probabilities and rank only (inference).
using PredictF32 = void (*)(const float* g, int64_t n, const float* b, int64_t km1, float* tmp, float* probas,
                            int64_t* rank);

struct Kernels {
  ChunkF32 chunk;
  PredictF32 predict;
  const char* name;  // "default" or "avx2"
};

Kernels kernels_default();
#if BOOKCOVER_HAVE_AVX2_KERNELS
Kernels kernels_avx2();
#endif

// Column k of probas (B, K-1) from the task's probabilities in tmp, and the running rank
// (rank = number of p_k > 0.5): shared by the loss and predict chunks, float and double.
// Internal linkage: each capability's object keeps its own copy.
namespace {
template <typename scalar_t>
inline void store_column(const scalar_t* tmp, int64_t n, int64_t km1, int64_t k, scalar_t* probas, int64_t* rank) {
  for (int64_t i = 0; i < n; ++i) {
    probas[i * km1 + k] = tmp[i];
    rank[i] += tmp[i] > scalar_t(0.5) ? 1 : 0;
  }
}
}  // namespace

// The kernels for this CPU, chosen once: AVX2+FMA when the CPU has both, unless the documented
// ATEN_CPU_CAPABILITY=default asks for the baseline (as it does for ATen's own kernels).
const Kernels& kernels();

}  // namespace cpu
}  // namespace bookcover
