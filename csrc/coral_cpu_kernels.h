// The vectorised float kernels of the CPU op. Included once per CPU capability, by
// coral_cpu_default.cpp (portable baseline) and coral_cpu_avx2.cpp (AVX2+FMA), each with its own
// CPU_CAPABILITY defined first: ATen's Vectorized<float> then lives in at::vec::<CPU_CAPABILITY>
// and these functions in bookcover::cpu::<CPU_CAPABILITY>, so the two copies never share a
// symbol (a shared inline function could otherwise be taken from the AVX2 object and run on a
// CPU without AVX2). Do not include this file anywhere else.
//
// Vectorisation: inside a chunk, the loop runs over rows for a fixed task k with ATen's
// at::vec::Vectorized<float> (exp/log1p from Sleef, exported by libtorch_cpu): 8 lanes of AVX2
// in the AVX2 copy, the same code on scalar lanes in the baseline copy.
#pragma once
#ifndef CPU_CAPABILITY
#error "define CPU_CAPABILITY (DEFAULT or AVX2) before including coral_cpu_kernels.h"
#endif
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <cmath>
#include <cstdint>

#include "coral_cpu.h"

namespace bookcover {
namespace cpu {
namespace CPU_CAPABILITY {

using Vec = at::vec::Vectorized<float>;

// Scalar twin of the vector body below, for the tail of a chunk (n % Vec::size() rows).
inline void element_f32(float z, float y, float wk, float& loss, float& d, float& p) {
  const float e = std::exp(-std::fabs(z));
  // y = 1: softplus(-z); y = 0: softplus(z); softplus(x) = max(x, 0) + log1p(exp(-|x|)).
  const float sz = y > 0.5f ? -z : z;
  loss = wk * ((sz > 0.0f ? sz : 0.0f) + std::log1p(e));
  const float r = 1.0f / (1.0f + e);
  p = z >= 0.0f ? r : e * r;  // sigmoid(z) from exp(-|z|), stable for both signs
  d = wk * (p - y);
}

// Per-chunk work in float. g, labf: n rows (n <= kCpuChunk; labels already as floats, so the
// level test is a vector compare). dg (n) receives sum_k w_k (p - y);
// db_part (km1) and loss_part (1) the chunk's partial sums. When probas is not null, probas
// (n x km1, row-major) and rank (n). The inner loop runs over rows for one task k, Vec::size()
// rows at a time (AVX2: 8), with ATen's vectorised exp/log (Sleef).
//
// WEIGHTED: without task weights the log term is taken once per row per 32 tasks, as the log
// of the product of the (1 + e) factors (each in [1, 2]; prod holds them), instead of one
// log1p per element. NEED_P: probabilities and gradients are computed only when a gradient or
// the predictions are asked for (the forward under no_grad needs one exp per element).
template <bool WEIGHTED, bool NEED_P>
void chunk_f32_impl(const float* g, const float* labf, int64_t n, const float* b, const float* w, int64_t km1,
                    float* dg, float* db_part, float* loss_part, float* tmp, float* prod, float* probas,
                    int64_t* rank) {
  for (int64_t i = 0; i < n; ++i) {
    dg[i] = 0.0f;
    prod[i] = 1.0f;
  }
  const int64_t nv = n - n % Vec::size();
  const Vec zero(0.0f), one(1.0f);
  float loss = 0.0f;
  for (int64_t k = 0; k < km1; ++k) {
    const Vec bk(b[k]), wk(w[k]), kf(static_cast<float>(k));
    Vec lacc(0.0f), dacc(0.0f);
    for (int64_t i = 0; i < nv; i += Vec::size()) {
      const Vec z = Vec::loadu(g + i) + bk;
      const Vec above = Vec::loadu(labf + i) > kf;  // all-ones mask where y = 1
      const Vec e = z.abs().neg().exp();
      const Vec sz = Vec::blendv(z, z.neg(), above);
      const Vec u = one + e;
      if constexpr (WEIGHTED) {
        lacc = at::vec::fmadd(wk, at::vec::maximum(sz, zero) + e.log1p(), lacc);
      } else {
        lacc = lacc + at::vec::maximum(sz, zero);
        (Vec::loadu(prod + i) * u).store(prod + i);
      }
      if constexpr (NEED_P) {
        const Vec y = Vec::blendv(zero, one, above);
        const Vec r = one / u;
        const Vec p = Vec::blendv(e * r, r, z >= zero);
        const Vec d = WEIGHTED ? wk * (p - y) : p - y;
        (Vec::loadu(dg + i) + d).store(dg + i);
        dacc = dacc + d;
        p.store(tmp + i);
      }
    }
    if (!WEIGHTED && (k % 32 == 31 || k == km1 - 1)) {
      for (int64_t i = 0; i < nv; i += Vec::size()) {
        lacc = lacc + Vec::loadu(prod + i).log();
        one.store(prod + i);
      }
    }
    // Lane sums in a fixed order, then the tail (scalar, log1p per element): deterministic.
    float lanes[Vec::size()], dlanes[Vec::size()];
    lacc.store(lanes);
    dacc.store(dlanes);
    float lsum = 0.0f, dsum = 0.0f;
    for (int64_t j = 0; j < Vec::size(); ++j) {
      lsum += lanes[j];
      dsum += dlanes[j];
    }
    for (int64_t i = nv; i < n; ++i) {
      float l, d, p;
      element_f32(g[i] + b[k], labf[i] > static_cast<float>(k) ? 1.0f : 0.0f, w[k], l, d, p);
      lsum += l;
      dsum += d;
      dg[i] += d;
      tmp[i] = p;
    }
    loss += lsum;
    db_part[k] = dsum;
    if (probas != nullptr) store_column(tmp, n, km1, k, probas, rank);
  }
  *loss_part = loss;
}

void chunk_f32(const float* g, const float* labf, int64_t n, const float* b, const float* w, int64_t km1,
               float* dg, float* db_part, float* loss_part, float* tmp, float* prod, float* probas, int64_t* rank,
               bool weighted, bool need_p) {
  if (weighted) {
    need_p ? chunk_f32_impl<true, true>(g, labf, n, b, w, km1, dg, db_part, loss_part, tmp, prod, probas, rank)
           : chunk_f32_impl<true, false>(g, labf, n, b, w, km1, dg, db_part, loss_part, tmp, prod, probas, rank);
  } else {
    need_p ? chunk_f32_impl<false, true>(g, labf, n, b, w, km1, dg, db_part, loss_part, tmp, prod, probas, rank)
           : chunk_f32_impl<false, false>(g, labf, n, b, w, km1, dg, db_part, loss_part, tmp, prod, probas, rank);
  }
}

// Probabilities and rank only (inference): one exp and one division per element.
void predict_chunk_f32(const float* g, int64_t n, const float* b, int64_t km1, float* tmp, float* probas,
                       int64_t* rank) {
  for (int64_t i = 0; i < n; ++i) rank[i] = 0;
  const int64_t nv = n - n % Vec::size();
  const Vec zero(0.0f), one(1.0f);
  for (int64_t k = 0; k < km1; ++k) {
    const Vec bk(b[k]);
    for (int64_t i = 0; i < nv; i += Vec::size()) {
      const Vec z = Vec::loadu(g + i) + bk;
      const Vec e = z.abs().neg().exp();
      const Vec r = one / (one + e);
      Vec::blendv(e * r, r, z >= zero).store(tmp + i);
    }
    for (int64_t i = nv; i < n; ++i) {
      const float z = g[i] + b[k];
      const float e = std::exp(-std::fabs(z));
      tmp[i] = z >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
    }
    store_column(tmp, n, km1, k, probas, rank);
  }
}

// This capability's table (coral_cpu.h).
inline Kernels make_kernels(const char* name) { return Kernels{&chunk_f32, &predict_chunk_f32, name}; }

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace bookcover
