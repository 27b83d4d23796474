// The fused CORAL op on CPU, and the TORCH_LIBRARY registration of the op's schema.
//
// One pass over the batch gives the loss (sum over tasks, mean over batch, as the reference),
// the gradients dg (B) and db (K-1) when asked, and optionally probas (B, K-1) and rank (B).
// Levels y_ik = 1[label_i > k] are computed on the fly; no B x (K-1) tensor is built. Because the
// gradient of the loss is known in closed form (w_k (sigmoid(z_ik) - y_ik) / B), it is computed in
// the same pass (Liger-Kernel style) and the autograd backward only scales it by grad_output.
//
// Parallelism: rows are split into fixed chunks of kCpuChunk rows (at::parallel_for over
// chunks). Each chunk writes its own partial loss and partial db row; the partials are summed
// afterwards in chunk order. The result is therefore bitwise identical for any thread count
// (no atomics, no thread-count dependent reduction tree).
//
// Vectorisation: inside a chunk, the loop runs over rows for a fixed task k, with branch-free
// float math (a Cephes-style exp and log that the compiler auto-vectorises). The hot function is
// compiled twice (x86-64-v3 with AVX2/FMA, and the baseline) and picked at load time.
#include <ATen/Parallel.h>
#include <Python.h>
#include <torch/library.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "coral.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define BOOKCOVER_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define BOOKCOVER_CLONES
#endif

namespace bookcover {
namespace {

// exp(x) for x <= 0, accurate to ~1 ulp on [-87, 0]; below -87 it returns ~1.7e-38, which is
// exact enough because callers only use it inside 1 + e and e / (1 + e).
inline float exp_nonpos(float x) {
  x = x < -87.0f ? -87.0f : x;
  const float fn = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - fn * 0.693359375f;
  r = r + fn * 2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(fn) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}

// log(u) for u in [1, 2] (Cephes logf kernel after range reduction).
inline float log_1_2(float u) {
  const bool hi = u > 1.41421356237f;
  const float fe = hi ? 1.0f : 0.0f;
  const float x = (hi ? u * 0.5f : u) - 1.0f;
  const float z = x * x;
  float y = 7.0376836292e-2f;
  y = y * x - 1.1514610310e-1f;
  y = y * x + 1.1676998740e-1f;
  y = y * x - 1.2420140846e-1f;
  y = y * x + 1.4249322787e-1f;
  y = y * x - 1.6668057665e-1f;
  y = y * x + 2.0000714765e-1f;
  y = y * x - 2.4999993993e-1f;
  y = y * x + 3.3333331174e-1f;
  y = y * x * z;
  y += fe * -2.12194440e-4f;
  y += -0.5f * z;
  return x + y + fe * 0.693359375f;
}

// log1p(e) for e in [0, 1] without cancellation (Goldberg's trick: log(u) * e / (u - 1)).
inline float log1p_unit(float e) {
  const float u = 1.0f + e;
  const float d = u - 1.0f;
  const float safe_d = d == 0.0f ? 1.0f : d;
  return d == 0.0f ? e : log_1_2(u) * (e / safe_d);
}

// Per-chunk work in float. g, lab: n rows. dg (n) receives sum_k w_k (p - y); db_part (km1) and
// loss_part (1) the chunk's partial sums. When pred, probas (n x km1, row-major) and rank (n).
BOOKCOVER_CLONES
void chunk_f32(const float* g, const int64_t* lab, int64_t n, const float* b, const float* w, int64_t km1,
               float* dg, float* db_part, float* loss_part, float* tmp, float* probas, int64_t* rank) {
  float loss = 0.0f;
  for (int64_t i = 0; i < n; ++i) dg[i] = 0.0f;
  for (int64_t k = 0; k < km1; ++k) {
    const float bk = b[k], wk = w[k];
    float lsum = 0.0f, dsum = 0.0f;
#pragma omp simd reduction(+ : lsum, dsum)
    for (int64_t i = 0; i < n; ++i) {
      const float z = g[i] + bk;
      const float y = lab[i] > k ? 1.0f : 0.0f;
      const float a = std::fabs(z);
      const float e = exp_nonpos(-a);
      const float sp = log1p_unit(e);  // softplus(-|z|)
      // y = 1: softplus(-z) = max(-z, 0) + sp;  y = 0: softplus(z) = max(z, 0) + sp.
      const float signed_z = y > 0.5f ? -z : z;
      lsum += wk * ((signed_z > 0.0f ? signed_z : 0.0f) + sp);
      const float r = 1.0f / (1.0f + e);
      const float p = z >= 0.0f ? r : e * r;
      const float d = wk * (p - y);
      dg[i] += d;
      dsum += d;
      tmp[i] = p;
    }
    loss += lsum;
    db_part[k] = dsum;
    if (probas != nullptr) {
      for (int64_t i = 0; i < n; ++i) {
        probas[i * km1 + k] = tmp[i];
        rank[i] += tmp[i] > 0.5f ? 1 : 0;
      }
    }
  }
  *loss_part = loss;
}

// Probabilities and rank only (inference): one exp and one division per element.
BOOKCOVER_CLONES
void predict_chunk_f32(const float* g, int64_t n, const float* b, int64_t km1, float* tmp, float* probas,
                       int64_t* rank) {
  for (int64_t i = 0; i < n; ++i) rank[i] = 0;
  for (int64_t k = 0; k < km1; ++k) {
    const float bk = b[k];
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float z = g[i] + bk;
      const float e = exp_nonpos(-std::fabs(z));
      const float r = 1.0f / (1.0f + e);
      tmp[i] = z >= 0.0f ? r : e * r;
    }
    for (int64_t i = 0; i < n; ++i) {
      probas[i * km1 + k] = tmp[i];
      rank[i] += tmp[i] > 0.5f ? 1 : 0;
    }
  }
}

// The float64 path (gradcheck, double inputs): plain libm, same structure.
void chunk_f64(const double* g, const int64_t* lab, int64_t n, const double* b, const double* w, int64_t km1,
               double* dg, double* db_part, double* loss_part, double* tmp, double* probas, int64_t* rank) {
  double loss = 0.0;
  for (int64_t i = 0; i < n; ++i) dg[i] = 0.0;
  for (int64_t k = 0; k < km1; ++k) {
    double lsum = 0.0, dsum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const double z = g[i] + b[k];
      const double y = lab[i] > k ? 1.0 : 0.0;
      const double e = std::exp(-std::fabs(z));
      const double sz = y > 0.5 ? -z : z;
      lsum += w[k] * ((sz > 0.0 ? sz : 0.0) + std::log1p(e));
      const double p = z >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
      const double d = w[k] * (p - y);
      dg[i] += d;
      dsum += d;
      tmp[i] = p;
    }
    loss += lsum;
    db_part[k] = dsum;
    if (probas != nullptr) {
      for (int64_t i = 0; i < n; ++i) {
        probas[i * km1 + k] = tmp[i];
        rank[i] += tmp[i] > 0.5 ? 1 : 0;
      }
    }
  }
  *loss_part = loss;
}

void predict_chunk_f64(const double* g, int64_t n, const double* b, int64_t km1, double* tmp, double* probas,
                       int64_t* rank) {
  for (int64_t i = 0; i < n; ++i) rank[i] = 0;
  for (int64_t k = 0; k < km1; ++k) {
    for (int64_t i = 0; i < n; ++i) {
      const double z = g[i] + b[k];
      const double e = std::exp(-std::fabs(z));
      const double p = z >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
      probas[i * km1 + k] = p;
      rank[i] += p > 0.5 ? 1 : 0;
    }
  }
}

inline void chunk(const float* g, const int64_t* lab, int64_t n, const float* b, const float* w, int64_t km1,
                  float* dg, float* db, float* loss, float* tmp, float* probas, int64_t* rank) {
  chunk_f32(g, lab, n, b, w, km1, dg, db, loss, tmp, probas, rank);
}
inline void chunk(const double* g, const int64_t* lab, int64_t n, const double* b, const double* w, int64_t km1,
                  double* dg, double* db, double* loss, double* tmp, double* probas, int64_t* rank) {
  chunk_f64(g, lab, n, b, w, km1, dg, db, loss, tmp, probas, rank);
}
inline void predict_chunk(const float* g, int64_t n, const float* b, int64_t km1, float* tmp, float* probas,
                          int64_t* rank) {
  predict_chunk_f32(g, n, b, km1, tmp, probas, rank);
}
inline void predict_chunk(const double* g, int64_t n, const double* b, int64_t km1, double* tmp, double* probas,
                          int64_t* rank) {
  predict_chunk_f64(g, n, b, km1, tmp, probas, rank);
}

at::ScalarType acc_type(const at::Tensor& logit) {
  return logit.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

void check_inputs(const at::Tensor& logit, const at::Tensor& bias) {
  TORCH_CHECK(logit.is_floating_point(), "coral: logit must be a floating tensor, got ", logit.scalar_type());
  TORCH_CHECK(bias.is_floating_point(), "coral: bias must be a floating tensor, got ", bias.scalar_type());
  TORCH_CHECK(bias.numel() >= 1, "coral: CORAL needs at least 2 levels (bias of size K-1 >= 1)");
}

// Copy rows [i0, i0+n) of logit (any float dtype) into an acc_t buffer.
template <typename acc_t, typename in_t>
void load_rows(const in_t* src, int64_t i0, int64_t n, acc_t* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<acc_t>(src[i0 + i]);
}

template <typename acc_t>
LossOut loss_cpu_impl(const at::Tensor& logit_in, const at::Tensor& bias_in, const at::Tensor& labels_in,
                      const std::optional<at::Tensor>& weights_in, bool compute_grad, bool return_predictions) {
  const auto acc = c10::CppTypeToScalarType<acc_t>::value;
  const at::Tensor logit = logit_in.reshape(-1).contiguous();
  const at::Tensor bias = bias_in.reshape(-1).to(acc).contiguous();
  const at::Tensor labels = labels_in.reshape(-1).to(at::kLong).contiguous();
  const int64_t batch = logit.numel(), km1 = bias.numel();
  TORCH_CHECK(labels.numel() == batch, "coral: labels must have one entry per logit; got ", labels.numel(),
              " labels for ", batch, " logits");
  const at::Tensor weights = weights_in.has_value() ? weights_in->reshape(-1).to(acc).contiguous()
                                                    : at::ones({km1}, bias.options());
  TORCH_CHECK(weights.numel() == km1, "coral: task weights must have K-1 = ", km1, " entries, got ", weights.numel());

  const auto fopts = logit.options().dtype(acc);
  const int64_t nchunks = (batch + kCpuChunk - 1) / kCpuChunk;
  at::Tensor loss_part = at::empty({std::max<int64_t>(nchunks, 1)}, fopts);
  at::Tensor db_part = at::empty({std::max<int64_t>(nchunks, 1), km1}, fopts);
  at::Tensor dg = at::empty({compute_grad ? batch : 0}, fopts);
  at::Tensor probas = at::empty({return_predictions ? batch : 0, km1}, fopts);
  at::Tensor rank = at::zeros({return_predictions ? batch : 0}, logit.options().dtype(at::kLong));
  std::vector<uint8_t> bad(std::max<int64_t>(nchunks, 1), 0);

  const int64_t* lab = labels.data_ptr<int64_t>();
  const acc_t* b = bias.data_ptr<acc_t>();
  const acc_t* w = weights.data_ptr<acc_t>();
  acc_t* lp = loss_part.data_ptr<acc_t>();
  acc_t* dbp = db_part.data_ptr<acc_t>();
  acc_t* dgp = compute_grad ? dg.data_ptr<acc_t>() : nullptr;
  acc_t* pp = return_predictions ? probas.data_ptr<acc_t>() : nullptr;
  int64_t* rp = return_predictions ? rank.data_ptr<int64_t>() : nullptr;
  const acc_t inv_b = batch > 0 ? acc_t(1) / static_cast<acc_t>(batch) : std::numeric_limits<acc_t>::quiet_NaN();
  const int64_t num_levels = km1 + 1;

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logit.scalar_type(), "coral_loss_cpu", [&] {
    const scalar_t* gsrc = logit.data_ptr<scalar_t>();
    at::parallel_for(0, nchunks, 1, [&](int64_t c0, int64_t c1) {
      std::vector<acc_t> gbuf(kCpuChunk), dgbuf(kCpuChunk), tmp(kCpuChunk);
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t i0 = c * kCpuChunk, n = std::min(kCpuChunk, batch - i0);
        uint8_t is_bad = 0;
        for (int64_t i = 0; i < n; ++i) is_bad |= (lab[i0 + i] < 0) | (lab[i0 + i] >= num_levels);
        bad[c] = is_bad;
        load_rows<acc_t>(gsrc, i0, n, gbuf.data());
        chunk(gbuf.data(), lab + i0, n, b, w, km1, dgbuf.data(), dbp + c * km1, lp + c, tmp.data(),
              pp ? pp + i0 * km1 : nullptr, rp ? rp + i0 : nullptr);
        if (dgp != nullptr) {
          for (int64_t i = 0; i < n; ++i) dgp[i0 + i] = dgbuf[i] * inv_b;
        }
      }
    });
  });
  for (int64_t c = 0; c < nchunks; ++c) {
    if (bad[c]) {
      TORCH_CHECK_VALUE(false, "coral: labels must lie in 0..", km1, "; got values from ", labels.min().item<int64_t>(),
                        " to ", labels.max().item<int64_t>());
    }
  }
  // Deterministic reduction of the per-chunk partials, in chunk order.
  acc_t loss = 0;
  std::vector<acc_t> db(km1, acc_t(0));
  for (int64_t c = 0; c < nchunks; ++c) {
    loss += lp[c];
    for (int64_t k = 0; k < km1; ++k) db[k] += dbp[c * km1 + k];
  }
  at::Tensor loss_t = at::full({}, loss * inv_b, fopts);
  at::Tensor db_t = at::empty({compute_grad ? km1 : 0}, fopts);
  if (compute_grad) {
    acc_t* dst = db_t.data_ptr<acc_t>();
    for (int64_t k = 0; k < km1; ++k) dst[k] = db[k] * inv_b;
  }
  return {loss_t, dg, db_t, probas, rank};
}

LossOut coral_loss_fwd_cpu(const at::Tensor& logit, const at::Tensor& bias, const at::Tensor& labels,
                           const std::optional<at::Tensor>& weights, bool compute_grad, bool return_predictions) {
  check_inputs(logit, bias);
  TORCH_CHECK(!labels.is_floating_point() && labels.scalar_type() != at::kBool,
              "coral: labels must be an integer tensor, got ", labels.scalar_type());
  if (acc_type(logit) == at::kDouble) {
    return loss_cpu_impl<double>(logit, bias, labels, weights, compute_grad, return_predictions);
  }
  return loss_cpu_impl<float>(logit, bias, labels, weights, compute_grad, return_predictions);
}

template <typename acc_t>
std::tuple<at::Tensor, at::Tensor> predict_cpu_impl(const at::Tensor& logit_in, const at::Tensor& bias_in) {
  const auto acc = c10::CppTypeToScalarType<acc_t>::value;
  const at::Tensor logit = logit_in.reshape(-1).contiguous();
  const at::Tensor bias = bias_in.reshape(-1).to(acc).contiguous();
  const int64_t batch = logit.numel(), km1 = bias.numel();
  const int64_t nchunks = (batch + kCpuChunk - 1) / kCpuChunk;
  at::Tensor probas = at::empty({batch, km1}, logit.options().dtype(acc));
  at::Tensor rank = at::empty({batch}, logit.options().dtype(at::kLong));
  const acc_t* b = bias.data_ptr<acc_t>();
  acc_t* pp = probas.data_ptr<acc_t>();
  int64_t* rp = rank.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logit.scalar_type(), "coral_predict_cpu", [&] {
    const scalar_t* gsrc = logit.data_ptr<scalar_t>();
    at::parallel_for(0, nchunks, 1, [&](int64_t c0, int64_t c1) {
      std::vector<acc_t> gbuf(kCpuChunk), tmp(kCpuChunk);
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t i0 = c * kCpuChunk, n = std::min(kCpuChunk, batch - i0);
        load_rows<acc_t>(gsrc, i0, n, gbuf.data());
        predict_chunk(gbuf.data(), n, b, km1, tmp.data(), pp + i0 * km1, rp + i0);
      }
    });
  });
  return {probas, rank};
}

std::tuple<at::Tensor, at::Tensor> coral_predict_cpu(const at::Tensor& logit, const at::Tensor& bias) {
  check_inputs(logit, bias);
  if (acc_type(logit) == at::kDouble) return predict_cpu_impl<double>(logit, bias);
  return predict_cpu_impl<float>(logit, bias);
}

}  // namespace

TORCH_LIBRARY(bookcover, m) {
  // Outputs: loss (0-d), dg (B, scaled by 1/B; empty unless compute_grad), db (K-1, idem),
  // probas (B, K-1; empty unless return_predictions), rank (B; idem).
  m.def(
      "coral_loss_fwd(Tensor logit, Tensor bias, Tensor labels, Tensor? weights, bool compute_grad, "
      "bool return_predictions) -> (Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def("coral_predict(Tensor logit, Tensor bias) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(bookcover, CPU, m) {
  m.impl("coral_loss_fwd", &coral_loss_fwd_cpu);
  m.impl("coral_predict", &coral_predict_cpu);
}

#ifdef BOOKCOVER_WITH_CUDA
TORCH_LIBRARY_IMPL(bookcover, CUDA, m) {
  m.impl("coral_loss_fwd", &coral_loss_fwd_cuda);
  m.impl("coral_predict", &coral_predict_cuda);
}
#endif

}  // namespace bookcover

// `import bookcover._C` loads this library (and so runs the registrations above); the module
// itself is empty, as in pytorch/extension-cpp.
extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}
