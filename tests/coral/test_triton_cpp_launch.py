"""The Triton loss kernel launched from C++ (bookcover.coral.triton_cpp_launch, csrc/triton_launch.cpp).

On the CPU: the parameter plan handed to the C++ launcher is checked against the PTX of every
shipped loss configuration compiled for sm_90a (the parameters Triton really emits), and the
take-over decision (register, first launch compared with Triton's, fall back with one line) is
checked with the extension's two calls replaced. On a GPU: the C++ launch against Triton's
launch of the same kernel (bitwise), gradients, views, opcheck and CUDA graph capture.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

from bookcover.coral import triton_cpp_launch as tcl

needs_compiler = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") == "1" or importlib.util.find_spec("triton") is None,
    reason="compiles real Triton kernels (no TRITON_INTERPRET=1)",
)

POINTER_CODES = list(range(10))
B, KM1, INV_B = tcl.SCALARS["B"][0], tcl.SCALARS["KM1"][0], tcl.SCALARS["inv_b"][0]


def _loss_launches():
    from bookcover.coral import triton_configs

    # The C++ launcher takes the loss kernel without predictions (the eager door's case).
    return [x for x in triton_configs.shipped() if x.kernel == "loss" and not x.constexprs["RETURN_PRED"]]


@needs_compiler
def test_parameter_plan_matches_the_ptx_of_every_shipped_loss_kernel():
    from bookcover.coral import triton_audit

    launches = _loss_launches()
    assert any(x.km1 == 1 for x in launches) and any(x.dtypes["labels"] == "u8" for x in launches)
    for launch in launches:
        kernel = triton_audit.compile_kernel(launch)
        plan = tcl.launch_params(kernel.src.signature, kernel.asm["ptx"], kernel.metadata.name)
        scalars = [B] + ([KM1] if launch.km1 != 1 else []) + [INV_B]  # KM1 == 1 is a JIT constant
        ptx_types = tcl.ptx_param_types(kernel.asm["ptx"], kernel.metadata.name)
        trailing = len(ptx_types) - 10 - len(scalars)
        assert plan == POINTER_CODES + scalars + [tcl.NULL_PTR] * trailing, launch.label()
        assert tcl.unsupported_metadata(kernel.metadata) is None, launch.label()


PTX = """
.visible .entry k(
	.param .u64 .ptr .global .align 1 k_param_0,
	.param .u32 k_param_1,
	.param .f32 k_param_2,
	.param .u64 .ptr .global .align 1 k_param_3
)
"""


def test_launch_params_by_hand():
    assert tcl.ptx_param_types(PTX, "k") == ["u64", "u32", "f32", "u64"]
    sig = {"g_ptr": "*bf16", "B": "i32", "inv_b": "fp32", "HAS_W": "constexpr"}
    assert tcl.launch_params(sig, PTX, "k") == [0, B, INV_B, tcl.NULL_PTR]


@pytest.mark.parametrize(
    "sig, why",
    [
        ({"g_ptr": "*fp32", "B": "i64", "inv_b": "fp32"}, "a 64-bit batch is not what the launcher passes"),
        ({"g_ptr": "*fp32", "X": "i32", "inv_b": "fp32"}, "an argument the launcher does not know"),
        ({"g_ptr": "*fp32", "inv_b": "fp32", "B": "i32"}, "the PTX order differs from the signature's"),
        ({"g_ptr": "*fp32", "B": "i32"}, "a trailing non-pointer parameter"),
    ],
)
def test_launch_params_refuses_what_it_cannot_pass(sig, why):
    assert tcl.launch_params(sig, PTX, "k") is None, why


def test_unsupported_metadata_names_the_reason():
    class Meta:
        global_scratch_size = 0
        profile_scratch_size = 0
        num_ctas = 1
        launch_cooperative_grid = False
        launch_pdl = False

    assert tcl.unsupported_metadata(Meta) is None
    Meta.global_scratch_size = 128
    assert "scratch" in tcl.unsupported_metadata(Meta)
    Meta.global_scratch_size, Meta.num_ctas = 0, 2
    assert "cluster" in tcl.unsupported_metadata(Meta)


def test_same_results_is_bitwise_with_nan_equal_to_nan():
    a = torch.tensor([1.0, float("nan"), 3.0])
    assert tcl.same_results([a, a[:1]], [a.clone(), a[:1].clone()])
    assert not tcl.same_results([a], [torch.tensor([1.0, float("nan"), 3.0000002])])
    assert not tcl.same_results([a], [torch.tensor([1.0, 2.0, 3.0])])
    assert not tcl.same_results([a], [a[:2]])


# --- the take-over decision, with the extension's two calls replaced -------------------------


@pytest.fixture
def fake_extension(monkeypatch):
    """slot_for on CPU tensors: `register` and `launch` stand in for the extension."""
    calls = {"register": 0, "launch": 0, "triton": 0}
    state = {"launch": lambda *a: _outputs(), "capturing": False}
    monkeypatch.setattr(tcl, "_SLOTS", {})
    monkeypatch.setattr(tcl, "available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: state["capturing"])

    def register(compiled, grid, *args):
        calls["register"] += 1
        return (7, None) if grid == 1 else (-1, None)

    def launch(*args):
        calls["launch"] += 1
        return state["launch"](*args)

    monkeypatch.setattr(tcl, "register", register)
    monkeypatch.setattr(tcl, "launch", launch)
    return calls, state


def _outputs(shift: float = 0.0):
    return (torch.tensor(0.5 + shift), torch.arange(4.0), torch.ones(2), torch.empty(0, 2), torch.empty(0))


def _slot(calls, grid: int = 1, n: int = 4, weights=None):
    logit, bias, labels = torch.zeros(n), torch.zeros(2), torch.zeros(n, dtype=torch.long)

    def triton_launch(launched):
        calls["triton"] += 1
        launched.append((object(), grid))
        return _outputs()

    return tcl.slot_for(logit, bias, labels, weights, True, triton_launch)


def test_a_signature_is_taken_over_once_and_then_reused(fake_extension, capsys):
    calls, _ = fake_extension
    assert _slot(calls) == 7
    assert _slot(calls) == 7
    assert calls == {"register": 1, "launch": 1, "triton": 1}  # the check ran once
    assert _slot(calls, n=5) == 7 and calls["register"] == 2  # another batch size: its own entry
    assert capsys.readouterr().err == ""


def test_a_first_launch_that_differs_keeps_tritons_launcher_with_one_line(fake_extension, capsys):
    calls, state = fake_extension
    state["launch"] = lambda *a: _outputs(shift=1e-7)
    assert _slot(calls) == -1
    assert _slot(calls) == -1 and calls["triton"] == 1  # decided once
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differed from Triton's launch" in err[0]


def test_a_failing_first_launch_keeps_tritons_launcher(fake_extension, capsys):
    calls, state = fake_extension

    def boom(*a):
        raise RuntimeError("coral: launching the Triton kernel failed: invalid argument\nC++ trace...")

    state["launch"] = boom
    assert _slot(calls, n=6) == -1
    err = capsys.readouterr().err
    assert "invalid argument" in err and "trace" not in err


def test_several_programs_and_graph_capture_are_left_to_triton(fake_extension):
    calls, state = fake_extension
    assert _slot(calls, grid=3) == -1 and calls["launch"] == 0
    state["capturing"] = True
    assert _slot(calls, n=9) == -1 and calls["triton"] == 1  # nothing launched while capturing
    state["capturing"] = False
    assert _slot(calls, n=9) == 7  # decided on the next uncaptured call


def test_without_the_extension_nothing_is_launched(monkeypatch):
    monkeypatch.setattr(tcl, "_SLOTS", {})
    monkeypatch.setattr(tcl, "available", lambda: False)
    called = []
    slot = tcl.slot_for(torch.zeros(3), torch.zeros(1), torch.zeros(3, dtype=torch.long), None, False,
                        lambda launched: called.append(1))  # fmt: skip
    assert slot == -1 and not called


# --- on a GPU ------------------------------------------------------------------------------

needs_cuda_launch = pytest.mark.skipif(
    not torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1" or not tcl.available(),
    reason="needs a CUDA GPU and bookcover._C built with CUDA",
)


def _cuda_inputs(batch, levels, dtype=torch.float32, label_dtype=torch.long, weighted=False, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logit = (torch.randn(batch, generator=gen) * 2).to("cuda", dtype)
    bias = torch.linspace(1.0, -1.0, levels - 1).cuda()
    labels = torch.randint(0, levels, (batch,), generator=gen).to("cuda", label_dtype)
    weights = torch.rand(levels - 1, generator=gen).cuda() if weighted else None
    return logit, bias, labels, weights


def _loss_and_grads(logit, bias, labels, weights, launch: str):
    import bookcover.coral as coral
    from bookcover.coral import triton_ops

    g, b = logit.detach().clone().requires_grad_(), bias.detach().clone().requires_grad_()
    saved, triton_ops.EAGER_LAUNCH = triton_ops.EAGER_LAUNCH, launch
    try:
        loss = coral.coral_loss(g, b, labels, weights, impl="triton")
        loss.backward()
    finally:
        triton_ops.EAGER_LAUNCH = saved
    return loss.detach(), g.grad, b.grad


# Each case JIT-compiles its own kernels: six cases cover B = 1 (a JIT constant), K = 2 (KM1 a
# constant), the study's 256, a full 1,000-row tile, both dtype pairs and both weightings.
CASES = [
    (1, 5, torch.float32, torch.long, False),
    (7, 2, torch.bfloat16, torch.uint8, True),
    (256, 5, torch.float32, torch.long, True),
    (256, 5, torch.bfloat16, torch.uint8, False),
    (1000, 11, torch.float32, torch.long, False),
    (1000, 11, torch.bfloat16, torch.uint8, True),
]


@pytest.mark.cuda
@needs_cuda_launch
@pytest.mark.parametrize("batch, levels, dtype, label_dtype, weighted", CASES)
def test_cuda_cpp_launch_equals_tritons_launch(batch, levels, dtype, label_dtype, weighted):
    inputs = _cuda_inputs(batch, levels, dtype, label_dtype, weighted)
    key = tcl.signature_key(inputs[0], inputs[1], inputs[2], inputs[3], True)
    via_cpp = _loss_and_grads(*inputs, launch="cpp")
    assert tcl._SLOTS.get(key, -1) >= 0, "the C++ launch was not taken"
    via_triton = _loss_and_grads(*inputs, launch="triton")
    for a, b in zip(via_cpp, via_triton, strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)
    ref = _loss_and_grads(*inputs, launch="cpp")  # a second C++ call: same slot, same result
    assert all(torch.equal(a, b) for a, b in zip(ref, via_cpp, strict=True))


@pytest.mark.cuda
@needs_cuda_launch
def test_cuda_cpp_launch_matches_the_reference_and_handles_views():
    from bookcover.coral import reference

    logit, bias, labels, weights = _cuda_inputs(257, 5, weighted=True)
    view = logit.repeat(2)[1:258]  # 4-byte offset: not 16-byte aligned
    labels[3] = 9  # invalid: the loss must be NaN, no exception
    got = _loss_and_grads(view, bias, labels, weights, launch="cpp")
    assert torch.isnan(got[0])
    labels[3] = 0
    got = _loss_and_grads(view, bias, labels, weights, launch="cpp")
    g, b = view.detach().clone().requires_grad_(), bias.detach().clone().requires_grad_()
    want = reference.coral_loss(g, b, labels, weights)
    want.backward()
    torch.testing.assert_close(got[0], want.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[1], g.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(got[2], b.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.cuda
@needs_cuda_launch
def test_cuda_cpp_launch_opcheck_and_graph_capture():
    import bookcover.coral as coral

    logit, bias, labels, _ = _cuda_inputs(256, 5)
    g = logit.clone().requires_grad_()
    coral.coral_loss(g, bias, labels, impl="triton").backward()  # takes the signature over
    slot = tcl._SLOTS[tcl.signature_key(g, bias, labels, None, True)]
    assert slot >= 0
    torch.library.opcheck(torch.ops.bookcover.coral_loss_fwd_triton.default, (g, bias, labels, None, True, slot),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))  # fmt: skip
    with pytest.raises(RuntimeError, match="registered for other inputs"):
        tcl.launch(g[:128], bias, labels[:128], None, True, slot)

    static_g = logit.clone()
    coral.coral_loss(static_g, bias, labels, impl="triton")  # uncaptured first call: taken over
    assert tcl._SLOTS[tcl.signature_key(static_g, bias, labels, None, False)] >= 0
    graph = torch.cuda.CUDAGraph()
    torch.cuda.synchronize()
    with torch.cuda.graph(graph):
        loss = coral.coral_loss(static_g, bias, labels, impl="triton")
    static_g.copy_(logit * 0.5)
    graph.replay()
    want = coral.coral_loss(logit * 0.5, bias, labels, impl="reference")
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-6)
