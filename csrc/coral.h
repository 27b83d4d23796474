// Shared declarations of the fused CORAL op (CPU in coral.cpp, CUDA in coral_cuda.cu).
#pragma once
#include <torch/autograd.h>
#include <torch/types.h>

#include <tuple>

namespace bookcover {

// Rows per deterministic reduction chunk on CPU. The chunking is fixed (it does not depend on
// the thread count), so loss and db are bitwise reproducible.
constexpr int64_t kCpuChunk = 512;

// (loss, dg, db, probas, rank). dg/db are the gradients of the loss w.r.t. logit and bias,
// already scaled by 1/B (empty unless compute_grad); probas/rank are empty unless return_predictions.
using LossOut = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

#ifdef BOOKCOVER_WITH_CUDA
LossOut coral_loss_fwd_cuda(const at::Tensor& logit, const at::Tensor& bias, const at::Tensor& labels,
                            const std::optional<at::Tensor>& weights, bool compute_grad, bool return_predictions);
std::tuple<at::Tensor, at::Tensor> coral_predict_cuda(const at::Tensor& logit, const at::Tensor& bias);
// (dg * grad as logit_dtype, db * grad as bias_dtype) in one launch: the op's CUDA backward.
std::tuple<at::Tensor, at::Tensor> coral_grad_scale_cuda(const at::Tensor& dg, const at::Tensor& db,
                                                         const at::Tensor& grad, at::ScalarType logit_dtype,
                                                         at::ScalarType bias_dtype);
#endif

// The op's autograd (coral.cpp): the context keeps dg/db and the input sizes and dtypes;
// backward scales dg/db by grad_output (one fused CUDA launch on a GPU).
void save_loss_context(torch::autograd::AutogradContext* ctx, const at::Tensor& logit, const at::Tensor& bias,
                       bool compute_grad, const LossOut& out);
torch::autograd::variable_list coral_loss_backward(torch::autograd::AutogradContext* ctx,
                                                   const torch::autograd::variable_list& grads);

// The autograd node of the fused loss op named OpName (logit, bias, labels, weights,
// compute_grad, extra) -> LossOut. Its forward calls that op below the autograd key.
template <const char* OpName, typename Extra>
class FusedLossFunction : public torch::autograd::Function<FusedLossFunction<OpName, Extra>> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& logit,
                                                const at::Tensor& bias, const at::Tensor& labels,
                                                const std::optional<at::Tensor>& weights, bool compute_grad,
                                                Extra extra) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow(OpName, "")
                         .template typed<LossOut(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                 const std::optional<at::Tensor>&, bool, Extra)>();
    at::AutoDispatchBelowADInplaceOrView guard;
    LossOut out = op.call(logit, bias, labels, weights, compute_grad, extra);
    save_loss_context(ctx, logit, bias, compute_grad, out);
    const auto& [loss, dg, db, probas, rank] = out;
    return {loss, dg, db, probas, rank};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    return coral_loss_backward(ctx, grads);
  }

  // The Autograd-key kernel of the op.
  static LossOut autograd_kernel(const at::Tensor& logit, const at::Tensor& bias, const at::Tensor& labels,
                                 const std::optional<at::Tensor>& weights, bool compute_grad, Extra extra) {
    auto out = FusedLossFunction::apply(logit, bias, labels, weights, compute_grad, extra);
    return {out[0], out[1], out[2], out[3], out[4]};
  }
};

}  // namespace bookcover
