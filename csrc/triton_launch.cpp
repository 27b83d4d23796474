// The Triton CORAL loss kernel, launched from C++ (CUDA builds only).
//
// Why: at B=256 the fused loss is host-bound. Through Triton's Python launcher and a Python
// autograd.Function, forward+backward cost ~350 us on the H200 host against ~200 us for the
// C++ op (bench/RESULTS.md), for a kernel of a few microseconds. This file lets the eager
// Triton path pay what the C++ op pays: the kernel that Triton compiled and loaded (its
// CUfunction handle) is registered here once per input signature, and each later call is one
// dispatcher call, one cuLaunchKernel, and the C++ op's own autograd node and fused backward.
//
// The Python side (bookcover/coral/triton_cpp_launch.py) derives the kernel's parameter list
// from the compiled kernel's signature and PTX (Triton drops integer arguments equal to 1 and
// appends scratch pointers, differently across versions), registers it with
// `triton_register_loss`, and checks the first C++ launch bitwise against Triton's own launch
// before using it. Only single-program launches (grid 1) are registered: bigger batches are
// not host-bound. Every pointer handed to the kernel is 16-byte aligned (Triton compiles for
// aligned pointers); a misaligned input view is copied first.
#ifdef BOOKCOVER_WITH_CUDA
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda.h>
#include <dlfcn.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <array>
#include <atomic>
#include <mutex>
#include <vector>

#include "coral.h"

namespace bookcover {
namespace {

// Parameter codes, in the kernel's argument order (see coral_loss_fwd_kernel): the ten
// pointers, then B, KM1, inv_b, then a null scratch pointer per trailing .u64 parameter.
enum Param : int64_t { kG, kB, kW, kLab, kLoss, kDg, kDb, kPart, kProbas, kRank, kBatch, kKm1, kInvB, kNullPtr };
constexpr int64_t kNumCodes = kNullPtr + 1;
constexpr size_t kMaxParams = 24;
constexpr size_t kMaxKernels = 1024;

using LaunchKernelFn = CUresult (*)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                    CUstream, void**, void**);
using ErrorStringFn = CUresult (*)(CUresult, const char**);

struct Driver {
  LaunchKernelFn launch = nullptr;
  ErrorStringFn error_string = nullptr;
};

// The driver API from libcuda.so.1 (already loaded by torch and Triton), found once; no link
// against the driver library, as Triton's own launcher does.
const Driver& driver() {
  static const Driver d = [] {
    Driver out;
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (lib == nullptr) lib = dlopen("libcuda.so.1", RTLD_NOW);
    TORCH_CHECK(lib != nullptr, "coral: cannot open libcuda.so.1 to launch the Triton kernel");
    out.launch = reinterpret_cast<LaunchKernelFn>(dlsym(lib, "cuLaunchKernel"));
    out.error_string = reinterpret_cast<ErrorStringFn>(dlsym(lib, "cuGetErrorString"));
    TORCH_CHECK(out.launch != nullptr && out.error_string != nullptr, "coral: libcuda.so.1 lacks cuLaunchKernel");
    return out;
  }();
  return d;
}

struct TritonLossKernel {
  CUfunction function = nullptr;
  unsigned threads = 0, shared = 0;
  std::vector<int64_t> params;
  at::ScalarType logit, bias, labels, weights;  // weights: Undefined when the kernel takes none
  int64_t batch = 0, km1 = 0;
  bool compute_grad = false;
  int device = 0;
};

// Slots are written once, before `count` publishes them; readers index below `count` only.
std::array<TritonLossKernel, kMaxKernels> g_kernels;
std::atomic<size_t> g_count{0};
std::mutex g_register_mutex;

int64_t triton_register_loss(int64_t function, int64_t num_warps, int64_t shared, c10::IntArrayRef params,
                             at::ScalarType logit, at::ScalarType bias, std::optional<at::ScalarType> weights,
                             at::ScalarType labels, int64_t batch, int64_t km1, bool compute_grad, int64_t device) {
  TORCH_CHECK(function != 0 && num_warps > 0 && num_warps <= 32 && shared >= 0, "coral: invalid Triton kernel");
  TORCH_CHECK(params.size() <= kMaxParams, "coral: too many kernel parameters");
  for (int64_t code : params) TORCH_CHECK(code >= 0 && code < kNumCodes, "coral: unknown parameter code ", code);
  TORCH_CHECK(batch > 0 && batch <= INT32_MAX && km1 > 0 && km1 <= INT32_MAX, "coral: batch/levels out of range");
  std::lock_guard<std::mutex> lock(g_register_mutex);
  const size_t slot = g_count.load(std::memory_order_relaxed);
  if (slot >= kMaxKernels) return -1;  // the caller keeps Triton's launcher
  TritonLossKernel& k = g_kernels[slot];
  k.function = reinterpret_cast<CUfunction>(static_cast<uintptr_t>(function));
  k.threads = static_cast<unsigned>(32 * num_warps);
  k.shared = static_cast<unsigned>(shared);
  k.params = params.vec();
  k.logit = logit;
  k.bias = bias;
  k.weights = weights.value_or(at::ScalarType::Undefined);
  k.labels = labels;
  k.batch = batch;
  k.km1 = km1;
  k.compute_grad = compute_grad;
  k.device = static_cast<int>(device);
  g_count.store(slot + 1, std::memory_order_release);
  return static_cast<int64_t>(slot);
}

const TritonLossKernel& kernel_at(int64_t slot) {
  TORCH_CHECK(slot >= 0 && static_cast<size_t>(slot) < g_count.load(std::memory_order_acquire),
              "coral: no Triton kernel registered in slot ", slot);
  return g_kernels[static_cast<size_t>(slot)];
}

// Contiguous and 16-byte aligned (Triton specialised the kernel for aligned pointers).
at::Tensor aligned_contiguous(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  if ((reinterpret_cast<uintptr_t>(c.data_ptr()) & 15) != 0) c = c.clone(at::MemoryFormat::Contiguous);
  return c;
}

LossOut coral_loss_fwd_triton_cuda(const at::Tensor& logit_in, const at::Tensor& bias_in, const at::Tensor& labels_in,
                                   const std::optional<at::Tensor>& weights_in, bool compute_grad, int64_t slot) {
  const TritonLossKernel& k = kernel_at(slot);
  const bool has_w = weights_in.has_value();
  TORCH_CHECK(logit_in.is_cuda() && logit_in.get_device() == k.device && logit_in.scalar_type() == k.logit &&
                  bias_in.scalar_type() == k.bias && labels_in.scalar_type() == k.labels &&
                  has_w == (k.weights != at::ScalarType::Undefined) &&
                  (!has_w || weights_in->scalar_type() == k.weights) && compute_grad == k.compute_grad &&
                  logit_in.numel() == k.batch && labels_in.numel() == k.batch && bias_in.numel() == k.km1 &&
                  (!has_w || weights_in->numel() == k.km1),
              "coral: the Triton kernel in slot ", slot, " was registered for other inputs");
  const c10::cuda::CUDAGuard guard(logit_in.device());
  const at::Tensor logit = aligned_contiguous(logit_in);
  const at::Tensor bias = aligned_contiguous(bias_in);
  const at::Tensor labels = aligned_contiguous(labels_in);
  const at::Tensor weights = has_w ? aligned_contiguous(*weights_in) : bias;
  const auto fopts = logit.options().dtype(at::kFloat);
  at::Tensor loss = at::empty({}, fopts);
  at::Tensor dg = at::empty({compute_grad ? k.batch : 0}, fopts);
  at::Tensor db = at::empty({compute_grad ? k.km1 : 0}, fopts);
  at::Tensor probas = at::empty({0, k.km1}, fopts);
  at::Tensor rank = at::empty({0}, logit.options().dtype(at::kLong));

  // Outputs the kernel does not write (its constexpr flags keep it away) get a valid stand-in.
  void* loss_ptr = loss.data_ptr();
  void* ptrs[kBatch] = {logit.data_ptr(), bias.data_ptr(), weights.data_ptr(), labels.data_ptr(),
                        loss_ptr, compute_grad ? dg.data_ptr() : loss_ptr, compute_grad ? db.data_ptr() : loss_ptr,
                        loss_ptr, loss_ptr, loss_ptr};
  int32_t batch = static_cast<int32_t>(k.batch), km1 = static_cast<int32_t>(k.km1);
  // As Triton's launcher converts the Python float 1.0 / B: in double, then rounded to float.
  float inv_b = static_cast<float>(1.0 / static_cast<double>(k.batch));
  CUdeviceptr null_ptr = 0;
  std::array<void*, kMaxParams> params{};
  for (size_t i = 0; i < k.params.size(); ++i) {
    const int64_t code = k.params[i];
    params[i] = code < kBatch ? static_cast<void*>(&ptrs[code])
                : code == kBatch ? static_cast<void*>(&batch)
                : code == kKm1   ? static_cast<void*>(&km1)
                : code == kInvB  ? static_cast<void*>(&inv_b)
                                 : static_cast<void*>(&null_ptr);
  }
  const auto stream = static_cast<CUstream>(c10::cuda::getCurrentCUDAStream(k.device).stream());
  const CUresult err = driver().launch(k.function, 1, 1, 1, k.threads, 1, 1, k.shared, stream, params.data(), nullptr);
  if (err != CUDA_SUCCESS) {
    const char* text = nullptr;
    driver().error_string(err, &text);
    TORCH_CHECK(false, "coral: launching the Triton kernel failed: ", text ? text : "unknown CUDA driver error");
  }
  return {loss, dg, db, probas, rank};
}

// The op FusedLossFunction (the C++ op's autograd node) calls below the autograd key.
constexpr char kCoralLossFwdTriton[] = "bookcover::coral_loss_fwd_triton";

}  // namespace

TORCH_LIBRARY_FRAGMENT(bookcover, m) {
  // Registers a loaded Triton kernel (CUfunction handle, warps, dynamic shared bytes, parameter
  // codes) for one input signature; returns its slot, or -1 when the table is full.
  m.def(
      "triton_register_loss(int function, int num_warps, int shared, int[] params, ScalarType logit, "
      "ScalarType bias, ScalarType? weights, ScalarType labels, int batch, int km1, bool compute_grad, "
      "int device) -> int",
      &triton_register_loss);
  // Same outputs as coral_loss_fwd (probas and rank always empty), computed by the Triton kernel
  // in `slot`.
  m.def(
      "coral_loss_fwd_triton(Tensor logit, Tensor bias, Tensor labels, Tensor? weights, bool compute_grad, "
      "int slot) -> (Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(bookcover, CUDA, m) { m.impl("coral_loss_fwd_triton", &coral_loss_fwd_triton_cuda); }

TORCH_LIBRARY_IMPL(bookcover, Autograd, m) {
  m.impl("coral_loss_fwd_triton", &FusedLossFunction<kCoralLossFwdTriton, int64_t>::autograd_kernel);
}

}  // namespace bookcover
#endif  // BOOKCOVER_WITH_CUDA
