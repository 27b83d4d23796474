"""Every fused CORAL implementation against the reference oracle (issue 3).

One parametrised file: "compiled" and "cpp" run in the normal pytest process; the "triton"
parameters carry the `triton` marker and run in their own process under TRITON_INTERPRET=1
(`make test`), on CPU tensors. Importing bookcover.coral does not import triton, so this file
is safe to collect in either process. CUDA variants skip cleanly without a GPU.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import bookcover.coral as coral
from bookcover.coral import cpp, dispatch, reference
from bookcover.coral.dispatch import CoralImplError
from bookcover.errors import InvalidLabelsError, UsageError

HAS_CPP = cpp.available()
needs_cpp = pytest.mark.skipif(not HAS_CPP, reason="bookcover._C is not built (python setup.py build_ext --inplace)")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
TRITON = pytest.param("triton", marks=pytest.mark.triton)
CPP = pytest.param("cpp", marks=needs_cpp)
# Every shape/weight case runs for cpp and triton; torch.compile recompiles per shape (seconds
# each on CPU), so "compiled" gets the two mid-size cases only.
FAST_IMPLS = [CPP, TRITON]
ALL_IMPLS = ["compiled", CPP, TRITON]

# B=1; B not a multiple of the CPU chunk (512) nor of the Triton row block; K=2, 5 and 100.
# B=7000: under the interpreter the Triton grid is capped at 5 programs (one pretend SM), so
# some programs walk two tiles (grid-stride) and the partial sums go through the reduce kernel.
SHAPES = [(1, 2), (1, 5), (300, 5), (1100, 5), (300, 100), (1100, 2), (7000, 5)]


def _inputs(batch: int, levels: int, seed: int = 0, scale: float = 3.0):
    gen = torch.Generator().manual_seed(seed)
    logit = torch.randn(batch, generator=gen) * scale
    bias = torch.randn(levels - 1, generator=gen)
    labels = torch.randint(0, levels, (batch,), generator=gen)
    labels[0] = 0  # both ends of the label range always appear
    labels[-1] = levels - 1
    weights = torch.rand(levels - 1, generator=gen) + 0.1
    return logit, bias, labels, weights


def _loss_and_grads(impl, logit, bias, labels, weights):
    g = logit.detach().clone().requires_grad_()
    b = bias.detach().clone().requires_grad_()
    if impl == "oracle":
        loss = reference.coral_loss(g, b, labels, weights)
    else:
        loss = coral.coral_loss(g, b, labels, weights, impl=impl)
        assert coral.last_route() == impl, f"asked for {impl}, {coral.last_route()} ran"
    loss.backward()
    return loss.detach(), g.grad, b.grad


def _assert_matches(impl, logit, bias, labels, weights, atol=1e-5, rtol=1e-5):
    got = _loss_and_grads(impl, logit, bias, labels, weights)
    want = _loss_and_grads("oracle", logit.float(), bias.float(), labels, weights)
    for name, a, b in zip(("loss", "dlogit", "dbias"), got, want, strict=True):
        assert torch.isfinite(a).all(), name
        torch.testing.assert_close(a.float(), b.float(), atol=atol, rtol=rtol, msg=f"{impl} {name}")


@pytest.mark.parametrize("impl", FAST_IMPLS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("batch,levels", SHAPES)
def test_fp32_values_and_grads(impl, batch, levels, weighted):
    logit, bias, labels, weights = _inputs(batch, levels)
    _assert_matches(impl, logit, bias, labels, weights if weighted else None)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_compiled_reference_matches(weighted):
    logit, bias, labels, weights = _inputs(300, 5)
    _assert_matches("compiled", logit, bias, labels, weights if weighted else None)


@pytest.mark.parametrize("impl", FAST_IMPLS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_half_precision_inputs(impl, dtype):
    logit, bias, labels, weights = _inputs(300, 5, scale=2.0)
    logit = logit.to(dtype)
    got = _loss_and_grads(impl, logit, bias, labels, weights)
    want = _loss_and_grads("oracle", logit.float(), bias, labels, weights)
    assert got[1].dtype == dtype and got[2].dtype == torch.float32  # grads keep the input dtypes
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a.float(), b.float(), atol=2e-2, rtol=0)


@pytest.mark.parametrize("impl", ALL_IMPLS)
def test_extreme_logits_stay_finite(impl):
    # +-80 on both sides of every threshold, with labels at 0 and K-1: the loss is huge where the
    # prediction is confidently wrong, but never inf or NaN.
    logit = torch.tensor([80.0, -80.0, 80.0, -80.0, 0.0, 79.5])
    bias = torch.tensor([0.5, 0.0, -0.5, -1.0])
    labels = torch.tensor([0, 4, 4, 0, 2, 0])
    _assert_matches(impl, logit, bias, labels, None)


@pytest.mark.parametrize("impl", ["reference", *ALL_IMPLS])
@pytest.mark.parametrize("bad", [-1, 5, 2**40], ids=["negative", "K", "huge"])
def test_invalid_labels_make_the_loss_nan_without_a_sync(impl, bad):
    # Labels are validated once when the data is built; per call the range check is on the
    # device: the loss becomes NaN (the training loop's finiteness check stops there).
    logit, bias, labels, _ = _inputs(40, 5)
    labels[7] = bad
    assert torch.isnan(coral.coral_loss(logit, bias, labels, impl=impl))
    assert coral.last_route() == impl
    g = logit.clone().requires_grad_()
    loss = coral.coral_loss(g, bias, labels, impl=impl)
    assert torch.isnan(loss)
    loss.backward()  # still differentiable; the NaN is the signal


@pytest.mark.parametrize("impl", ["reference", *ALL_IMPLS])
@pytest.mark.parametrize("bad", [-1, 5], ids=["negative", "K"])
def test_check_labels_raises_a_clear_error(impl, bad):
    logit, bias, labels, _ = _inputs(40, 5)
    labels[7] = bad
    with pytest.raises(InvalidLabelsError, match=r"labels must lie in 0\.\.4"):
        coral.coral_loss(logit, bias, labels, impl=impl, check_labels=True)
    labels[7] = 2
    want = reference.coral_loss(logit, bias, labels)
    torch.testing.assert_close(coral.coral_loss(logit, bias, labels, impl=impl, check_labels=True), want)
    assert coral.last_route() == impl


@pytest.mark.parametrize("impl", ["reference", *FAST_IMPLS])
@pytest.mark.parametrize("dtype", [torch.int32, torch.uint8, torch.int16], ids=["int32", "uint8", "int16"])
def test_labels_are_read_in_their_own_dtype(impl, dtype):
    logit, bias, labels, weights = _inputs(1100, 5)
    got = _loss_and_grads(impl, logit, bias, labels.to(dtype), weights)
    want = _loss_and_grads("oracle", logit, bias, labels, weights)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("impl", FAST_IMPLS)
def test_float_labels_raise_a_clear_error(impl):
    logit, bias, labels, _ = _inputs(8, 5)
    with pytest.raises(InvalidLabelsError, match="integer"):
        coral.coral_loss(logit, bias, labels.float(), impl=impl)
    assert coral.last_route() == impl


@pytest.mark.parametrize("impl", ALL_IMPLS)
@pytest.mark.parametrize("batch,levels", [(1, 2), (300, 5), (300, 100)])
def test_predict_matches_reference(impl, batch, levels):
    if impl == "compiled" and (batch, levels) != (300, 5):
        pytest.skip("compiled: one shape is enough (compilation is slow on CPU)")
    logit, bias, _, _ = _inputs(batch, levels)
    probas, rank = coral.coral_predict(logit, bias, impl=impl)
    assert coral.last_route() == impl
    want_p, want_r = reference.coral_predict(logit, bias)
    torch.testing.assert_close(probas, want_p, atol=1e-6, rtol=1e-5)
    assert rank.dtype == torch.int64 and torch.equal(rank, want_r)


@pytest.mark.parametrize("impl", FAST_IMPLS)
def test_loss_can_return_predictions_from_the_same_pass(impl):
    logit, bias, labels, weights = _inputs(300, 5)
    loss, probas, rank = coral.coral_loss(logit, bias, labels, weights, impl=impl, return_predictions=True)
    assert coral.last_route() == impl
    want_p, want_r = reference.coral_predict(logit, bias)
    torch.testing.assert_close(loss, reference.coral_loss(logit, bias, labels, weights), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(probas, want_p, atol=1e-6, rtol=1e-5)
    assert torch.equal(rank, want_r)


@pytest.mark.parametrize("impl", FAST_IMPLS)
def test_no_gradient_work_without_requires_grad(impl):
    logit, bias, labels, _ = _inputs(64, 5)
    with torch.no_grad():
        loss = coral.coral_loss(logit.requires_grad_(), bias, labels, impl=impl)
    assert coral.last_route() == impl
    assert not loss.requires_grad
    torch.testing.assert_close(loss, reference.coral_loss(logit.detach(), bias, labels), atol=1e-5, rtol=1e-5)


# --- the C++ op ---------------------------------------------------------------------------------


@needs_cpp
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_cpp_float64_gradcheck(weighted):
    logit, bias, labels, weights = _inputs(600, 4)  # two CPU chunks
    g = logit.double().requires_grad_()
    b = bias.double().requires_grad_()
    w = weights.double() if weighted else None

    def fn(g_, b_):
        return coral.coral_loss(g_, b_, labels, w, impl="cpp")

    # fast_mode checks random vector-Jacobian products: the full Jacobian over 600 rows takes ~25 s.
    assert torch.autograd.gradcheck(fn, (g, b), eps=1e-6, atol=1e-7, fast_mode=True)
    torch.testing.assert_close(fn(g, b), reference.coral_loss(g, b, labels, w), atol=1e-12, rtol=1e-12)


@needs_cpp
@pytest.mark.parametrize("grad,preds", [(True, False), (False, True), (True, True)])
def test_cpp_opcheck(grad, preds):
    logit, bias, labels, weights = _inputs(70, 5)
    args = (logit.requires_grad_(grad), bias.requires_grad_(grad), labels, weights, grad, preds)
    torch.library.opcheck(torch.ops.bookcover.coral_loss_fwd.default, args)
    torch.library.opcheck(torch.ops.bookcover.coral_predict.default, (logit.detach(), bias.detach()))


@needs_cpp
def test_cpp_loss_is_bitwise_deterministic_across_thread_counts():
    logit, bias, labels, weights = _inputs(5000, 10)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _loss_and_grads("cpp", logit, bias, labels, weights)
        torch.set_num_threads(max(2, threads))
        many = _loss_and_grads("cpp", logit, bias, labels, weights)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, many, strict=True):
        assert torch.equal(a, b)


def _compiled_training_step(impl: str, device: str) -> None:
    """One SGD step with the loss compiled by torch.compile(fullgraph=True): the graph holds the
    fused op (a graph break would raise), AOTAutograd traces its backward, and the result and
    gradients match the eager reference."""
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1).to(device)
    bias = torch.nn.Parameter(torch.linspace(1.0, -1.0, 4, device=device))
    opt = torch.optim.SGD([*model.parameters(), bias], lr=0.1)
    x = torch.randn(64, 8, device=device)
    labels = torch.randint(0, 5, (64,), device=device)
    weights = torch.rand(4, device=device) + 0.5

    @torch.compile(fullgraph=True, backend="aot_eager")
    def loss_of(x, labels):
        return coral.coral_loss(model(x).squeeze(1), bias, labels, weights, impl=impl)

    ref_w = model.weight.detach().clone().requires_grad_()
    ref_b = bias.detach().clone().requires_grad_()
    want = reference.coral_loss((x @ ref_w.T).squeeze(1) + model.bias.detach(), ref_b, labels, weights)
    want.backward()

    opt.zero_grad(set_to_none=True)
    loss = loss_of(x, labels)
    loss.backward()
    torch.testing.assert_close(loss, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.weight.grad, ref_w.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bias.grad, ref_b.grad, atol=1e-5, rtol=1e-5)
    opt.step()


@needs_cpp
def test_cpp_training_step_traces_under_torch_compile_fullgraph():
    _compiled_training_step("cpp", "cpu")


# --- the Triton op ------------------------------------------------------------------------------


@pytest.mark.triton
def test_triton_training_step_traces_under_torch_compile_fullgraph():
    if dispatch.TRITON_INTERPRET:
        _compiled_training_step("triton", "cpu")
    elif torch.cuda.is_available():
        _compiled_training_step("triton", "cuda")
    else:
        pytest.skip("needs TRITON_INTERPRET=1 (CPU) or a GPU")


@pytest.mark.triton
def test_triton_opcheck():
    if not dispatch.TRITON_INTERPRET:
        pytest.skip("run under TRITON_INTERPRET=1")
    from bookcover.coral import triton_ops

    logit, bias, labels, weights = _inputs(40, 5)
    for grad, preds in [(True, False), (False, True)]:
        args = (logit.detach().requires_grad_(grad), bias, labels, weights, grad, preds)
        torch.library.opcheck(triton_ops.coral_loss_fwd, args)
    torch.library.opcheck(triton_ops.coral_predict, (logit.detach(), bias))
    dg, db = torch.randn(40), torch.randn(4)
    torch.library.opcheck(triton_ops.coral_grad_scale, (dg, db, torch.tensor(2.0), torch.bfloat16, torch.float32))


@pytest.mark.triton
def test_triton_eager_path_skips_the_custom_op():
    """Eager calls go through a torch.autograd.Function (the custom op's dispatch costs more
    than the kernel at B=256); torch.compile sees the custom op (the fullgraph test above)."""
    if not dispatch.TRITON_INTERPRET:
        pytest.skip("run under TRITON_INTERPRET=1")
    logit, bias, labels, _ = _inputs(64, 5)
    loss = coral.coral_loss(logit.requires_grad_(), bias, labels, impl="triton")
    assert type(loss.grad_fn).__name__ == "_CoralLossBackward"


@pytest.mark.triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_triton_backward_kernel_matches_the_eager_aten_scaling(dtype):
    """The compile door's backward (coral_grad_scale_kernel) and the eager door's (two ATen
    multiplies) scale the saved gradients alike, in the logit's and bias's own dtypes."""
    if not dispatch.TRITON_INTERPRET:
        pytest.skip("run under TRITON_INTERPRET=1")
    from bookcover.coral import triton_ops

    gen = torch.Generator().manual_seed(0)
    dg, db, grad = torch.randn(300, generator=gen), torch.randn(4, generator=gen), torch.tensor(3.0)
    kernel = triton_ops.grad_scale(dg, db, grad, dtype, torch.float32)
    aten = triton_ops.scale_with_aten(dg, db, grad, dtype, torch.float32)
    assert kernel[0].dtype == dtype and kernel[1].dtype == torch.float32
    # fp32: the same multiply, bit for bit. bf16: one rounding of the same fp32 product, which
    # the interpreter's bf16 cast may round differently by one unit in the last place (2**-8).
    tol = {"atol": 0, "rtol": 0} if dtype == torch.float32 else {"atol": 1e-6, "rtol": 2**-7}
    for a, b in zip(kernel, aten, strict=True):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.triton
@pytest.mark.parametrize("logit_dtype", [torch.bfloat16, torch.float16])
def test_triton_half_logits_with_uint8_labels_take_the_narrow_tile(logit_dtype):
    """bf16/fp16 logits with uint8 labels launch the 8-warp large tile (LOSS_NARROW: the 4-warp
    one spilled under triton 3.6's ptxas) and still match the float64 oracle within bf16's 2e-2."""
    if not dispatch.TRITON_INTERPRET:
        pytest.skip("run under TRITON_INTERPRET=1")
    from bookcover.coral import triton_configs, triton_ops

    logit, bias, labels, weights = _inputs(3000, 5)
    logit, labels = logit.to(logit_dtype), labels.to(torch.uint8)
    assert triton_configs.is_narrow(logit.element_size(), labels.element_size())
    assert triton_ops._loss_plan(3000, 4, False, 1, True)[0] == triton_configs.LOSS_NARROW
    assert triton_configs.loss_config(3000, False, narrow=False) != triton_configs.LOSS_NARROW
    _assert_matches("triton", logit, bias, labels, weights, atol=2e-2, rtol=2e-2)


@pytest.mark.triton
@pytest.mark.parametrize("batch", [0, 64, 7000])
def test_triton_single_and_multi_program_reductions(batch):
    """B=0 (one program, loss NaN like the reference's empty mean), one program writing the
    final sums itself, and several programs whose partials the reduce kernel sums."""
    if not dispatch.TRITON_INTERPRET:
        pytest.skip("run under TRITON_INTERPRET=1")
    from bookcover.coral import triton_ops

    logit, bias, labels, weights = _inputs(max(batch, 1), 5)
    logit, labels = logit[:batch], labels[:batch]
    loss, dg, db, probas, rank = triton_ops.loss_fwd(logit, bias, labels, weights, True, True)
    want = reference.coral_loss(logit, bias, labels, weights)
    torch.testing.assert_close(loss, want, atol=1e-5, rtol=1e-5, equal_nan=True)
    assert dg.shape == (batch,) and db.shape == (4,) and probas.shape == (batch, 4) and rank.shape == (batch,)


# --- CUDA (skip without a GPU) ------------------------------------------------------------------


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("impl", ["triton", CPP])
@pytest.mark.parametrize("batch,levels", [(1, 2), (256, 5), (70_000, 5), (3000, 100)])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_cuda_matches_reference(impl, batch, levels, weighted):
    if impl == "cpp" and not torch._C._dispatch_has_kernel_for_dispatch_key("bookcover::coral_loss_fwd", "CUDA"):
        pytest.skip("bookcover._C was built without CUDA")
    logit, bias, labels, weights = (t.cuda() for t in _inputs(batch, levels))
    _assert_matches(impl, logit, bias, labels, weights if weighted else None)
    probas, rank = coral.coral_predict(logit, bias, impl=impl)
    assert coral.last_route() == impl
    want_p, want_r = reference.coral_predict(logit, bias)
    torch.testing.assert_close(probas, want_p, atol=1e-6, rtol=1e-5)
    assert torch.equal(rank, want_r)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("impl", ["triton", CPP])
def test_cuda_bf16_and_invalid_labels(impl):
    if impl == "cpp" and not torch._C._dispatch_has_kernel_for_dispatch_key("bookcover::coral_loss_fwd", "CUDA"):
        pytest.skip("bookcover._C was built without CUDA")
    logit, bias, labels, weights = (t.cuda() for t in _inputs(4096, 5, scale=2.0))
    got = _loss_and_grads(impl, logit.bfloat16(), bias, labels, weights)
    want = _loss_and_grads("oracle", logit.bfloat16().float(), bias, labels, weights)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a.float(), b.float(), atol=2e-2, rtol=0)
    labels[3] = 5
    assert torch.isnan(coral.coral_loss(logit, bias, labels, impl=impl))
    with pytest.raises(InvalidLabelsError):
        coral.coral_loss(logit, bias, labels, impl=impl, check_labels=True)


def _needs_cuda_kernel(impl: str) -> None:
    if impl == "cpp" and not torch._C._dispatch_has_kernel_for_dispatch_key("bookcover::coral_loss_fwd", "CUDA"):
        pytest.skip("bookcover._C was built without CUDA")


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("impl", ["triton", CPP])
@pytest.mark.parametrize("dtype", [torch.int32, torch.uint8], ids=["int32", "uint8"])
@pytest.mark.parametrize("offset", [0, 1], ids=["aligned", "unaligned"])
def test_cuda_label_dtypes_tails_and_unaligned_views(impl, dtype, offset):
    # B not a multiple of 4 (vector groups) nor of the row tiles; offset 1 makes every pointer
    # miss 16-byte alignment, so the scalar load paths run too.
    _needs_cuda_kernel(impl)
    logit, bias, labels, weights = (t.cuda() for t in _inputs(70_003, 5))
    logit, labels = logit[offset:], labels[offset:].to(dtype)
    _assert_matches(impl, logit, bias, labels, weights)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("impl", ["triton", CPP])
def test_cuda_loss_is_bitwise_reproducible(impl):
    _needs_cuda_kernel(impl)
    logit, bias, labels, weights = (t.cuda() for t in _inputs(1_000_000, 5))
    one = _loss_and_grads(impl, logit, bias, labels, weights)
    two = _loss_and_grads(impl, logit, bias, labels, weights)
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a, b)


# --- dispatch -----------------------------------------------------------------------------------


def test_importing_bookcover_coral_does_not_import_triton():
    code = "import sys, bookcover.coral; assert 'triton' not in sys.modules, 'triton imported eagerly'"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


@needs_cpp
def test_auto_picks_the_cpp_op_on_cpu():
    assert coral.resolve_route("auto", "cpu") == "cpp"
    logit, bias, labels, _ = _inputs(32, 5)
    coral.coral_loss(logit, bias, labels)
    assert coral.last_route() == "cpp"
    coral.coral_predict(logit, bias)
    assert coral.last_route() == "cpp"


ALL_RUN = {"reference": None, "compiled": None, "cpp": None, "triton": None}


@pytest.mark.parametrize(
    "mode,route",
    [("eager", "cpp"), ("eager-large", "triton"), ("compile", "triton"), ("capture", "triton")],
)
def test_cuda_table_rows(mode, route):
    """The CUDA rows as table lookups (no GPU needed): small eager calls to the C++ op, Triton
    under torch.compile, CUDA graph capture and for large eager batches."""
    assert dispatch.choose("auto", "cuda", mode, ALL_RUN) == route
    # auto takes the next route of its row where the first cannot run; the reference last.
    other = "triton" if route == "cpp" else "cpp"
    assert dispatch.choose("auto", "cuda", mode, {**ALL_RUN, route: "missing"}) == other
    assert dispatch.choose("auto", "cuda", mode, {**ALL_RUN, "cpp": "no", "triton": "no"}) == "reference"


@pytest.mark.parametrize("mode", dispatch.MODES)
def test_cpu_table_rows(mode):
    assert dispatch.choose("auto", "cpu", mode, ALL_RUN) == "cpp"
    assert dispatch.choose("auto", "cpu", mode, {**ALL_RUN, "cpp": "not built"}) == "reference"
    assert dispatch.choose("auto", "mps", mode, ALL_RUN) == "reference"


@pytest.mark.parametrize("impl", ["reference", "compiled", "cpp", "triton"])
@pytest.mark.parametrize("mode", dispatch.MODES)
def test_an_explicit_impl_is_its_own_route_or_an_error(impl, mode):
    for device in ("cpu", "cuda"):
        assert dispatch.choose(impl, device, mode, ALL_RUN) == impl
        with pytest.raises(CoralImplError, match=f"impl='{impl}' cannot run here: nope"):
            dispatch.choose(impl, device, mode, {**ALL_RUN, impl: "nope"})


def test_the_eager_mode_follows_the_measured_crossover():
    small, large = torch.zeros(4), torch.empty(dispatch.EAGER_CUDA_CROSSOVER, device="meta")
    assert dispatch.mode_of(small) == "eager"
    assert dispatch.mode_of(large) == "eager"  # only CUDA calls are split by batch size
    assert dispatch.EAGER_CUDA_CROSSOVER == 1 << 24  # the value written down in bench/RESULTS.md


def test_explicit_triton_that_cannot_run_raises_one_line():
    if dispatch.TRITON_INTERPRET:
        pytest.skip("triton runs CPU tensors under TRITON_INTERPRET=1")
    logit, bias, labels, _ = _inputs(8, 5)
    for call in (lambda: coral.coral_loss(logit, bias, labels, impl="triton"),
                 lambda: coral.coral_predict(logit, bias, impl="triton")):  # fmt: skip
        with pytest.raises(CoralImplError) as err:
            call()
        assert isinstance(err.value, UsageError) and "\n" not in str(err.value)
        assert str(err.value).startswith("impl='triton' cannot run here: ")


@pytest.mark.triton
def test_explicit_triton_with_float64_raises_one_line():
    if not dispatch.TRITON_INTERPRET:
        pytest.skip("run under TRITON_INTERPRET=1")
    logit, bias, labels, _ = _inputs(8, 5)
    with pytest.raises(CoralImplError, match="impl='triton' cannot run here: triton computes in fp32"):
        coral.coral_loss(logit.double(), bias.double(), labels, impl="triton")
    with pytest.raises(CoralImplError, match="fp32"):
        coral.coral_predict(logit.double(), bias.double(), impl="triton")


_WITHOUT_EXTENSION = """
import sys
sys.modules["bookcover._C"] = None  # as if it was never built: importing it raises ImportError
import torch
import bookcover.coral as coral
from bookcover.coral import reference
logit, bias, labels = torch.randn(32), torch.randn(4), torch.randint(0, 5, (32,))
want = reference.coral_loss(logit, bias, labels)
for _ in range(3):
    assert coral.coral_loss(logit, bias, labels, impl="auto") == want
    assert coral.last_route() == "reference"
try:
    coral.coral_loss(logit, bias, labels, impl="cpp")
except coral.CoralImplError as err:
    print("ERROR", err)
"""


def test_without_the_extension_auto_notices_once_and_cpp_raises():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("TRITON_INTERPRET", None)
    run = subprocess.run([sys.executable, "-c", _WITHOUT_EXTENSION], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    err = run.stderr.strip().splitlines()
    assert len(err) == 1 and "bookcover._C" in err[0] and "reference" in err[0], err
    assert run.stdout.startswith("ERROR impl='cpp' cannot run here: the C++ CORAL extension (bookcover._C) is not built")
    assert len(run.stdout.strip().splitlines()) == 1


def test_unknown_impl_is_rejected():
    with pytest.raises(ValueError, match="unknown CORAL implementation"):
        coral.coral_loss(torch.zeros(2), torch.zeros(1), torch.zeros(2, dtype=torch.long), impl="cuda-magic")


def test_training_loss_uses_the_configured_impl(monkeypatch):
    from bookcover.classifier import train as classifier
    from bookcover.classifier.config import preset

    seen = []

    def spy(*args, impl="auto", **kwargs):
        seen.append(impl)
        return reference.coral_loss(*args, **kwargs)

    monkeypatch.setattr(classifier.coral, "coral_loss", spy)
    loss_fn = classifier._loss_fn(preset("quick", loss_impl="cpp"))
    logit, bias, labels, _ = _inputs(8, 5)
    loss_fn(logit, bias, labels, None)
    assert seen == ["cpp"]


@needs_cpp
def test_graph_training_pins_auto_to_the_capture_route(monkeypatch):
    """In graph mode the eager warm-up steps run what the capture records: "auto" is resolved
    once for the capture (here on CPU: the C++ op) and passed on as an explicit impl."""
    from bookcover.classifier import train as classifier
    from bookcover.classifier.config import preset

    seen = []

    def spy(*args, impl="auto", **kwargs):
        seen.append(impl)
        return reference.coral_loss(*args, **kwargs)

    monkeypatch.setattr(classifier.coral, "coral_loss", spy)
    logit, bias, labels, _ = _inputs(8, 5)
    classifier._loss_fn(preset("quick"), torch.device("cpu"), "graph")(logit, bias, labels, None)
    classifier._loss_fn(preset("quick"), torch.device("cpu"), "eager")(logit, bias, labels, None)
    assert seen == [coral.resolve_route("auto", "cpu", "capture"), "auto"] == ["cpp", "auto"]


def test_training_refuses_an_impl_that_cannot_run_before_it_starts():
    if dispatch.TRITON_INTERPRET:
        pytest.skip("triton runs CPU tensors under TRITON_INTERPRET=1")
    from bookcover.classifier import train as classifier
    from bookcover.classifier.config import preset

    with pytest.raises(CoralImplError, match="impl='triton' cannot run here"):
        classifier._loss_fn(preset("quick", loss_impl="triton"), torch.device("cpu"))
