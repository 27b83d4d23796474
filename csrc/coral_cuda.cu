// The fused CORAL op on CUDA: same contract as the CPU op in coral.cpp.
//
// Loss kernel: each thread owns groups of kVec = 4 consecutive rows and walks them grid-stride
// (the grid is one wave of resident blocks, from the occupancy API), so g and the labels come
// in as vector loads (float4; 32 B of int64 labels) with 4 independent rows in flight per
// thread, and dg goes out as one vector store. The K-1 tasks are a loop inside the thread:
// loss, closed-form gradient and (optionally) probas and rank in one pass, fp32 math (fp64 for
// double inputs). Fast intrinsics where the fp32 tolerance (1e-5) allows: __expf, __logf and
// an approximate reciprocal; without weights the log is taken once per row per 32 tasks, of
// the product of the (1 + e) factors (each in [1, 2]).
//
// Reductions, deterministic (no float atomics): with K-1 <= kTaskRegs each thread keeps its db
// column sums in registers across all its rows; otherwise each warp adds its per-task sums
// into its own shared-memory row. Each block reduces loss and db once, at the end, in a fixed
// order; a single block writes the final (scaled) values itself, several blocks write one
// partial row each, which a second tiny kernel sums per column in a fixed order (this replaced
// two at::sum calls).
//
// Labels are read in their own dtype (int64, int32, uint8). Out-of-range labels make the loss
// NaN, as on CPU and in the reference; no host sync (coral_loss(check_labels=True) raises).
// c10 headers only: ATen/cuda/CUDAContext.h pulls in cuBLAS/cuSPARSE headers, which a minimal
// CUDA toolkit may lack.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <torch/types.h>

#include <map>
#include <mutex>
#include <tuple>
#include <type_traits>

#include "coral.h"

namespace bookcover {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kVec = 4;        // consecutive rows per thread and step
constexpr int kTaskRegs = 8;   // K-1 up to this: per-thread db accumulators in registers
constexpr int kLogEvery = 32;  // tasks per log of the (1 + e) product: < 2^32

// --- math: fast fp32 intrinsics, plain fp64 ------------------------------------------------
__device__ __forceinline__ float exp_neg_abs(float z) { return __expf(-fabsf(z)); }
__device__ __forceinline__ double exp_neg_abs(double z) { return exp(-fabs(z)); }
__device__ __forceinline__ float log_(float x) { return __logf(x); }  // x >= 1
__device__ __forceinline__ double log_(double x) { return log(x); }
__device__ __forceinline__ float rcp(float x) {  // x in [1, 2]: 1 ulp
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
}
__device__ __forceinline__ double rcp(double x) { return 1.0 / x; }
template <typename T>
__device__ __forceinline__ T neg_inf() {
  return -INFINITY;
}

template <typename acc_t>
__device__ __forceinline__ acc_t warp_sum(acc_t v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;  // every lane holds the sum, in the same (butterfly) order
}

// kVec consecutive elements, aligned for one vector load when the base pointer is.
template <typename T>
struct alignas(sizeof(T) * kVec > 16 ? 16 : sizeof(T) * kVec) Pack {
  T v[kVec];
};

// Rows [i0, i0 + kVec) of src as acc_t; rows past `batch` get `pad`.
template <typename acc_t, typename T>
__device__ __forceinline__ void load_group(const T* __restrict__ src, int64_t i0, int64_t batch, bool vec,
                                           acc_t pad, acc_t (&out)[kVec]) {
  if (vec && i0 + kVec <= batch) {
    const Pack<T> p = *reinterpret_cast<const Pack<T>*>(src + i0);
#pragma unroll
    for (int j = 0; j < kVec; ++j) out[j] = static_cast<acc_t>(p.v[j]);
  } else {
#pragma unroll
    for (int j = 0; j < kVec; ++j) out[j] = i0 + j < batch ? static_cast<acc_t>(src[i0 + j]) : pad;
  }
}

template <typename T>
__device__ __forceinline__ void store_group(T* __restrict__ dst, int64_t i0, int64_t batch, bool vec,
                                            const T (&val)[kVec]) {
  if (vec && i0 + kVec <= batch) {
    Pack<T> p;
#pragma unroll
    for (int j = 0; j < kVec; ++j) p.v[j] = val[j];
    *reinterpret_cast<Pack<T>*>(dst + i0) = p;
  } else {
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      if (i0 + j < batch) dst[i0 + j] = val[j];
    }
  }
}

struct LossArgs {
  int64_t batch;
  int km1;
  bool compute_grad, return_pred, vec, weighted;
};

// One (row group, task) step. Rows past B carry g = -inf and label 0: z = -inf, so every term
// is exactly 0 (no masks in the task loop).
template <typename acc_t>
__device__ __forceinline__ acc_t task_step(const acc_t (&gv)[kVec], const acc_t (&lv)[kVec], acc_t bk, acc_t wk,
                                           int k, const LossArgs& a, acc_t& loss, acc_t (&prod)[kVec],
                                           acc_t (&dgi)[kVec], int (&rk)[kVec], acc_t* __restrict__ probas,
                                           int64_t i0) {
  const acc_t kf = static_cast<acc_t>(k);
  acc_t dsum = 0;
#pragma unroll
  for (int j = 0; j < kVec; ++j) {
    const acc_t z = gv[j] + bk;
    const bool above = lv[j] > kf;  // y = 1
    const acc_t s = above ? -z : z;  // the loss is softplus(s)
    const acc_t e = exp_neg_abs(z);
    const acc_t u = acc_t(1) + e;
    const acc_t hinge = s > acc_t(0) ? s : acc_t(0);
    if (a.weighted) {
      loss += wk * (hinge + log_(u));
    } else {
      loss += hinge;
      prod[j] *= u;
    }
    if (a.compute_grad || a.return_pred) {
      const acc_t r = rcp(u);
      const acc_t q = e * r;
      if (a.compute_grad) {
        const acc_t sig_s = s >= acc_t(0) ? r : q;
        const acc_t d0 = above ? -sig_s : sig_s;  // sigmoid(z) - y
        const acc_t d = a.weighted ? wk * d0 : d0;
        dgi[j] += d;
        dsum += d;
      }
      if (a.return_pred && i0 + j < a.batch) {
        const acc_t p = z >= acc_t(0) ? r : q;
        probas[(i0 + j) * a.km1 + k] = p;
        rk[j] += p > acc_t(0.5) ? 1 : 0;
      }
    }
  }
  if (!a.weighted && ((k % kLogEvery) == kLogEvery - 1 || k == a.km1 - 1)) {
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      loss += log_(prod[j]);
      prod[j] = acc_t(1);
    }
  }
  return dsum;
}

// KREG > 0: K-1 <= KREG, db in registers. KREG == 0: any K-1, db via per-warp shared rows.
// fp32: at least 3 resident blocks (<= 85 registers), i.e. 24 warps x 4 rows of loads in
// flight per SM; without the bound ptxas aimed at 64 registers and spilled 12 bytes (KREG = 8).
// fp64 (gradcheck only) needs more registers: 1 block minimum.
template <typename acc_t>
constexpr int min_blocks() {
  return std::is_same_v<acc_t, double> ? 1 : 3;
}
template <typename scalar_t, typename label_t, typename acc_t, int KREG>
__global__ void __launch_bounds__(kThreads, min_blocks<acc_t>())
    coral_loss_kernel(const scalar_t* __restrict__ g, const acc_t* __restrict__ b, const acc_t* __restrict__ w,
                      const label_t* __restrict__ lab, LossArgs a, acc_t inv_b, acc_t* __restrict__ loss_out,
                      acc_t* __restrict__ db_out, acc_t* __restrict__ part, acc_t* __restrict__ dg,
                      acc_t* __restrict__ probas, int64_t* __restrict__ rank) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  acc_t* warp_rows = reinterpret_cast<acc_t*>(smem_raw);  // kWarps x (1 + km1)
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int ncols = 1 + a.km1;
  if (KREG == 0) {
    for (int c = threadIdx.x; c < kWarps * ncols; c += kThreads) warp_rows[c] = 0;
    __syncthreads();
  }
  acc_t loss = 0;
  acc_t dacc[KREG > 0 ? KREG : 1];
#pragma unroll
  for (int k = 0; k < (KREG > 0 ? KREG : 1); ++k) dacc[k] = 0;

  const int64_t groups = (a.batch + kVec - 1) / kVec;
  // Warp-uniform trip count (the per-task warp_sum below needs every lane): a lane past the
  // last group works on padding rows (g = -inf), which contribute 0 and are never stored.
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * kThreads + warp * 32; base < groups;
       base += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t i0 = (base + lane) * kVec;
    acc_t gv[kVec], lv[kVec], prod[kVec], dgi[kVec];
    int rk[kVec];
    load_group<acc_t>(g, i0, a.batch, a.vec, neg_inf<acc_t>(), gv);
    load_group<acc_t>(lab, i0, a.batch, a.vec, acc_t(0), lv);
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      if (lv[j] < acc_t(0) || lv[j] > static_cast<acc_t>(a.km1)) loss = NAN;  // invalid label
      prod[j] = 1;
      dgi[j] = 0;
      rk[j] = 0;
    }
    if (KREG > 0) {
#pragma unroll
      for (int k = 0; k < (KREG > 0 ? KREG : 1); ++k) {
        if (k < a.km1) {
          const acc_t wk = a.weighted ? __ldg(w + k) : acc_t(1);
          dacc[k] += task_step(gv, lv, __ldg(b + k), wk, k, a, loss, prod, dgi, rk, probas, i0);
        }
      }
    } else {
      for (int k = 0; k < a.km1; ++k) {
        const acc_t wk = a.weighted ? __ldg(w + k) : acc_t(1);
        const acc_t dsum = task_step(gv, lv, __ldg(b + k), wk, k, a, loss, prod, dgi, rk, probas, i0);
        if (a.compute_grad) {
          const acc_t col = warp_sum(dsum);
          if (lane == 0) warp_rows[warp * ncols + 1 + k] += col;  // only this warp's lane 0 writes it
        }
      }
    }
    if (a.compute_grad) {
#pragma unroll
      for (int j = 0; j < kVec; ++j) dgi[j] *= inv_b;
      store_group(dg, i0, a.batch, a.vec, dgi);
    }
    if (a.return_pred) {
#pragma unroll
      for (int j = 0; j < kVec; ++j) {
        if (i0 + j < a.batch) rank[i0 + j] = rk[j];
      }
    }
  }

  // Block reduction, fixed order: warp butterflies, then the warps' rows in warp order.
  loss = warp_sum(loss);
  if (KREG > 0) {
#pragma unroll
    for (int k = 0; k < (KREG > 0 ? KREG : 1); ++k) dacc[k] = warp_sum(dacc[k]);
    if (lane == 0) {
      warp_rows[warp * ncols] = loss;
#pragma unroll
      for (int k = 0; k < (KREG > 0 ? KREG : 1); ++k) {  // constant indices: dacc stays in registers
        if (k < a.km1) warp_rows[warp * ncols + 1 + k] = dacc[k];
      }
    }
  } else if (lane == 0) {
    warp_rows[warp * ncols] = loss;
  }
  __syncthreads();
  const int used = a.compute_grad ? ncols : 1;
  for (int c = threadIdx.x; c < used; c += kThreads) {
    acc_t total = 0;
    for (int wi = 0; wi < kWarps; ++wi) total += warp_rows[wi * ncols + c];
    if (gridDim.x == 1) {
      if (c == 0) {
        *loss_out = total * inv_b;
      } else {
        db_out[c - 1] = total * inv_b;
      }
    } else {
      part[static_cast<int64_t>(blockIdx.x) * ncols + c] = total;
    }
  }
}

// Final sum of the loss kernel's partial rows: one block per column, threads stride over the
// rows, then a fixed tree. part (nparts, ncols) -> loss_out (column 0), db_out (1..).
template <typename acc_t>
__global__ void __launch_bounds__(kThreads)
    coral_reduce_kernel(const acc_t* __restrict__ part, int64_t nparts, int ncols, acc_t inv_b,
                        acc_t* __restrict__ loss_out, acc_t* __restrict__ db_out) {
  __shared__ acc_t scratch[kWarps];
  const int c = blockIdx.x;
  acc_t v = 0;
  for (int64_t p = threadIdx.x; p < nparts; p += kThreads) v += part[p * ncols + c];
  v = warp_sum(v);
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    acc_t total = 0;
    for (int wi = 0; wi < kWarps; ++wi) total += scratch[wi];
    if (c == 0) {
      *loss_out = total * inv_b;
    } else {
      db_out[c - 1] = total * inv_b;
    }
  }
}

template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kThreads)
    coral_predict_kernel(const scalar_t* __restrict__ g, const acc_t* __restrict__ b, int64_t batch, int km1,
                         acc_t* __restrict__ probas, int64_t* __restrict__ rank) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < batch;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    const acc_t gi = static_cast<acc_t>(g[i]);
    int64_t r = 0;
    for (int k = 0; k < km1; ++k) {
      const acc_t z = gi + __ldg(b + k);
      const acc_t e = exp_neg_abs(z);
      const acc_t inv = rcp(acc_t(1) + e);
      const acc_t p = z >= acc_t(0) ? inv : e * inv;
      probas[i * km1 + k] = p;
      r += p > acc_t(0.5) ? 1 : 0;
    }
    rank[i] = r;
  }
}

// grad_logit = dg * grad (as the logit dtype), grad_bias = db * grad: the backward, one launch.
template <typename out_t, typename acc_t>
__global__ void __launch_bounds__(kThreads)
    coral_grad_scale_kernel(const acc_t* __restrict__ dg, const acc_t* __restrict__ db,
                            const acc_t* __restrict__ grad, int64_t batch, int km1, out_t* __restrict__ grad_g,
                            acc_t* __restrict__ grad_b) {
  const acc_t s = *grad;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < batch;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    grad_g[i] = static_cast<out_t>(dg[i] * s);
  }
  if (blockIdx.x == 0) {
    for (int k = threadIdx.x; k < km1; k += kThreads) grad_b[k] = db[k] * s;
  }
}

at::ScalarType acc_of(const at::Tensor& t) { return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// Resident blocks per SM x SMs for a kernel, cached per (kernel, device, shared bytes): the
// occupancy query is not repeated on every call.
template <typename K>
int64_t one_wave(K kernel, int device, size_t smem) {
  static std::mutex mu;
  static std::map<std::tuple<const void*, int, size_t>, int64_t> cache;
  const auto key = std::make_tuple(reinterpret_cast<const void*>(kernel), device, smem);
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  int per_sm = 0, sms = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t wave = std::max<int64_t>(1, static_cast<int64_t>(per_sm) * sms);
  cache.emplace(key, wave);
  return wave;
}

template <typename scalar_t, typename label_t, typename acc_t>
void launch_loss(const at::Tensor& logit, const at::Tensor& bias, const at::Tensor& weights, const at::Tensor& labels,
                 LossArgs a, acc_t inv_b, at::Tensor& loss, at::Tensor& db, at::Tensor& dg, at::Tensor& probas,
                 at::Tensor& rank) {
  const int ncols = 1 + a.km1;
  const size_t smem = static_cast<size_t>(kWarps) * ncols * sizeof(acc_t);
  TORCH_CHECK(smem <= 48 * 1024, "coral: the CUDA op supports up to ", 48 * 1024 / (kWarps * sizeof(acc_t)) - 1,
              " levels; use impl='triton' or 'reference'");
  auto kernel = a.km1 <= kTaskRegs ? coral_loss_kernel<scalar_t, label_t, acc_t, kTaskRegs>
                                   : coral_loss_kernel<scalar_t, label_t, acc_t, 0>;
  const int64_t groups = (a.batch + kVec - 1) / kVec;
  const int device = logit.get_device();
  const int64_t blocks =
      std::max<int64_t>(1, std::min<int64_t>((groups + kThreads - 1) / kThreads, one_wave(kernel, device, smem)));
  at::Tensor part = blocks > 1 ? at::empty({blocks, ncols}, loss.options()) : loss;
  auto stream = c10::cuda::getCurrentCUDAStream();
  kernel<<<blocks, kThreads, smem, stream>>>(
      logit.data_ptr<scalar_t>(), bias.data_ptr<acc_t>(), a.weighted ? weights.data_ptr<acc_t>() : nullptr,
      labels.data_ptr<label_t>(), a, inv_b, loss.data_ptr<acc_t>(), a.compute_grad ? db.data_ptr<acc_t>() : nullptr,
      part.data_ptr<acc_t>(), a.compute_grad ? dg.data_ptr<acc_t>() : nullptr,
      a.return_pred ? probas.data_ptr<acc_t>() : nullptr, a.return_pred ? rank.data_ptr<int64_t>() : nullptr);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (blocks > 1) {
    const int used = a.compute_grad ? ncols : 1;
    coral_reduce_kernel<acc_t><<<used, kThreads, 0, stream>>>(part.data_ptr<acc_t>(), blocks, ncols, inv_b,
                                                               loss.data_ptr<acc_t>(),
                                                               a.compute_grad ? db.data_ptr<acc_t>() : nullptr);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

// acc_t is double exactly for double logits (a template, so the other branch is not instantiated).
template <typename scalar_t>
using acc_for = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

template <typename scalar_t>
void dispatch_loss(const at::Tensor& logit, const at::Tensor& bias, const at::Tensor& weights, const at::Tensor& labels,
                   LossArgs a, at::Tensor& loss, at::Tensor& db, at::Tensor& dg, at::Tensor& probas, at::Tensor& rank) {
  using acc_t = acc_for<scalar_t>;
  const acc_t inv_b = a.batch ? acc_t(1) / static_cast<acc_t>(a.batch) : acc_t(NAN);
  if constexpr (std::is_same_v<acc_t, double>) {  // gradcheck: int64 labels only
    launch_loss<scalar_t, int64_t, acc_t>(logit, bias, weights, labels, a, inv_b, loss, db, dg, probas, rank);
  } else {
    switch (labels.scalar_type()) {
      case at::kInt:
        launch_loss<scalar_t, int32_t, acc_t>(logit, bias, weights, labels, a, inv_b, loss, db, dg, probas, rank);
        break;
      case at::kByte:
        launch_loss<scalar_t, uint8_t, acc_t>(logit, bias, weights, labels, a, inv_b, loss, db, dg, probas, rank);
        break;
      default:
        launch_loss<scalar_t, int64_t, acc_t>(logit, bias, weights, labels, a, inv_b, loss, db, dg, probas, rank);
    }
  }
}

template <typename scalar_t>
void launch_predict(const at::Tensor& logit, const at::Tensor& bias, at::Tensor& probas, at::Tensor& rank) {
  using acc_t = acc_for<scalar_t>;
  const int64_t batch = logit.numel();
  auto kernel = coral_predict_kernel<scalar_t, acc_t>;
  const int64_t blocks = std::min<int64_t>((batch + kThreads - 1) / kThreads, one_wave(kernel, logit.get_device(), 0));
  kernel<<<blocks, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      logit.data_ptr<scalar_t>(), bias.data_ptr<acc_t>(), batch, static_cast<int>(bias.numel()),
      probas.data_ptr<acc_t>(), rank.data_ptr<int64_t>());
}

template <typename scalar_t>
void launch_grad_scale(const at::Tensor& dg, const at::Tensor& db, const at::Tensor& scale, at::Tensor& grad_g,
                       at::Tensor& grad_b) {
  using acc_t = acc_for<scalar_t>;
  const int64_t batch = dg.numel();
  auto kernel = coral_grad_scale_kernel<scalar_t, acc_t>;
  const int64_t blocks =
      std::max<int64_t>(1, std::min<int64_t>((batch + kThreads - 1) / kThreads, one_wave(kernel, dg.get_device(), 0)));
  kernel<<<blocks, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      dg.data_ptr<acc_t>(), db.data_ptr<acc_t>(), scale.data_ptr<acc_t>(), batch, static_cast<int>(db.numel()),
      grad_g.data_ptr<scalar_t>(), grad_b.data_ptr<acc_t>());
}

}  // namespace

LossOut coral_loss_fwd_cuda(const at::Tensor& logit_in, const at::Tensor& bias_in, const at::Tensor& labels_in,
                            const std::optional<at::Tensor>& weights_in, bool compute_grad, bool return_predictions) {
  TORCH_CHECK(logit_in.is_floating_point() && bias_in.is_floating_point(), "coral: logit and bias must be floating");
  TORCH_CHECK(!labels_in.is_floating_point() && labels_in.scalar_type() != at::kBool,
              "coral: labels must be an integer tensor, got ", labels_in.scalar_type());
  TORCH_CHECK(bias_in.numel() >= 1, "coral: CORAL needs at least 2 levels (bias of size K-1 >= 1)");
  const c10::cuda::CUDAGuard guard(logit_in.device());
  const auto acc = acc_of(logit_in);
  const at::Tensor logit = logit_in.contiguous();
  const at::Tensor bias = bias_in.to(acc).contiguous();
  // Labels in their own dtype when int64, int32 or uint8 (no copy); double logits (gradcheck)
  // and other integer types use int64.
  const auto lt = labels_in.scalar_type();
  const bool native = acc == at::kFloat && (lt == at::kLong || lt == at::kInt || lt == at::kByte);
  const at::Tensor labels = native ? labels_in.contiguous() : labels_in.to(at::kLong).contiguous();
  const int64_t batch = logit.numel(), km1 = bias.numel();
  TORCH_CHECK(labels.numel() == batch, "coral: labels must have one entry per logit");
  TORCH_CHECK(km1 < (1 << 24), "coral: too many levels");
  at::Tensor weights;
  if (weights_in.has_value()) {
    weights = weights_in->to(acc).contiguous();
    TORCH_CHECK(weights.numel() == km1, "coral: task weights must have K-1 entries");
  }
  const auto fopts = logit.options().dtype(acc);
  at::Tensor loss = at::empty({}, fopts);
  at::Tensor dg = at::empty({compute_grad ? batch : 0}, fopts);
  at::Tensor db = at::empty({compute_grad ? km1 : 0}, fopts);
  at::Tensor probas = at::empty({return_predictions ? batch : 0, km1}, fopts);
  at::Tensor rank = at::empty({return_predictions ? batch : 0}, logit.options().dtype(at::kLong));
  LossArgs a{batch, static_cast<int>(km1), compute_grad, return_predictions, false, weights.defined()};
  a.vec = aligned16(logit.data_ptr()) && aligned16(labels.data_ptr()) && (!compute_grad || aligned16(dg.data_ptr()));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logit.scalar_type(), "coral_loss_cuda", [&] {
    dispatch_loss<scalar_t>(logit, bias, weights, labels, a, loss, db, dg, probas, rank);
  });
  return {loss, dg, db, probas, rank};
}

std::tuple<at::Tensor, at::Tensor> coral_predict_cuda(const at::Tensor& logit_in, const at::Tensor& bias_in) {
  TORCH_CHECK(logit_in.is_floating_point() && bias_in.is_floating_point(), "coral: logit and bias must be floating");
  TORCH_CHECK(bias_in.numel() >= 1, "coral: CORAL needs at least 2 levels (bias of size K-1 >= 1)");
  const c10::cuda::CUDAGuard guard(logit_in.device());
  const auto acc = acc_of(logit_in);
  const at::Tensor logit = logit_in.contiguous();
  const at::Tensor bias = bias_in.to(acc).contiguous();
  const int64_t batch = logit.numel(), km1 = bias.numel();
  at::Tensor probas = at::empty({batch, km1}, logit.options().dtype(acc));
  at::Tensor rank = at::empty({batch}, logit.options().dtype(at::kLong));
  if (batch == 0) return {probas, rank};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logit.scalar_type(), "coral_predict_cuda", [&] {
    launch_predict<scalar_t>(logit, bias, probas, rank);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {probas, rank};
}

std::tuple<at::Tensor, at::Tensor> coral_grad_scale_cuda(const at::Tensor& dg, const at::Tensor& db,
                                                         const at::Tensor& grad, at::ScalarType logit_dtype,
                                                         at::ScalarType bias_dtype) {
  const c10::cuda::CUDAGuard guard(dg.device());
  const auto acc = dg.scalar_type();
  const at::Tensor scale = grad.to(acc).reshape({});
  at::Tensor grad_g = at::empty({dg.numel()}, dg.options().dtype(logit_dtype));
  at::Tensor grad_b = at::empty({db.numel()}, db.options());
  const int64_t batch = dg.numel();
  TORCH_CHECK((acc == at::kDouble) == (logit_dtype == at::kDouble), "coral: gradient dtype mismatch");
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logit_dtype, "coral_grad_scale_cuda", [&] {
    launch_grad_scale<scalar_t>(dg, db, scale, grad_g, grad_b);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {grad_g, bias_dtype == acc ? grad_b : grad_b.to(bias_dtype)};
}

}  // namespace bookcover
