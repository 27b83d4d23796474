// The fused CORAL op on CPU, and the TORCH_LIBRARY registration of the op's schema.
//
// One pass over the batch gives the loss (sum over tasks, mean over batch, as the reference),
// the gradients dg (B) and db (K-1) when asked, and optionally probas (B, K-1) and rank (B).
// Levels y_ik = 1[label_i > k] are computed on the fly; no B x (K-1) tensor is built. Because the
// gradient of the loss is known in closed form (w_k (sigmoid(z_ik) - y_ik) / B), it is computed in
// the same pass (Liger-Kernel style) and the autograd backward (FusedLossFunction in coral.h, C++) only
// scales it by grad_output. The fake (meta) kernels are registered from Python (bookcover.coral.cpp).
//
// Labels are read in their own dtype (int64, int32 or uint8). A label outside 0..K-1 makes the
// loss NaN, as on CUDA and in the reference: no exception, so no per-call host sync anywhere
// (bookcover.coral.coral_loss(check_labels=True) raises a clear error instead).
//
// Parallelism: rows are split into fixed chunks of kCpuChunk rows (at::parallel_for over
// chunks). Each chunk writes its own partial loss and partial db row; the partials are summed
// afterwards in chunk order. The result is therefore bitwise identical for any thread count
// (no atomics, no thread-count dependent reduction tree).
//
// Vectorisation: the float kernels (coral_cpu_kernels.h) are compiled twice, for the portable
// baseline and for AVX2+FMA, and cpu::kernels() picks one at run time (coral_cpu.h); the float64
// path here is plain libm.
#include <ATen/FunctionalTensorWrapper.h>
#include <ATen/Parallel.h>
#include <Python.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "coral.h"
#include "coral_cpu.h"


namespace bookcover {
namespace {

using cpu::store_column;

// The float64 path (gradcheck, double inputs): plain libm, same structure.
void chunk_f64(const double* g, const double* labf, int64_t n, const double* b, const double* w, int64_t km1,
               double* dg, double* db_part, double* loss_part, double* tmp, double* probas, int64_t* rank) {
  double loss = 0.0;
  for (int64_t i = 0; i < n; ++i) dg[i] = 0.0;
  for (int64_t k = 0; k < km1; ++k) {
    double lsum = 0.0, dsum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const double z = g[i] + b[k];
      const double y = labf[i] > static_cast<double>(k) ? 1.0 : 0.0;
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
    if (probas != nullptr) store_column(tmp, n, km1, k, probas, rank);
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

inline void chunk(const float* g, const float* lab, int64_t n, const float* b, const float* w, int64_t km1,
                  float* dg, float* db, float* loss, float* tmp, float* prod, float* probas, int64_t* rank,
                  bool weighted, bool need_p) {
  cpu::kernels().chunk(g, lab, n, b, w, km1, dg, db, loss, tmp, prod, probas, rank, weighted, need_p);
}
inline void chunk(const double* g, const double* lab, int64_t n, const double* b, const double* w, int64_t km1,
                  double* dg, double* db, double* loss, double* tmp, double* /*prod*/, double* probas, int64_t* rank,
                  bool /*weighted*/, bool /*need_p*/) {
  chunk_f64(g, lab, n, b, w, km1, dg, db, loss, tmp, probas, rank);
}
inline void predict_chunk(const float* g, int64_t n, const float* b, int64_t km1, float* tmp, float* probas,
                          int64_t* rank) {
  cpu::kernels().predict(g, n, b, km1, tmp, probas, rank);
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

// Labels of the three dtypes read natively: f(const label_t*) for int64, int32 or uint8.
template <typename F>
void dispatch_labels(const at::Tensor& labels, F&& f) {
  switch (labels.scalar_type()) {
    case at::kInt:
      f(labels.data_ptr<int32_t>());
      break;
    case at::kByte:
      f(labels.data_ptr<uint8_t>());
      break;
    default:
      f(labels.data_ptr<int64_t>());
  }
}

// n labels as acc_t (exact: valid labels are small integers); true if any lies outside
// 0..num_levels-1.
template <typename acc_t, typename label_t>
bool load_labels(const label_t* lab, int64_t n, int64_t num_levels, acc_t* out) {
  bool bad = false;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = static_cast<int64_t>(lab[i]);
    bad |= (v < 0) | (v >= num_levels);
    out[i] = static_cast<acc_t>(v);
  }
  return bad;
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
  const at::Tensor logit = logit_in.is_contiguous() ? logit_in : logit_in.contiguous();
  const at::Tensor bias = bias_in.scalar_type() == acc && bias_in.is_contiguous() ? bias_in : bias_in.to(acc).contiguous();
  // Labels are read in their own dtype (int64, int32 or uint8; other integer types are widened).
  const auto lt = labels_in.scalar_type();
  const bool native = lt == at::kLong || lt == at::kInt || lt == at::kByte;
  const at::Tensor labels = native && labels_in.is_contiguous() ? labels_in
                            : native                            ? labels_in.contiguous()
                                                                : labels_in.to(at::kLong).contiguous();
  const int64_t batch = logit.numel(), km1 = bias.numel();
  TORCH_CHECK(labels.numel() == batch, "coral: labels must have one entry per logit; got ", labels.numel(),
              " labels for ", batch, " logits");
  at::Tensor weights;
  std::vector<acc_t> unit_weights;
  if (weights_in.has_value()) {
    weights = weights_in->reshape(-1).to(acc).contiguous();
    TORCH_CHECK(weights.numel() == km1, "coral: task weights must have K-1 = ", km1, " entries, got ",
                weights.numel());
  } else {
    unit_weights.assign(km1, acc_t(1));
  }

  const auto fopts = logit.options().dtype(acc);
  const int64_t nchunks = (batch + kCpuChunk - 1) / kCpuChunk;
  std::vector<acc_t> loss_part(std::max<int64_t>(nchunks, 1)), db_part(std::max<int64_t>(nchunks, 1) * km1);
  at::Tensor dg = at::empty({compute_grad ? batch : 0}, fopts);
  at::Tensor probas = at::empty({return_predictions ? batch : 0, km1}, fopts);
  at::Tensor rank = at::zeros({return_predictions ? batch : 0}, logit.options().dtype(at::kLong));

  const acc_t* b = bias.data_ptr<acc_t>();
  const acc_t* w = weights.defined() ? weights.data_ptr<acc_t>() : unit_weights.data();
  acc_t* lp = loss_part.data();
  acc_t* dbp = db_part.data();
  acc_t* dgp = compute_grad ? dg.data_ptr<acc_t>() : nullptr;
  acc_t* pp = return_predictions ? probas.data_ptr<acc_t>() : nullptr;
  int64_t* rp = return_predictions ? rank.data_ptr<int64_t>() : nullptr;
  const acc_t inv_b = batch > 0 ? acc_t(1) / static_cast<acc_t>(batch) : std::numeric_limits<acc_t>::quiet_NaN();
  const int64_t num_levels = km1 + 1;
  const bool weighted = weights.defined(), need_p = compute_grad || return_predictions;

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logit.scalar_type(), "coral_loss_cpu", [&] {
    const scalar_t* gsrc = logit.data_ptr<scalar_t>();
    dispatch_labels(labels, [&](const auto* lab) {
      at::parallel_for(0, nchunks, 1, [&](int64_t c0, int64_t c1) {
        std::vector<acc_t> gbuf(kCpuChunk), labf(kCpuChunk), dgbuf(kCpuChunk), tmp(kCpuChunk), prod(kCpuChunk);
        for (int64_t c = c0; c < c1; ++c) {
          const int64_t i0 = c * kCpuChunk, n = std::min(kCpuChunk, batch - i0);
          const bool bad = load_labels(lab + i0, n, num_levels, labf.data());
          load_rows<acc_t>(gsrc, i0, n, gbuf.data());
          chunk(gbuf.data(), labf.data(), n, b, w, km1, dgbuf.data(), dbp + c * km1, lp + c, tmp.data(),
                prod.data(), pp ? pp + i0 * km1 : nullptr, rp ? rp + i0 : nullptr, weighted, need_p);
          // An invalid label makes the loss NaN (no exception: that would need the host to
          // look at every label on the GPU too; bookcover.coral.coral_loss(check_labels=True)
          // raises a clear error instead).
          if (bad) lp[c] = std::numeric_limits<acc_t>::quiet_NaN();
          if (dgp != nullptr) {
            for (int64_t i = 0; i < n; ++i) dgp[i0 + i] = dgbuf[i] * inv_b;
          }
        }
      });
    });
  });
  // Deterministic reduction of the per-chunk partials, in chunk order.
  acc_t loss = 0;
  std::vector<acc_t> db(km1, acc_t(0));
  for (int64_t c = 0; c < nchunks; ++c) {
    loss += lp[c];
    for (int64_t k = 0; k < km1; ++k) db[k] += dbp[c * km1 + k];
  }
  at::Tensor loss_t = at::empty({}, fopts);
  *loss_t.data_ptr<acc_t>() = loss * inv_b;
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

// Autograd, in C++ so that a training step pays no Python overhead for the op (at B=256 the
// Python autograd.Function machinery costs several times the kernel). The forward already
// computed the gradients (scaled by 1/B); backward scales them by grad_output.
void save_loss_context(torch::autograd::AutogradContext* ctx, const at::Tensor& logit, const at::Tensor& bias,
                       bool compute_grad, const LossOut& out) {
  const auto& [loss, dg, db, probas, rank] = out;
  ctx->save_for_backward({dg, db});
  ctx->saved_data["compute_grad"] = compute_grad;
  ctx->saved_data["logit_sizes"] = logit.sizes().vec();
  ctx->saved_data["bias_sizes"] = bias.sizes().vec();
  ctx->saved_data["logit_dtype"] = logit.scalar_type();
  ctx->saved_data["bias_dtype"] = bias.scalar_type();
  ctx->mark_non_differentiable({dg, db, probas, rank});
}

torch::autograd::variable_list coral_loss_backward(torch::autograd::AutogradContext* ctx,
                                                   const torch::autograd::variable_list& grads) {
  TORCH_CHECK(ctx->saved_data["compute_grad"].toBool(),
              "coral_loss_fwd was called with compute_grad=False but a gradient was requested");
  const auto saved = ctx->get_saved_variables();
  const at::Tensor& grad = grads[0];
  const auto logit_dtype = ctx->saved_data["logit_dtype"].toScalarType();
  const auto bias_dtype = ctx->saved_data["bias_dtype"].toScalarType();
  at::Tensor grad_logit, grad_bias;
  // Fast paths for plain eager tensors: on CUDA one fused kernel; on CPU one allocation and
  // one loop each, no further dispatcher calls. Not under tracing (fake/functional tensors have no data to read) and
  // not when a differentiable backward is wanted (create_graph).
  const bool plain = !grad.unsafeGetTensorImpl()->is_python_dispatch() &&
                     !at::functionalization::impl::isFunctionalTensor(grad) && !at::GradMode::is_enabled() &&
                     grad.layout() == at::kStrided;
#ifdef BOOKCOVER_WITH_CUDA
  if (plain && grad.is_cuda() && saved[0].is_cuda()) {  // one launch for both, no host sync
    std::tie(grad_logit, grad_bias) = coral_grad_scale_cuda(saved[0], saved[1], grad, logit_dtype, bias_dtype);
    return {grad_logit.reshape(ctx->saved_data["logit_sizes"].toIntVector()),
            grad_bias.reshape(ctx->saved_data["bias_sizes"].toIntVector()),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
#endif
  if (plain && grad.device().is_cpu() && saved[0].scalar_type() == logit_dtype &&
      saved[1].scalar_type() == bias_dtype) {
    grad_logit = at::empty(ctx->saved_data["logit_sizes"].toIntVector(), saved[0].options());
    grad_bias = at::empty(ctx->saved_data["bias_sizes"].toIntVector(), saved[1].options());
    AT_DISPATCH_FLOATING_TYPES(saved[0].scalar_type(), "coral_loss_backward_cpu", [&] {
      const scalar_t scale = grad.item<scalar_t>();
      const scalar_t* src = saved[0].data_ptr<scalar_t>();
      scalar_t* dst = grad_logit.data_ptr<scalar_t>();
      for (int64_t i = 0; i < grad_logit.numel(); ++i) dst[i] = src[i] * scale;
      const scalar_t* bsrc = saved[1].data_ptr<scalar_t>();
      scalar_t* bdst = grad_bias.data_ptr<scalar_t>();
      for (int64_t k = 0; k < grad_bias.numel(); ++k) bdst[k] = bsrc[k] * scale;
    });
  } else {
    grad_logit = (saved[0] * grad).to(logit_dtype).reshape(ctx->saved_data["logit_sizes"].toIntVector());
    grad_bias = (saved[1] * grad).to(bias_dtype).reshape(ctx->saved_data["bias_sizes"].toIntVector());
  }
  return {grad_logit, grad_bias, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
}

namespace {

// The op FusedLossFunction calls below the autograd key (its name, as a template argument).
constexpr char kCoralLossFwd[] = "bookcover::coral_loss_fwd";

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

TORCH_LIBRARY_IMPL(bookcover, Autograd, m) {
  m.impl("coral_loss_fwd", &FusedLossFunction<kCoralLossFwd, bool>::autograd_kernel);
}

#ifdef BOOKCOVER_WITH_CUDA
TORCH_LIBRARY_IMPL(bookcover, CUDA, m) {
  m.impl("coral_loss_fwd", &coral_loss_fwd_cuda);
  m.impl("coral_predict", &coral_predict_cuda);
}
#endif

}  // namespace bookcover

// `import bookcover._C` loads this library (and so runs the registrations above); the module
// holds one function, cpu_capability(): which copy of the CPU kernels runs here ("avx2" or "default").
namespace {
PyObject* cpu_capability(PyObject*, PyObject*) { return PyUnicode_FromString(bookcover::cpu::kernels().name); }
PyMethodDef module_methods[] = {{"cpu_capability", cpu_capability, METH_NOARGS, "The CPU kernels in use."},
                                {nullptr, nullptr, 0, nullptr}};
}  // namespace

extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, module_methods};
  return PyModule_Create(&module_def);
}
}
