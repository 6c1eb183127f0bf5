"""Public tests for week 10: run them with `course check 10`.

They compare your code with PyTorch itself: F.cross_entropy, the schedules' formulas,
torch.nn.utils.clip_grad_norm_ (run here, on a copy of your gradients), the rules of
torch.amp.GradScaler, autograd through your own model, and a mixture of experts computed
here with loops and F.linear from your layer's weights. The hidden tests check more cases
(float32, padding on either side, every schedule landmark, float16 with loss scaling,
overflows, the optimiser's groups, the MoE's capacity and load-balancing loss in detail, the
forbidden built-ins) and read your lab hand-in: report.md, loss_curve.png, train_log.csv and
checkpoint.pt beside training.py.
"""

import math

import torch
import torch.nn.functional as F

from autograder import assert_close, assert_equal

CONFIG = {"vocab_size": 23, "max_len": 16, "d_model": 16, "n_heads": 2, "n_layers": 2, "d_ff": 24, "dropout": 0.0}


def rand(*shape, seed=0, scale=1.0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=generator, dtype=torch.float64) * scale).to(dtype)


def small_gpt(student, dtype=torch.float64, std=0.3):
    model = student.GPT(**CONFIG)
    if dtype == torch.float64:
        model.double()
    state = {}
    for i, (name, value) in enumerate(model.state_dict().items()):
        offset = 1.0 if "norm" in name and name.endswith("weight") else 0.0  # LayerNorm weights near 1
        state[name] = rand(*value.shape, seed=i, scale=std, dtype=dtype) + offset
    model.load_state_dict(state)
    model.eval()
    return model


def batch(seed=1):
    ids = torch.randint(23, (2, 9), generator=torch.Generator().manual_seed(seed))
    mask = torch.tensor([[1] * 9, [1] * 6 + [0] * 3])
    return ids, mask


def test_causal_loss_matches_cross_entropy(student):
    logits = rand(2, 9, 23, seed=2, scale=2.0)
    ids, mask = batch()
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    expected = F.cross_entropy(logits[:, :-1].reshape(-1, 23), targets.reshape(-1), ignore_index=-100)
    assert_close(
        student.causal_lm_loss(logits, ids, mask),
        expected,
        name="causal_lm_loss with one padded row",
        hint="logits[:, :-1] against input_ids[:, 1:], padded targets ignored",
    )


def test_schedules_follow_their_formulas(student):
    for step, want in [(0, 0.0), (5, 5e-4), (10, 1e-3), (55, 5.5e-4), (100, 1e-4), (150, 1e-4)]:
        got = student.cosine_with_warmup(step, 10, 100, 1e-3, 1e-4)
        assert abs(got - want) < 1e-12, f"cosine_with_warmup({step}, 10, 100, 1e-3, 1e-4) = {got}, expected {want}"
    for step in (1, 20, 4000, 9000):
        want = 512**-0.5 * min(step**-0.5, step * 4000**-1.5)
        got = student.inverse_sqrt(step, 512, 4000)
        assert abs(got - want) < 1e-15, f"inverse_sqrt({step}, 512, 4000) = {got}, expected {want}"
    assert student.inverse_sqrt(0, 512, 4000) == 0.0, "inverse_sqrt at step 0 should be 0.0"


def test_clipping_matches_torch(student):
    net = student.nn.Sequential(student.nn.Linear(5, 4), student.nn.Linear(4, 3))
    net.double()
    net.vjp(rand(6, 5, seed=3), grad_outputs=rand(6, 3, seed=4, scale=5.0))
    before = student.gradients(net)
    params = []
    for grad in before.values():
        param = torch.nn.Parameter(torch.zeros_like(grad))
        param.grad = grad.clone()
        params.append(param)
    expected_total = torch.nn.utils.clip_grad_norm_(params, 1.0)
    total = student.clip_grad_norm(net, 1.0)
    assert abs(float(total) - float(expected_total)) < 1e-9, (
        f"clip_grad_norm returned {float(total)}, torch says {float(expected_total)}"
    )
    after = student.gradients(net)
    for (name, grad), param in zip(after.items(), params, strict=True):
        assert_close(
            grad,
            param.grad,
            name=f"gradient of {name} after clipping to a global norm of 1",
            hint="scale every gradient in place by max_norm / (total + 1e-6)",
        )


def test_loss_scaler_follows_grad_scaler_rules(student):
    scaler = student.DynamicLossScaler(8.0, 2.0, 0.5, 2)
    seen = []
    for found_inf in (False, False, True, False, False, False):
        scaler.update(found_inf)
        seen.append((scaler.loss_scale.fetch(), scaler.growth_tracker.fetch()))
    assert seen == [(8.0, 1), (16.0, 0), (8.0, 0), (8.0, 1), (16.0, 0), (16.0, 1)], (
        f"(loss_scale, growth_tracker) after each update: {seen}"
    )


def test_forward_backward_is_the_chain_rule_through_your_model(student):
    model = small_gpt(student)
    ids, mask = batch(5)
    loss, logits = student.forward_backward(model, ids, mask)
    grads = student.gradients(model)
    # the loss of the model's logits, and its gradient with respect to them, computed here
    local = logits.clone().requires_grad_()
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    expected_loss = F.cross_entropy(local[:, :-1].reshape(-1, 23), targets.reshape(-1), ignore_index=-100)
    (grad_logits,) = torch.autograd.grad(expected_loss, [local])
    assert_close(
        loss, expected_loss.detach(), name="forward_backward's loss", hint="causal_lm_loss of the model's logits"
    )
    model.zero_grad(set_to_none=True)
    model.vjp(ids, attention_mask=mask, grad_outputs=grad_logits)  # backpropagate that gradient through your model
    for name, grad in student.gradients(model).items():
        assert_close(
            grads[name],
            grad,
            name=f"forward_backward's gradient of {name}",
            hint="zero the gradients, then loss.backward()",
        )


def test_bfloat16_autocast_is_close_to_float32(student):
    model = small_gpt(student, torch.float32)
    ids, mask = batch(6)
    loss32, _ = student.forward_backward(model, ids, mask)
    loss16, logits16 = student.forward_backward(model, ids, mask, amp_dtype="bfloat16")
    assert logits16.dtype == torch.bfloat16, (
        f"under bfloat16 autocast the logits should be bfloat16, got {logits16.dtype}"
    )
    assert loss16.dtype == torch.float32, f"the loss should be computed in float32, got {loss16.dtype}"
    assert abs(loss16.item() - loss32.item()) < 1e-2 * loss32.item(), (
        f"bfloat16 loss {loss16.item()} vs float32 {loss32.item()}"
    )


def test_checkpointing_changes_memory_not_gradients(student):
    model = small_gpt(student)
    ids, mask = batch(7)
    g = rand(2, 9, 23, seed=8)
    model.vjp(ids, attention_mask=mask, grad_outputs=g)
    plain = student.gradients(model)
    plain_bytes = student.saved_activation_bytes(model, ids)
    model.set_gradient_checkpointing(True)
    model.zero_grad(set_to_none=True)
    model.vjp(ids, attention_mask=mask, grad_outputs=g)
    for name, grad in student.gradients(model).items():
        assert_close(
            grad,
            plain[name],
            name=f"gradient of {name} with checkpointing",
            hint="checkpoint(block, x, mask, use_reentrant=False)",
        )
    checkpointed_bytes = student.saved_activation_bytes(model, ids)
    assert checkpointed_bytes * 2 < plain_bytes, (
        f"checkpointing kept {checkpointed_bytes} bytes of activations, without it {plain_bytes}"
    )


def test_moe_matches_loops_over_tokens(student):
    layer = student.MoEFeedForward(8, 12, 3, top_k=2, capacity_factor=1.0, activation="relu")
    layer.double()
    state = {name: rand(*v.shape, seed=20 + i, scale=0.5) for i, (name, v) in enumerate(layer.state_dict().items())}
    layer.load_state_dict(state)
    x = rand(2, 5, 8, seed=30)
    out, aux = layer(x)
    tokens = x.reshape(10, 8)
    probs = torch.softmax(tokens @ state["router.weight"].T, dim=-1)
    capacity = math.ceil(1.0 * 10 * 2 / 3)  # 7
    top, index = probs.topk(2, dim=-1)
    gates = top / top.sum(-1, keepdim=True)
    used, expected = [0, 0, 0], torch.zeros(10, 8, dtype=torch.float64)
    for j in range(2):  # first choices of every token, then second choices
        for t in range(10):
            e = int(index[t, j])
            if used[e] < capacity:
                used[e] += 1
                hidden = torch.relu(
                    F.linear(tokens[t], state[f"experts.{e}.fc1.weight"], state[f"experts.{e}.fc1.bias"])
                )
                expected[t] += gates[t, j] * F.linear(
                    hidden, state[f"experts.{e}.fc2.weight"], state[f"experts.{e}.fc2.bias"]
                )
    assert_close(
        out,
        expected.view(2, 5, 8),
        name="MoEFeedForward output",
        hint="top-2 gates renormalised, capacity in choice-major order",
    )
    top1 = torch.bincount(index[:, 0], minlength=3).double() / 10
    assert_close(
        aux, 3 * (top1 * probs.mean(0)).sum(), name="MoEFeedForward load-balancing loss", hint="E * sum_e f_e * P_e"
    )
    _, index_got, _, kept = layer.route(tokens)
    assert_equal(index_got, index, name="route: expert_index")


def test_checkpoint_survives_a_round_trip(student):
    model = small_gpt(student, torch.float32)
    vocab = "abcdefghijklmnopqrstuvw"
    student.save_checkpoint("public_checkpoint.pt", model, None, 3, CONFIG, vocab)
    loaded, state = student.load_checkpoint("public_checkpoint.pt")
    assert (state["step"], state["vocab"]) == (3, vocab), "the checkpoint should hold the step and the vocabulary"
    ids, _ = batch(9)
    assert_close(loaded(ids), model(ids), name="logits of the reloaded model")
    text = student.generate_text(loaded, vocab, "abc", 10, 0.8, 0)
    assert isinstance(text, str), f"generate_text returned {text!r}, not a string"
    assert len(text) == 13, f"generate_text returned {text!r}: the prompt and 10 new characters were asked for"
    assert text.startswith("abc"), f"generate_text returned {text!r}, which does not start with the prompt"
