// The fused CORAL op on CUDA: same contract as the CPU op in coral.cpp.
//
// One thread per row walks the K-1 tasks: loss, closed-form gradient and (optionally) probas and
// rank in one pass, fp32 math (fp64 for double inputs). Per-block partial sums of the loss and
// of db are reduced deterministically: a warp shuffle tree, then the warps in a fixed order, one
// row of a (blocks, K-1) buffer per block, summed afterwards by at::sum (no float atomics, so
// the result does not change from run to run; the buffer is 4 bytes x (K-1) per 256 rows).
// Out-of-range labels make the loss NaN (the CPU op raises instead, which would need a host
// sync here); the Python dispatcher validates labels before the launch in eager mode.
// c10 headers only: ATen/cuda/CUDAContext.h pulls in cuBLAS/cuSPARSE headers, which a minimal
// CUDA toolkit may lack.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/types.h>

#include "coral.h"

namespace bookcover {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

template <typename acc_t>
__device__ __forceinline__ acc_t warp_sum(acc_t v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  return v;
}

// Block-wide sum in a fixed order; thread 0 gets the result. `scratch` holds kWarps values.
template <typename acc_t>
__device__ __forceinline__ acc_t block_sum(acc_t v, acc_t* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read from the previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  acc_t total = 0;
  if (threadIdx.x == 0) {
    for (int w = 0; w < kWarps; ++w) total += scratch[w];
  }
  return total;
}

__device__ __forceinline__ float exp_(float x) { return __expf(x); }
__device__ __forceinline__ double exp_(double x) { return exp(x); }
__device__ __forceinline__ float log1p_(float x) { return log1pf(x); }
__device__ __forceinline__ double log1p_(double x) { return log1p(x); }

template <typename scalar_t, typename acc_t>
__global__ void coral_loss_kernel(const scalar_t* __restrict__ g, const acc_t* __restrict__ b,
                                  const acc_t* __restrict__ w, const int64_t* __restrict__ lab, int64_t batch,
                                  int64_t km1, acc_t inv_b, bool compute_grad, bool return_pred,
                                  acc_t* __restrict__ loss_part, acc_t* __restrict__ dg,
                                  acc_t* __restrict__ db_part, acc_t* __restrict__ probas,
                                  int64_t* __restrict__ rank) {
  __shared__ acc_t scratch[kWarps];
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const bool valid = i < batch;
  const acc_t gi = valid ? static_cast<acc_t>(g[i]) : acc_t(0);
  const int64_t li = valid ? lab[i] : 0;
  const bool bad = valid && (li < 0 || li > km1);
  acc_t loss = 0, dgi = 0;
  int64_t r = 0;
  for (int64_t k = 0; k < km1; ++k) {
    const acc_t z = gi + b[k];
    const acc_t wk = w == nullptr ? acc_t(1) : w[k];
    const acc_t y = li > k ? acc_t(1) : acc_t(0);
    const acc_t e = exp_(-fabs(z));
    const acc_t sz = li > k ? -z : z;
    const acc_t p = z >= acc_t(0) ? acc_t(1) / (acc_t(1) + e) : e / (acc_t(1) + e);
    acc_t d = 0;
    if (valid) {
      loss += wk * ((sz > acc_t(0) ? sz : acc_t(0)) + log1p_(e));
      d = wk * (p - y);
      dgi += d;
      if (return_pred) {
        probas[i * km1 + k] = p;
        r += p > acc_t(0.5) ? 1 : 0;
      }
    }
    if (compute_grad) {
      const acc_t col = block_sum(d, scratch);
      if (threadIdx.x == 0) db_part[blockIdx.x * km1 + k] = col * inv_b;
    }
  }
  if (bad) loss = NAN;
  const acc_t total = block_sum(loss, scratch);
  if (threadIdx.x == 0) loss_part[blockIdx.x] = total * inv_b;
  if (valid && compute_grad) dg[i] = dgi * inv_b;
  if (valid && return_pred) rank[i] = r;
}

template <typename scalar_t, typename acc_t>
__global__ void coral_predict_kernel(const scalar_t* __restrict__ g, const acc_t* __restrict__ b, int64_t batch,
                                     int64_t km1, acc_t* __restrict__ probas, int64_t* __restrict__ rank) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= batch) return;
  const acc_t gi = static_cast<acc_t>(g[i]);
  int64_t r = 0;
  for (int64_t k = 0; k < km1; ++k) {
    const acc_t z = gi + b[k];
    const acc_t e = exp_(-fabs(z));
    const acc_t p = z >= acc_t(0) ? acc_t(1) / (acc_t(1) + e) : e / (acc_t(1) + e);
    probas[i * km1 + k] = p;
    r += p > acc_t(0.5) ? 1 : 0;
  }
  rank[i] = r;
}

at::ScalarType acc_of(const at::Tensor& t) { return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

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
  const at::Tensor labels = labels_in.to(at::kLong).contiguous();
  const int64_t batch = logit.numel(), km1 = bias.numel();
  TORCH_CHECK(labels.numel() == batch, "coral: labels must have one entry per logit");
  at::Tensor weights;
  if (weights_in.has_value()) {
    weights = weights_in->to(acc).contiguous();
    TORCH_CHECK(weights.numel() == km1, "coral: task weights must have K-1 entries");
  }
  const auto fopts = logit.options().dtype(acc);
  const int64_t blocks = std::max<int64_t>((batch + kThreads - 1) / kThreads, 1);
  at::Tensor loss_part = at::empty({blocks}, fopts);
  at::Tensor db_part = at::empty({blocks, compute_grad ? km1 : 0}, fopts);
  at::Tensor dg = at::empty({compute_grad ? batch : 0}, fopts);
  at::Tensor probas = at::empty({return_predictions ? batch : 0, km1}, fopts);
  at::Tensor rank = at::empty({return_predictions ? batch : 0}, logit.options().dtype(at::kLong));
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logit.scalar_type(), "coral_loss_cuda", [&] {
    if (acc == at::kDouble) {
      coral_loss_kernel<scalar_t, double><<<blocks, kThreads, 0, stream>>>(
          logit.data_ptr<scalar_t>(), bias.data_ptr<double>(), weights.defined() ? weights.data_ptr<double>() : nullptr,
          labels.data_ptr<int64_t>(), batch, km1, batch ? 1.0 / batch : NAN, compute_grad, return_predictions,
          loss_part.data_ptr<double>(), compute_grad ? dg.data_ptr<double>() : nullptr,
          compute_grad ? db_part.data_ptr<double>() : nullptr, return_predictions ? probas.data_ptr<double>() : nullptr,
          return_predictions ? rank.data_ptr<int64_t>() : nullptr);
    } else {
      coral_loss_kernel<scalar_t, float><<<blocks, kThreads, 0, stream>>>(
          logit.data_ptr<scalar_t>(), bias.data_ptr<float>(), weights.defined() ? weights.data_ptr<float>() : nullptr,
          labels.data_ptr<int64_t>(), batch, km1, batch ? 1.0f / batch : NAN, compute_grad, return_predictions,
          loss_part.data_ptr<float>(), compute_grad ? dg.data_ptr<float>() : nullptr,
          compute_grad ? db_part.data_ptr<float>() : nullptr, return_predictions ? probas.data_ptr<float>() : nullptr,
          return_predictions ? rank.data_ptr<int64_t>() : nullptr);
    }
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  at::Tensor loss = loss_part.sum();
  at::Tensor db = compute_grad ? db_part.sum(0) : at::empty({0}, fopts);
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
  const int64_t blocks = (batch + kThreads - 1) / kThreads;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logit.scalar_type(), "coral_predict_cuda", [&] {
    if (acc == at::kDouble) {
      coral_predict_kernel<scalar_t, double><<<blocks, kThreads, 0, stream>>>(
          logit.data_ptr<scalar_t>(), bias.data_ptr<double>(), batch, km1, probas.data_ptr<double>(),
          rank.data_ptr<int64_t>());
    } else {
      coral_predict_kernel<scalar_t, float><<<blocks, kThreads, 0, stream>>>(
          logit.data_ptr<scalar_t>(), bias.data_ptr<float>(), batch, km1, probas.data_ptr<float>(),
          rank.data_ptr<int64_t>());
    }
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {probas, rank};
}

}  // namespace bookcover
