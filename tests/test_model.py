"""Tests of fl.model: architecture, Keras-equivalent initialisation, flat vectors, evaluation."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from fl.model import (
    MODELS,
    PaperCNN,
    SmallCNN,
    evaluate,
    flatten_params,
    get_model,
    init_params,
    load_flat_,
    num_params,
    predict,
    unflatten,
)
from fl.training.flops import forward_flops, layer_macs, training_flops_per_example


def test_paper_cnn_parameter_count_matches_the_layer_shapes():
    # conv 1->32 3x3, conv 32->64 3x3, dense 9216->128, dense 128->10 (weights + biases)
    by_hand = (9 * 32 + 32) + (9 * 32 * 64 + 64) + (9216 * 128 + 128) + (128 * 10 + 10)
    assert by_hand == 1_199_882
    assert num_params("paper_cnn") == by_hand
    assert sum(p.numel() for p in PaperCNN().parameters()) == by_hand


def test_small_cnn_is_small():
    assert 10_000 <= num_params("small_cnn") <= 30_000
    assert num_params("small_cnn") == sum(p.numel() for p in SmallCNN().parameters())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_output_shape(name):
    out = get_model(name)(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 10)


def test_get_model_unknown_name_lists_the_choices():
    with pytest.raises(ValueError) as err:
        get_model("resnet")
    assert "paper_cnn" in str(err.value) and "small_cnn" in str(err.value)
    with pytest.raises(ValueError):
        init_params("resnet", 0)
    with pytest.raises(ValueError):
        num_params("")


def test_glorot_ranges_and_zero_biases_paper_cnn():
    flat = init_params("paper_cnn", seed=3)
    assert flat.dtype == torch.float32 and flat.shape == (1_199_882,)
    w1, b1, w2, b2, w3, b3, w4, b4 = unflatten("paper_cnn", flat)
    # Keras fans: conv fan_in = in*kh*kw, fan_out = out*kh*kw; dense: widths
    limits = {
        "w1": math.sqrt(6 / (1 * 9 + 32 * 9)),
        "w2": math.sqrt(6 / (32 * 9 + 64 * 9)),
        "w3": math.sqrt(6 / (9216 + 128)),
        "w4": math.sqrt(6 / (128 + 10)),
    }
    for key, w in zip(limits, (w1, w2, w3, w4)):
        lim = limits[key]
        assert w.abs().max().item() <= lim
        assert w.abs().max().item() > 0.97 * lim, key  # the range is used, not a narrower one
        # uniform on [-lim, lim]: mean 0, variance lim^2 / 3
        assert abs(w.mean().item()) < 0.1 * lim
        assert w.var().item() == pytest.approx(lim**2 / 3, rel=0.15)
    for b in (b1, b2, b3, b4):
        assert torch.count_nonzero(b) == 0


def test_init_is_deterministic_per_seed():
    a = init_params("small_cnn", 7)
    assert torch.equal(a, init_params("small_cnn", 7))
    assert not torch.equal(a, init_params("small_cnn", 8))
    assert torch.equal(init_params("small_cnn", 2**64 - 1), init_params("small_cnn", 2**64 - 1))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_flat_round_trip_and_functional_forward_match_the_module(name):
    flat = init_params(name, 0)
    model = load_flat_(get_model(name), flat).eval()
    assert torch.equal(flatten_params(model), flat)
    x = torch.rand(4, 1, 28, 28)
    expected = model(x)
    got = MODELS[name].functional(unflatten(name, flat), x, None)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    units = sum(u for u, _ in MODELS[name].dropout_layers)
    ones = MODELS[name].functional(unflatten(name, flat), x, torch.ones(4, units))
    torch.testing.assert_close(ones, expected)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_keep_mask_columns_split_as_dropout_layers(name):
    """Zeroing only the last layer's block of ``keep`` silences the hidden layer (logits = final
    bias); zeroing only the first block changes the output, so each block reaches its own layer."""
    flat = init_params(name, 0)
    flat[-10:] = torch.arange(10, dtype=torch.float32)
    params = unflatten(name, flat)
    x = torch.rand(3, 1, 28, 28)
    (first, _), (hidden, _) = MODELS[name].dropout_layers
    keep = torch.ones(3, first + hidden)
    keep[:, first:] = 0
    torch.testing.assert_close(MODELS[name].functional(params, x, keep), flat[-10:].expand(3, 10), rtol=0, atol=0)
    keep = torch.ones(3, first + hidden)
    keep[:, :first] = 0
    assert not torch.equal(MODELS[name].functional(params, x, keep), MODELS[name].functional(params, x, None))


def test_load_flat_rejects_a_wrong_length():
    with pytest.raises(ValueError):
        load_flat_(get_model("small_cnn"), torch.zeros(num_params("small_cnn") + 1))
    with pytest.raises(ValueError):
        unflatten("small_cnn", torch.zeros(3, 3))


def _bias_only_params(name, bias):
    """Parameters whose logits equal ``bias`` for every input (all weights zero)."""
    flat = torch.zeros(num_params(name))
    flat[-10:] = torch.tensor(bias)
    return flat


def test_evaluate_on_a_hand_made_case():
    bias = [0.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0]
    params = _bias_only_params("small_cnn", bias)
    x = torch.rand(7, 1, 28, 28)
    y = torch.tensor([1, 1, 1, 2, 9, 0, 1])
    log_z = math.log(sum(math.exp(b) for b in bias))
    loss_by_hand = sum(log_z - bias[t] for t in y.tolist()) / 7
    acc, loss = evaluate("small_cnn", params, x, y, batch_size=3)
    assert acc == pytest.approx(4 / 7)  # every prediction is class 1
    assert loss == pytest.approx(loss_by_hand, rel=1e-6)
    assert evaluate("small_cnn", params, x, y) == pytest.approx((acc, loss))
    assert predict("small_cnn", params, x, batch_size=2).tolist() == [1] * 7


def test_evaluate_matches_the_module_in_eval_mode():
    flat = init_params("paper_cnn", 5)
    model = load_flat_(get_model("paper_cnn"), flat).eval()
    x, y = torch.rand(6, 1, 28, 28), torch.randint(0, 10, (6,))
    with torch.no_grad():
        logits = model(x)
    acc, loss = evaluate("paper_cnn", flat, x, y, batch_size=4)
    assert acc == pytest.approx((logits.argmax(1) == y).float().mean().item())
    assert loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)


def test_evaluate_rejects_empty_and_mismatched_data():
    params = init_params("small_cnn", 0)
    with pytest.raises(ValueError):
        evaluate("small_cnn", params, torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.int64))
    with pytest.raises(ValueError):
        evaluate("small_cnn", params, torch.zeros(2, 1, 28, 28), torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError):
        evaluate("small_cnn", params[:-1], torch.zeros(2, 1, 28, 28), torch.zeros(2, dtype=torch.int64))


def test_paper_cnn_flops_by_hand():
    # multiply-adds: conv1 26*26*32*9, conv2 24*24*64*(32*9), dense 9216*128, dense 128*10
    macs = [26 * 26 * 32 * 9, 24 * 24 * 64 * 32 * 9, 9216 * 128, 128 * 10]
    assert [m for _, m in layer_macs("paper_cnn")] == macs
    assert forward_flops("paper_cnn") == 2 * sum(macs)
    assert training_flops_per_example("paper_cnn") == 6 * sum(macs) - 2 * macs[0]
    assert 71e6 < training_flops_per_example("paper_cnn") < 73e6  # "about 72 MFLOP per image"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_flops_match_pytorch_flop_counter(name):
    model = get_model(name)
    x, y = torch.rand(3, 1, 28, 28), torch.randint(0, 10, (3,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    assert counter.get_total_flops() == 3 * training_flops_per_example(name)


def _paper_cnn_reference(params, x, keep):
    """The paper CNN in the layer order of the paper (ReLU, then channels-first max pooling)."""
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    h = F.relu(F.conv2d(x, w1, b1))
    h = F.max_pool2d(F.relu(F.conv2d(h, w2, b2)), 2).flatten(1)
    h = F.relu(F.linear(h * keep[:, :9216], w3, b3))
    return F.linear(h * keep[:, 9216:], w4, b4)


def _tied_images(n, seed):
    """White (1.0) images, as the data's backgrounds are, with a square of four grey levels: the
    white margins give exactly equal activations across pooling windows (ties, where only the
    tie-breaking decides which element gets the gradient)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.ones(n, 1, 28, 28)
    x[:, :, 8:20, 8:20] = torch.randint(0, 4, (n, 1, 12, 12), generator=gen).float() / 3
    return x


def test_paper_cnn_pooling_is_the_papers_layer_order_bit_for_bit():
    # PaperCNN.functional pools a channels-last copy and applies the ReLU after the pooling
    # (fl.model._relu_pool); logits and every gradient must equal the paper's order exactly,
    # after several SGD steps too (the tiny first-step weights have no ties of their own)
    gen = torch.Generator().manual_seed(3)
    x, y = _tied_images(20, 1), torch.randint(0, 10, (20,), generator=gen)
    keep = (torch.rand(20, 9216 + 128, generator=gen) >= 0.3).float() / 0.7
    start = init_params("paper_cnn", 0)
    ours = [p.clone().requires_grad_(True) for p in unflatten("paper_cnn", start)]
    ref = [p.clone().requires_grad_(True) for p in unflatten("paper_cnn", start)]
    for _ in range(4):
        logits = PaperCNN.functional(ours, x, keep)
        logits_ref = _paper_cnn_reference(ref, x, keep)
        assert torch.equal(logits, logits_ref)
        grads = torch.autograd.grad(F.cross_entropy(logits, y), ours)
        grads_ref = torch.autograd.grad(F.cross_entropy(logits_ref, y), ref)
        for g, g_ref in zip(grads, grads_ref):
            assert torch.equal(g, g_ref)
        with torch.no_grad():
            torch._foreach_add_(ours, grads, alpha=-0.5)
            torch._foreach_add_(ref, grads_ref, alpha=-0.5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_evaluate_in_cpu_chunks_gives_the_same_numbers(name, monkeypatch):
    # on the CPU evaluate() runs the forward pass in chunks of CPU_FORWARD_CHUNK images and joins
    # the logits: accuracy and loss must be those of one forward pass per batch, bit for bit
    import fl.model

    params = init_params(name, 5) + 0.01
    x = _tied_images(150, 2)
    y = torch.randint(0, 10, (150,), generator=torch.Generator().manual_seed(4))
    chunked = evaluate(name, params, x, y, batch_size=100)
    predicted = predict(name, params, x, batch_size=100)
    monkeypatch.setattr(fl.model, "CPU_FORWARD_CHUNK", 10**9)
    assert evaluate(name, params, x, y, batch_size=100) == chunked
    assert torch.equal(predict(name, params, x, batch_size=100), predicted)
    monkeypatch.setattr(fl.model, "CPU_FORWARD_CHUNK", 7)
    assert evaluate(name, params, x, y, batch_size=100) == chunked
