"""Hidden tests for week 04 (feed-forward, normalization, dropout, residuals and the transformer block).

Expected values come from the reference solution (``reference``) run here, in the
trusted grader, with the same weights loaded into the student's modules by name;
``tests/test_week04_reference.py`` checks that reference against ``F.gelu``,
``F.layer_norm``, ``nn.RMSNorm``, Llama's MLP and RMSNorm, ``nn.TransformerEncoderLayer``
and a one-layer GPT-2.

Dropout draws random numbers in the student's process, so its tests check
properties that hold for every draw (survivors are exactly ``x / (1 - p)``, the
gradient flows through the survivors only) and statistics with tolerances of
about eight standard deviations, which a correct implementation never misses.
The block in training mode is checked the same way: with one branch's output
projection zeroed, every element of the output is either ``x`` or
``x + branch / (1 - p)``.

Every call also fails when the student's code changes a tensor argument in place
(the engine compares them before and after), e.g. ``x += ...`` in the residual.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autograder import (
    assert_close,
    assert_equal,
    assert_no_forbidden_ops,
    expect_tensor,
    randn,
    reference_grads,
)
from autograder.student_errors import StudentException
from autograder.testing import DTYPE_IDS, DTYPE_NAMES, DTYPES, LOOSE, fails, forbidden
from autograder.testing import key_padding as padding

NORM_OPS = ["*layer_norm*", "*rms_norm*", "*group_norm*", "*batch_norm*", "*instance_norm*"]
FORBIDDEN = forbidden("04-block")
# Block configurations: (norm, activation, eps). d_model 24, 4 heads of 6, d_ff 40.
BLOCKS = {
    "layernorm-relu": ("layernorm", "relu", 1e-5),
    "layernorm-gelu-eps0.05": ("layernorm", "gelu", 0.05),
    "rmsnorm-swiglu-eps0.01": ("rmsnorm", "swiglu", 0.01),
    "layernorm-gelu_tanh": ("layernorm", "gelu_tanh", 1e-5),  # GPT-2's block, used with a causal mask
}
PADDED = ["layernorm-relu", "layernorm-gelu-eps0.05", "rmsnorm-swiglu-eps0.01"]
D_MODEL, N_HEADS, D_FF = 24, 4, 40


def build(
    student,
    reference,
    cls: str,
    args: tuple,
    kwargs: dict,
    dtype: torch.dtype,
    seed: int,
    zeroed: tuple[str, ...] = (),
):
    """The reference module with non-trivial weights (std 0.5; norm weights 1 + 0.5 N(0, 1)), and the student's.

    The entries named in ``zeroed`` are set to zero (e.g. a branch's output projection, to switch it off).
    """
    ref = getattr(reference, cls)(*args, **kwargs).to(dtype)
    state = {}
    for i, (name, value) in enumerate(ref.state_dict().items()):
        is_norm_weight = name.endswith("weight") and (cls in ("LayerNorm", "RMSNorm") or "norm" in name)
        state[name] = randn(*value.shape, dtype=dtype, seed=seed + i, scale=0.5) + (1.0 if is_norm_weight else 0.0)
        if name in zeroed:
            state[name] = torch.zeros_like(state[name])
    ref.load_state_dict(state)
    mine = getattr(student, cls)(*args, **kwargs)
    convert = {torch.float64: "double", torch.float16: "half", torch.bfloat16: "bfloat16"}.get(dtype)
    if convert is not None:
        getattr(mine, convert)()
    mine.load_state_dict(state)
    return ref, mine


# -- GELU ---------------------------------------------------------------------


def gelu_inputs(dtype: torch.dtype) -> torch.Tensor:
    return torch.cat([torch.linspace(-6, 6, 121, dtype=torch.float64), randn(3, 37, seed=1, scale=3).flatten()]).to(
        dtype
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gelu_exact(student, reference, dtype):
    x = gelu_inputs(dtype)
    assert_close(
        student.gelu(x),
        reference.gelu(x),
        name=f"gelu(x) with approximate='none', x in [-6, 6], {DTYPE_NAMES[dtype]}",
        mistakes={
            "the tanh approximation where the exact GELU (erf) was asked for": reference.gelu(x, approximate="tanh"),
            "erf(x / 2) instead of erf(x / sqrt(2))": 0.5 * x * (1 + torch.erf(x / 2)),
            "missing the factor 0.5": x * (1 + torch.erf(x / math.sqrt(2))),
        },
        hint="x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)))",
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gelu_tanh(student, reference, dtype):
    x = gelu_inputs(dtype)
    assert_close(
        student.gelu(x, approximate="tanh"),
        reference.gelu(x, approximate="tanh"),
        name=f"gelu(x, approximate='tanh'), x in [-6, 6], {DTYPE_NAMES[dtype]}",
        mistakes={
            "the exact GELU (erf) where the tanh approximation was asked for": reference.gelu(x),
            "sqrt(pi / 2) instead of sqrt(2 / pi)": 0.5
            * x
            * (1 + torch.tanh(math.sqrt(math.pi / 2) * (x + 0.044715 * x**3))),
        },
        hint="0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))",
    )


def test_gelu_uses_no_builtin(student, reference):
    x = gelu_inputs(torch.float32)
    for approximate in ("none", "tanh"):
        result = student.gelu(x, approximate=approximate)
        assert_no_forbidden_ops(
            student.last_ops,
            ["*gelu*"],
            name=f"gelu(x, approximate={approximate!r})",
            hint="write the formula with torch.erf or torch.tanh",
        )
        assert_close(result, reference.gelu(x, approximate=approximate), name=f"gelu(approximate={approximate!r})")
    ref, mine = build(student, reference, "FeedForward", (20, 52), {"activation": "gelu"}, torch.float32, seed=5)
    h = randn(2, 5, 20, dtype=torch.float32, seed=6)
    result = mine(h)
    assert_no_forbidden_ops(
        student.last_ops, ["*gelu*"], name="FeedForward(activation='gelu').forward", hint="call your own gelu"
    )
    assert_close(result, ref(h), name="FeedForward(activation='gelu') output", **LOOSE)


# -- the feed-forward network --------------------------------------------------

FEED_FORWARD = {
    "relu": ("relu", True),
    "relu-no-bias": ("relu", False),
    "gelu": ("gelu", True),
    "gelu_tanh": ("gelu_tanh", True),
    "swiglu-no-bias": ("swiglu", False),
    "swiglu": ("swiglu", True),
}


def feed_forward_mistakes(ref, x: torch.Tensor, activation: str) -> dict[str, torch.Tensor]:
    up = ref.fc1(x)
    if activation == "swiglu":
        gate = ref.fc_gate(x)
        return {
            "the gate on the wrong branch: silu must be applied to fc_gate(x), not fc1(x)": ref.fc2(F.silu(up) * gate),
            "sigmoid instead of silu on the gate": ref.fc2(torch.sigmoid(gate) * up),
        }
    if activation == "gelu":
        return {"the tanh GELU where the exact one was asked for": ref.fc2(F.gelu(up, approximate="tanh"))}
    if activation == "gelu_tanh":
        return {"the exact GELU where the tanh approximation was asked for": ref.fc2(F.gelu(up))}
    return {"no activation": ref.fc2(up)}


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("config", list(FEED_FORWARD))
def test_feed_forward(student, reference, config, dtype):
    activation, bias = FEED_FORWARD[config]
    ref, mine = build(
        student, reference, "FeedForward", (20, 52), {"activation": activation, "bias": bias}, dtype, seed=10
    )
    x = randn(3, 5, 20, dtype=dtype, seed=11)
    loose = LOOSE if dtype == torch.float32 else {}
    assert_close(
        mine(x),
        ref(x),
        name=f"FeedForward(20, 52, activation={activation!r}, bias={bias}) on (3, 5, 20), {DTYPE_NAMES[dtype]}",
        mistakes=feed_forward_mistakes(ref, x, activation),
        hint="fc2(act(fc1(x))); swiglu: fc2(silu(fc_gate(x)) * fc1(x))",
        **loose,
    )


@pytest.mark.parametrize(
    ("call", "args", "kwargs"),
    [
        ("gelu", (torch.linspace(-2, 2, 5),), {"approximate": "fast"}),
        ("FeedForward", (8, 16), {"activation": "swish"}),
        ("TransformerBlock", (8, 2, 16), {"norm": "batchnorm"}),
        ("Dropout", (1.5,), {}),
        ("Dropout", (-0.1,), {}),
    ],
    ids=["gelu-approximate", "activation", "norm", "dropout-p-above-one", "dropout-p-negative"],
)
def test_rejects_unknown_options(student, call, args, kwargs):
    shown = ", ".join(
        [*("x" if isinstance(a, torch.Tensor) else repr(a) for a in args), *(f"{k}={v!r}" for k, v in kwargs.items())]
    )
    label = f"{call}({shown})"
    try:
        getattr(student, call)(*args, **kwargs)
    except StudentException as exc:
        if "raised ValueError" not in str(exc):
            fails(f"{label} should raise ValueError; instead {exc}")
        return
    fails(f"{label} returned normally; it should raise ValueError (an unknown option must not be silently ignored)")


# -- LayerNorm and RMSNorm -----------------------------------------------------


def layer_norm_mistakes(x: torch.Tensor, weight, bias, eps: float) -> dict[str, torch.Tensor]:
    mean = x.mean(-1, keepdim=True)
    biased = x.var(-1, unbiased=False, keepdim=True)
    over_t = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + eps)
    return {
        "the unbiased variance (divide by D - 1); LayerNorm uses the biased one (divide by D)": (x - mean)
        / torch.sqrt(x.var(-1, keepdim=True) + eps)
        * weight
        + bias,
        "eps added outside the square root; it belongs inside: sqrt(var + eps)": (x - mean)
        / (torch.sqrt(biased) + eps)
        * weight
        + bias,
        "the bias is not added": (x - mean) / torch.sqrt(biased + eps) * weight,
        "the weight is not applied": (x - mean) / torch.sqrt(biased + eps) + bias,
        "normalising over dim 1 (positions) instead of the last dim (features)": over_t * weight + bias,
    }


LAYER_NORM_CASES = {
    "(3, 7, 24) eps=1e-5": ((3, 7, 24), 1e-5),
    "(3, 7, 24) eps=0.1": ((3, 7, 24), 0.1),
    "(2, 5, 3, 10) eps=0.1": ((2, 5, 3, 10), 0.1),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", list(LAYER_NORM_CASES))
def test_layer_norm(student, reference, case, dtype):
    shape, eps = LAYER_NORM_CASES[case]
    ref, mine = build(student, reference, "LayerNorm", (shape[-1],), {"eps": eps}, dtype, seed=20)
    x = randn(*shape, dtype=dtype, seed=21, scale=2.0) + 0.5
    assert_close(
        mine(x),
        ref(x),
        name=f"LayerNorm({shape[-1]}, eps={eps}) on {shape}, {DTYPE_NAMES[dtype]}",
        mistakes=layer_norm_mistakes(x, ref.weight, ref.bias, eps),
        hint="(x - mean) / sqrt(biased variance + eps) * weight + bias, statistics over the last dim",
    )


@pytest.mark.parametrize(("dtype", "offset"), [(torch.float64, 1e6), (torch.float32, 100.0)], ids=["fp64", "fp32"])
def test_layer_norm_large_mean(student, reference, dtype, offset):
    ref, mine = build(student, reference, "LayerNorm", (48,), {}, dtype, seed=25)
    x = randn(4, 9, 48, dtype=dtype, seed=26) + offset
    mean = x.mean(-1, keepdim=True)
    one_pass = (x - mean) * torch.rsqrt((x * x).mean(-1, keepdim=True) - mean * mean + 1e-5) * ref.weight + ref.bias
    # The inputs themselves are only known to their last bit (~1e-10 at 1e6 in float64, ~1e-5 at 100
    # in float32), so two correct two-pass implementations differ by a few times that after dividing
    # by the std of 1. The one-pass formula is off by ~1e-3 in both.
    loose = {"rtol": 1e-5, "atol": 2e-4} if dtype == torch.float32 else {"rtol": 1e-7, "atol": 1e-8}
    assert_close(
        mine(x),
        ref(x),
        name=f"LayerNorm(48) on features of mean {offset:g} and std 1, {DTYPE_NAMES[dtype]}",
        mistakes={
            "the variance as mean(x^2) - mean(x)^2, which cancels catastrophically when the mean is large": one_pass
        },
        hint="subtract the mean first, then average the squares of the centred values",
        **loose,
    )


def rms_norm_mistakes(x: torch.Tensor, weight, eps: float) -> dict[str, torch.Tensor]:
    mean_square = x.square().mean(-1, keepdim=True)
    centred = x - x.mean(-1, keepdim=True)
    return {
        "the mean is subtracted (that is LayerNorm); RMSNorm does not centre": centred
        / torch.sqrt(centred.square().mean(-1, keepdim=True) + eps)
        * weight,
        "eps added outside the square root; it belongs inside: sqrt(mean(x^2) + eps)": x
        / (torch.sqrt(mean_square) + eps)
        * weight,
        "the sum of squares instead of their mean": x / torch.sqrt(x.square().sum(-1, keepdim=True) + eps) * weight,
    }


RMS_NORM_CASES = {
    "(3, 7, 24) eps=1e-6": ((3, 7, 24), 1e-6),
    "(3, 7, 24) eps=0.1": ((3, 7, 24), 0.1),
    "(2, 5, 3, 10) eps=0.1": ((2, 5, 3, 10), 0.1),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", list(RMS_NORM_CASES))
def test_rms_norm(student, reference, case, dtype):
    shape, eps = RMS_NORM_CASES[case]
    ref, mine = build(student, reference, "RMSNorm", (shape[-1],), {"eps": eps}, dtype, seed=30)
    x = randn(*shape, dtype=dtype, seed=31, scale=2.0) + 0.5
    assert_close(
        mine(x),
        ref(x),
        name=f"RMSNorm({shape[-1]}, eps={eps}) on {shape}, {DTYPE_NAMES[dtype]}",
        mistakes=rms_norm_mistakes(x, ref.weight, eps),
        hint="x / sqrt(mean(x^2 over the last dim) + eps) * weight",
    )


@pytest.mark.parametrize("cls", ["LayerNorm", "RMSNorm"])
def test_norm_gradients(student, reference, cls):
    ref, mine = build(student, reference, cls, (16,), {"eps": 0.1}, torch.float64, seed=40)
    x = (randn(2, 5, 16, seed=41, scale=2.0) + 0.5).requires_grad_()
    grad_output = randn(2, 5, 16, seed=42)
    _, grads = mine.vjp(x, grad_outputs=grad_output)
    expected = reference_grads(ref(x), [x, *ref.parameters()], grad_output)
    hint = "keep the mean and variance differentiable: no .detach(), .item() or .data on the statistics"
    assert_close(grads[0], expected[0], name=f"{cls}: gradient with respect to x", hint=hint)
    for (name, _), want in zip(ref.named_parameters(), expected[1:], strict=True):
        assert_close(mine.attr(name).attr("grad").fetch(), want, name=f"{cls}: gradient of {name}", hint=hint)


def test_norms_use_no_builtin(student, reference):
    x = randn(2, 5, 16, dtype=torch.float32, seed=45)
    for cls in ("LayerNorm", "RMSNorm"):
        ref, mine = build(student, reference, cls, (16,), {}, torch.float32, seed=46)
        result = mine(x)
        assert_no_forbidden_ops(
            student.last_ops, NORM_OPS, name=f"{cls}.forward", hint="compute the statistics with mean and rsqrt"
        )
        assert_close(result, ref(x), name=f"{cls}(16) on (2, 5, 16)")


@pytest.mark.parametrize("cls", ["LayerNorm", "RMSNorm"])
def test_norm_defaults(student, reference, cls):
    """A fresh norm with its default arguments: weight ones, bias zeros, eps 1e-5 (LayerNorm) or 1e-6 (RMSNorm)."""
    ref = getattr(reference, cls)(16).double()
    mine = getattr(student, cls)(16)
    mine.double()
    state = mine.state_dict()
    if not isinstance(state, dict):
        fails(f"{cls}(16).state_dict() did not return a dict of tensors")
    for name, value in ref.state_dict().items():
        if name not in state:
            fails(f"{cls}(16) has no parameter {name!r}")
        assert_equal(
            state[name],
            value,
            name=f"{cls}(16).{name} of a fresh module",
            hint="weight starts at ones and bias at zeros, so that a fresh norm only standardises",
        )
    # Inputs whose (mean) square is about eps, so that the default eps changes the output by ~50 %.
    scale = 3e-3 if cls == "LayerNorm" else 1e-3
    x = randn(2, 5, 16, seed=47, scale=scale)
    with torch.no_grad():
        expected = ref(x)
    assert_close(
        mine(x),
        expected,
        name=f"a fresh {cls}(16) (default eps) on inputs of size ~{scale:g}, float64",
        hint="the default eps is 1e-5 for LayerNorm and 1e-6 for RMSNorm (keep the signature's defaults)",
    )


def half_tolerance(dtype: torch.dtype) -> dict[str, float]:
    """float16 keeps 11 significant bits, bfloat16 8. Correct implementations that round in another order
    (everything in float32 and one cast at the end, float64 inside, F.layer_norm / F.rms_norm) differ from
    the reference by one unit in the last place, 4 eps at outputs of size 4 to 8 (measured: at most 4 eps
    absolute, 1.8 eps relative). Allow 8 eps relative and absolute."""
    eps = torch.finfo(dtype).eps
    return {"rtol": 8 * eps, "atol": 8 * eps}


HALF_CASES = {
    "RMSNorm-fp16": ("RMSNorm", torch.float16),
    "RMSNorm-bf16": ("RMSNorm", torch.bfloat16),
    "LayerNorm-fp16": ("LayerNorm", torch.float16),
    "LayerNorm-bf16": ("LayerNorm", torch.bfloat16),
}


@pytest.mark.parametrize("case", list(HALF_CASES))
def test_norms_in_half_precision(student, reference, case):
    """Activations of size ~300 in float16: x^2 (and (x - mean)^2) overflow float16's 65504 unless computed in float32."""
    cls, dtype = HALF_CASES[case]
    dtype_name = "float16" if dtype == torch.float16 else "bfloat16"
    ref, mine = build(student, reference, cls, (64,), {}, dtype, seed=36)
    x = randn(4, 9, 64, dtype=dtype, seed=37, scale=300.0)
    mistakes = {}
    with torch.no_grad():
        expected = ref(x)
        if dtype == torch.float16:  # bfloat16 has float32's range: computing in it overflows nothing
            if cls == "RMSNorm":
                in_dtype = x * torch.rsqrt(x.square().mean(-1, keepdim=True) + ref.eps) * ref.weight
            else:
                centred = x - x.mean(-1, keepdim=True)
                in_dtype = centred * torch.rsqrt(centred.square().mean(-1, keepdim=True) + ref.eps) * ref.weight
                in_dtype = in_dtype + ref.bias
            mistakes["the statistics are computed in float16, where x^2 overflows to inf for |x| > 255"] = in_dtype
    assert_close(
        mine(x),
        expected,
        name=f"{cls}(64) in {dtype_name} (module and input) on activations of std 300",
        mistakes=mistakes,
        hint="compute the statistics in float32 (h = x.float() for float16/bfloat16 input), normalise, cast back "
        "to x's dtype, then apply the weight (and bias), as Llama's RMSNorm does",
        **half_tolerance(dtype),
    )


# -- dropout -------------------------------------------------------------------


def nonzero_randn(*shape: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    """Normal numbers pushed away from zero, so that a zero in the output means "dropped"."""
    x = randn(*shape, dtype=dtype, seed=seed)
    return x + 0.1 * torch.sign(x) + (x == 0).to(dtype)


@pytest.mark.parametrize(("p", "mode"), [(0.1, "eval"), (0.5, "eval"), (0.0, "train")])
def test_dropout_eval_is_identity(student, p, mode):
    x = nonzero_randn(8, 13, dtype=torch.float64, seed=50)
    layer = student.Dropout(p)
    if mode == "eval":
        layer.eval()
    assert_equal(
        layer(x),
        x,
        name=f"Dropout({p}) in {mode} mode",
        hint="in eval mode (self.training is False), or with p == 0, return the input unchanged",
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.75])
def test_dropout_train_rescales_survivors(student, p, dtype):
    x = nonzero_randn(64, 33, dtype=dtype, seed=51)
    out = expect_tensor(student.Dropout(p)(x), name=f"Dropout({p}) in training mode", shape=x.shape, dtype=dtype)
    kept = out != 0
    dropped = 1 - kept.double().mean().item()
    if abs(dropped - p) > 0.1:  # 2112 elements: the std of the fraction is at most 0.011
        fails(f"Dropout({p}) zeroed {dropped:.1%} of 2112 elements; expected about {p:.0%}")
    assert_close(
        out,
        torch.where(kept, x / (1 - p), torch.zeros_like(x)),
        name=f"Dropout({p}) in training mode: the elements it keeps, {DTYPE_NAMES[dtype]}",
        mistakes={"the survivors are not divided by 1 - p": torch.where(kept, x, torch.zeros_like(x))},
        hint="inverted dropout: a kept element becomes x / (1 - p), so the expected output equals x",
    )


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_drops_independently(student, p):
    x = torch.ones(1000, 400)
    layer = student.Dropout(p)
    first = expect_tensor(layer(x), name=f"Dropout({p}) on ones(1000, 400)", shape=(1000, 400), dtype=torch.float32)
    zeros = first == 0
    fraction = zeros.double().mean().item()
    # Tolerances are about 8 standard deviations of a correct implementation's statistics.
    if abs(fraction - p) > 0.006:
        fails(
            f"Dropout({p}) zeroed {fraction:.2%} of 400,000 elements; expected {p:.0%} "
            "(zero each element with probability p, keep it with probability 1 - p)"
        )
    rows, columns = zeros.double().mean(1), zeros.double().mean(0)
    if (rows - p).abs().max() > 0.2 or (columns - p).abs().max() > 0.13:
        fails(f"Dropout({p}): some rows or columns lose far more or far fewer than p; drop each element independently")
    second = layer(x) == 0
    if torch.equal(zeros, second):
        fails(f"Dropout({p}) dropped the same elements in two calls; draw a new mask every call (do not reseed)")


def test_dropout_p_one_gives_zeros(student):
    x = nonzero_randn(6, 7, dtype=torch.float64, seed=52)
    assert_close(
        student.Dropout(1.0)(x),
        torch.zeros_like(x),
        name="Dropout(1.0) in training mode",
        hint="p = 1 drops everything: return zeros (dividing by 1 - p = 0 would give NaN)",
    )


@pytest.mark.parametrize("p", [0.3, 0.6])
def test_dropout_gradient(student, p):
    x = nonzero_randn(16, 9, dtype=torch.float64, seed=53).requires_grad_()
    grad_output = randn(16, 9, seed=54)
    out, grads = student.Dropout(p).vjp(x, grad_outputs=grad_output)
    out = expect_tensor(out, name=f"Dropout({p}) output", shape=x.shape, dtype=x.dtype)
    kept = out != 0
    assert_close(
        grads[0],
        torch.where(kept, grad_output / (1 - p), torch.zeros_like(grad_output)),
        name=f"Dropout({p}): gradient with respect to x",
        mistakes={"the gradient misses the 1 / (1 - p) scale": torch.where(kept, grad_output, 0.0)},
        hint="the gradient is grad_output / (1 - p) where the element was kept and 0 where it was dropped",
    )


def test_dropout_uses_no_builtin(student):
    x = nonzero_randn(8, 13, dtype=torch.float32, seed=55)
    out = student.Dropout(0.3)(x)
    assert_no_forbidden_ops(
        student.last_ops, ["*dropout*"], name="Dropout.forward", hint="draw the mask with torch.rand_like"
    )
    expect_tensor(out, name="Dropout(0.3) output", shape=x.shape, dtype=x.dtype)


# -- the block -----------------------------------------------------------------


def test_block_state_dict_names(student, reference):
    """The submodules by name and shape: the grader loads weights by name (RMSNorm has no bias, fc_gate is SwiGLU's)."""
    for norm, activation in [("layernorm", "relu"), ("rmsnorm", "swiglu")]:
        label = f"TransformerBlock({D_MODEL}, {N_HEADS}, {D_FF}, norm={norm!r}, activation={activation!r})"
        kwargs = {"norm": norm, "activation": activation}
        ref = reference.TransformerBlock(D_MODEL, N_HEADS, D_FF, **kwargs)
        expected = {name: tuple(value.shape) for name, value in ref.state_dict().items()}
        got = student.TransformerBlock(D_MODEL, N_HEADS, D_FF, **kwargs).state_dict()
        if not isinstance(got, dict):
            fails(f"{label}.state_dict() did not return a dict of tensors")
        shapes = {name: tuple(value.shape) for name, value in got.items() if isinstance(value, torch.Tensor)}
        extra, missing = sorted(set(shapes) - set(expected)), sorted(set(expected) - set(shapes))
        if extra or missing:
            fails(
                f"{label}.state_dict() has unexpected entries {extra[:6]} and lacks {missing[:6]}; the submodules are "
                "attn (week 02's MultiHeadAttention), norm1, norm2 (LayerNorm or RMSNorm, as `norm` says), "
                "ff (FeedForward) and dropout1, dropout2"
            )
        wrong = [
            f"{name}: {shapes[name]}, expected {shape}" for name, shape in expected.items() if shapes[name] != shape
        ]
        if wrong:
            fails(f"{label}.state_dict() has entries of the wrong shape: {wrong[:4]}")


def block_variants(ref, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """What a block with a known mistake returns, from the reference's own submodules (eval mode)."""

    def attn(h: torch.Tensor) -> torch.Tensor:
        return ref.attn(h, mask=mask)[0]

    post = ref.norm1(x + attn(x))
    post = ref.norm2(post + ref.ff(post))
    pre = x + attn(ref.norm1(x))
    pre = pre + ref.ff(ref.norm2(pre))
    if ref.norm_first:
        branch = attn(ref.norm1(x))
        normed = ref.norm1(x) + attn(ref.norm1(x))
        normed = ref.norm2(normed) + ref.ff(ref.norm2(normed))
        return {
            "the update is added to the normalised x (h = norm(x); h + sublayer(h)); add it to x itself": normed,
            "post-norm (norm after the residual add) where pre-norm was asked for": post,
            "the residual connections are missing (x + ... is not added)": ref.ff(ref.norm2(branch)),
            "the attention's residual connection is missing": branch + ref.ff(ref.norm2(branch)),
        }
    return {
        "pre-norm (norm inside the branch) where post-norm was asked for": pre,
        "the residual connections are missing (x + ... is not added)": ref.norm2(ref.ff(ref.norm1(attn(x)))),
    }


def check_block(student, reference, config: str, dtype: torch.dtype, norm_first: bool, mask_kind: str, seed: int):
    norm, activation, eps = BLOCKS[config]
    kwargs = {"dropout": 0.1, "norm_first": norm_first, "activation": activation, "norm": norm, "eps": eps}
    ref, mine = build(student, reference, "TransformerBlock", (D_MODEL, N_HEADS, D_FF), kwargs, dtype, seed=seed)
    ref.eval()
    mine.eval()
    x = randn(4, 7, D_MODEL, dtype=dtype, seed=seed + 100)
    lengths = [7, 4, 2, 0]  # the last sequence is all padding: its attention rows are empty (zeros, never NaN)
    mask = padding(lengths, 7)
    if mask_kind == "causal":
        mask = mask & torch.ones(7, 7, dtype=torch.bool).tril()
    label = (
        f"TransformerBlock({config}, {'pre' if norm_first else 'post'}-norm, dropout=0.1 in eval mode), "
        f"{mask_kind} mask for lengths {lengths}, {DTYPE_NAMES[dtype]}"
    )
    loose = LOOSE if dtype == torch.float32 else {}
    with torch.no_grad():
        expected = ref(x, mask=mask)
        mistakes = block_variants(ref, x, mask)
    assert_close(
        mine(x, mask=mask),
        expected,
        name=label,
        mistakes=mistakes,
        hint="pre-norm: x + dropout(sublayer(norm(x))); post-norm: norm(x + dropout(sublayer(x))); "
        "dropout is the identity in eval mode",
        **loose,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("config", PADDED)
def test_block_pre_norm(student, reference, config, dtype):
    check_block(student, reference, config, dtype, norm_first=True, mask_kind="padding", seed=70)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("config", PADDED)
def test_block_post_norm(student, reference, config, dtype):
    check_block(student, reference, config, dtype, norm_first=False, mask_kind="padding", seed=80)


@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-norm", "post-norm"])
def test_block_causal(student, reference, norm_first):
    check_block(student, reference, "layernorm-gelu_tanh", torch.float64, norm_first, mask_kind="causal", seed=90)


@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-norm", "post-norm"])
def test_block_dropout_placement(student, reference, norm_first):
    """In training mode with dropout=1 every branch is dropped, which shows where dropout sits."""
    kwargs = {"dropout": 1.0, "norm_first": norm_first, "activation": "gelu"}
    ref, mine = build(student, reference, "TransformerBlock", (D_MODEL, N_HEADS, D_FF), kwargs, torch.float64, seed=100)
    x = randn(2, 5, D_MODEL, seed=101)
    with torch.no_grad():
        expected = ref(x)  # pre-norm: x itself; post-norm: norm2(norm1(x))
    stream_dropped = torch.zeros_like(x) if norm_first else ref.norm2(torch.zeros_like(x)).detach()
    assert_close(
        mine(x),
        expected,
        name=f"TransformerBlock({'pre' if norm_first else 'post'}-norm, dropout=1.0) in training mode",
        mistakes={"dropout applied to the whole residual stream instead of to each branch's output": stream_dropped},
        hint="dropout acts on the sublayer's output, before it is added to the residual stream",
    )


@pytest.mark.parametrize("branch", ["attention", "feed-forward"])
def test_block_dropout_in_training(student, reference, branch):
    """Pre-norm, dropout=0.4 in training mode, the other branch switched off (its output projection zeroed).

    Then ``out = x + dropout(branch)`` exactly: every element is either ``x`` (dropped) or
    ``x + branch / (1 - p)`` (kept), whatever the random draw, and about ``p`` of them are dropped.
    """
    p = 0.4
    zeroed = (
        ("ff.fc2.weight", "ff.fc2.bias") if branch == "attention" else ("attn.out_proj.weight", "attn.out_proj.bias")
    )
    kwargs = {"dropout": p, "norm_first": True, "activation": "gelu"}
    ref, mine = build(
        student, reference, "TransformerBlock", (D_MODEL, N_HEADS, D_FF), kwargs, torch.float64, seed=130, zeroed=zeroed
    )
    x = randn(8, 16, D_MODEL, seed=131)
    with torch.no_grad():
        update = ref.attn(ref.norm1(x))[0] if branch == "attention" else ref.ff(ref.norm2(x))
    label = f"TransformerBlock(pre-norm, dropout={p}) in training mode, only the {branch} branch on"
    out = expect_tensor(mine(x), name=label, shape=x.shape, dtype=torch.float64)

    def explained(scale: float) -> torch.Tensor:
        """Each element as x or x + update * scale, whichever is nearer to the student's."""
        kept = (out - (x + update * scale)).abs() < (out - x).abs()
        return torch.where(kept, x + update * scale, x)

    assert_close(
        out,
        explained(1 / (1 - p)),
        name=f"{label}: each element is x (dropped) or x + {branch}(...) / (1 - p) (kept)",
        mistakes={
            "the branch is dropped twice (survivors scaled by 1 / (1 - p)^2): apply dropout once, "
            "in residual, on the sublayer's output": explained(1 / (1 - p) ** 2),
            "the kept branch outputs are not divided by 1 - p": explained(1.0),
        },
        hint="x + dropout(sublayer(norm(x))), with inverted dropout applied once to the sublayer's output",
    )
    visible = update.abs() > 1e-3
    kept = ((out - x).abs() > 0.5 * update.abs() / (1 - p)) & visible
    dropped = 1 - kept.sum().item() / visible.sum().item()
    tolerance = 8 * math.sqrt(p * (1 - p) / visible.sum().item())  # about eight standard deviations
    if abs(dropped - p) > tolerance:
        fails(f"{label}: {dropped:.1%} of the branch's outputs were dropped; expected {p:.0%} ± {tolerance:.1%}")


@pytest.mark.parametrize(("norm", "activation"), [("layernorm", "gelu"), ("rmsnorm", "gelu_tanh")])
def test_block_uses_no_builtin(student, reference, norm, activation):
    kwargs = {"dropout": 0.3, "activation": activation, "norm": norm}
    _, mine = build(student, reference, "TransformerBlock", (D_MODEL, N_HEADS, D_FF), kwargs, torch.float32, seed=110)
    x = randn(2, 5, D_MODEL, dtype=torch.float32, seed=111)
    out = mine(x)  # training mode: dropout is active
    assert_no_forbidden_ops(
        student.last_ops,
        FORBIDDEN,
        name=f"TransformerBlock(norm={norm!r}, activation={activation!r}, dropout=0.3).forward in training mode",
        hint="use your own gelu, LayerNorm, RMSNorm and Dropout (the attention is week 02's)",
    )
    expect_tensor(out, name="TransformerBlock output", shape=x.shape, dtype=x.dtype)


@pytest.mark.parametrize(
    ("config", "norm_first"),
    [("layernorm-gelu-eps0.05", True), ("rmsnorm-swiglu-eps0.01", False)],
    ids=["pre-norm-layernorm-gelu", "post-norm-rmsnorm-swiglu"],
)
def test_block_gradients(student, reference, config, norm_first):
    norm, activation, eps = BLOCKS[config]
    kwargs = {"dropout": 0.1, "norm_first": norm_first, "activation": activation, "norm": norm, "eps": eps}
    ref, mine = build(student, reference, "TransformerBlock", (D_MODEL, N_HEADS, D_FF), kwargs, torch.float64, seed=120)
    ref.eval()
    mine.eval()
    x = randn(2, 6, D_MODEL, seed=121).requires_grad_()
    mask = padding([6, 3], 6)
    grad_output = randn(2, 6, D_MODEL, seed=122)
    _, grads = mine.vjp(x, grad_outputs=grad_output, mask=mask)
    expected = reference_grads(ref(x, mask=mask), [x, *ref.parameters()], grad_output)
    label = f"{config}, {'pre' if norm_first else 'post'}-norm"
    hint = "keep everything differentiable, the residual stream included: no .detach(), .item() or .data"
    assert_close(grads[0], expected[0], name=f"{label}: gradient with respect to x", hint=hint)
    for (name, _), want in zip(ref.named_parameters(), expected[1:], strict=True):
        got = mine
        for part in name.split("."):
            got = got.attr(part)
        assert_close(got.attr("grad").fetch(), want, name=f"{label}: gradient of {name}", hint=hint)
