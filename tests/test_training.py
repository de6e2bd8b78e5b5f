"""Tests of fl.training: local SGD semantics, determinism, and agreement of the two paths."""
import pytest
import torch
import torch.nn.functional as F

from fl.model import MODELS, get_model, init_params, load_flat_, num_params
from fl.training import ClientData, LocalConfig, train_clients
from fl.training.batched import row_weights


def _clients(sizes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [
        ClientData(torch.rand(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen))
        for n in sizes
    ]


def test_local_config_defaults_and_validation():
    cfg = LocalConfig()
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.shuffle) == (5, 20, 0.1, True)
    for bad in (dict(epochs=-1), dict(batch_size=0), dict(lr=float("nan")), dict(epochs=1.5)):
        with pytest.raises(ValueError):
            LocalConfig(**bad)


def test_client_data_validation():
    with pytest.raises(ValueError):
        ClientData(torch.zeros(2, 28, 28), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError):
        ClientData(torch.zeros(2, 1, 28, 28), torch.zeros(2, dtype=torch.int32))
    with pytest.raises(ValueError):
        ClientData(torch.zeros(2, 1, 28, 28), torch.zeros(3, dtype=torch.int64))
    assert len(ClientData(torch.zeros(4, 1, 28, 28), torch.zeros(4, dtype=torch.int64))) == 4


def test_train_clients_rejects_bad_requests():
    start = init_params("small_cnn", 0)
    clients = _clients([3])
    cfg = LocalConfig(epochs=1)
    with pytest.raises(ValueError):
        train_clients("small_cnn", start[:-1], clients, cfg, [0])
    with pytest.raises(ValueError):
        train_clients("small_cnn", start, clients, cfg, [0, 1])
    with pytest.raises(ValueError):
        train_clients("small_cnn", start, clients, cfg, [0], path="gpu")
    with pytest.raises(ValueError):
        train_clients("lenet", start, clients, cfg, [0])


def _manual_sgd(name, start, x, y, seed, lr, batches):
    """Local SGD written out: dropout masks from the documented draw, module forward, autograd.

    ``shuffle=False`` and one epoch: the client's generator draws ``rand(n, units)`` once;
    example ``i`` keeps unit ``j`` of a layer with rate ``r`` iff ``u[i, j] >= r``.
    """
    cls = MODELS[name]
    units = [u for u, _ in cls.dropout_layers]
    rates = [r for _, r in cls.dropout_layers]
    u = torch.rand(x.shape[0], sum(units), generator=torch.Generator().manual_seed(seed))
    masks = [(part >= r).float() / (1 - r) for part, r in zip(u.split(units, dim=1), rates)]
    model = load_flat_(get_model(name), start.clone())
    for lo, hi in batches:
        xb, yb = x[lo:hi], y[lo:hi]
        if name == "paper_cnn":
            h = F.max_pool2d(F.relu(model.conv2(F.relu(model.conv1(xb)))), 2).flatten(1)
        else:
            h = F.max_pool2d(F.relu(model.conv1(xb)), 2)
            h = F.max_pool2d(F.relu(model.conv2(h)), 2).flatten(1)
        h = F.relu(model.fc1(h * masks[0][lo:hi])) * masks[1][lo:hi]
        loss = F.cross_entropy(model.fc2(h), yb)
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]) - start


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("path", ["loop", "batched"])
def test_sgd_steps_match_manual_autograd(name, path):
    start = init_params(name, 1)
    (data,) = _clients([5], seed=1)
    # batch = whole data: one step
    cfg = LocalConfig(epochs=1, batch_size=5, lr=0.3, shuffle=False)
    got = train_clients(name, start, [data], cfg, [11], path=path)[0]
    want = _manual_sgd(name, start, data.x, data.y, 11, 0.3, [(0, 5)])
    scale = want.abs().max().item()
    assert scale > 0
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5 * scale)
    # batch 3 over 5 examples: a full batch, then the partial batch of 2 (mean over 2)
    cfg = LocalConfig(epochs=1, batch_size=3, lr=0.3, shuffle=False)
    got = train_clients(name, start, [data], cfg, [11], path=path)[0]
    want2 = _manual_sgd(name, start, data.x, data.y, 11, 0.3, [(0, 3), (3, 5)])
    torch.testing.assert_close(got, want2, rtol=0, atol=1e-5 * want2.abs().max().item())
    assert not torch.allclose(want, want2)


def test_dropout_is_active_in_training():
    start = init_params("small_cnn", 1)
    (data,) = _clients([6], seed=2)
    cfg = LocalConfig(epochs=1, batch_size=6, lr=0.3, shuffle=False)
    a = train_clients("small_cnn", start, [data], cfg, [1])[0]
    b = train_clients("small_cnn", start, [data], cfg, [2])[0]
    assert not torch.equal(a, b)  # no shuffling, so only the dropout masks differ


def test_loop_is_deterministic_bit_for_bit_and_independent_of_other_clients():
    start = init_params("small_cnn", 4)
    clients = _clients([9, 14, 3], seed=4)
    cfg = LocalConfig(epochs=2, batch_size=4, lr=0.1, shuffle=True)
    seeds = [5, 2**64 - 1, 123456789]
    a = train_clients("small_cnn", start, clients, cfg, seeds, path="loop")
    b = train_clients("small_cnn", start, clients, cfg, seeds, path="loop")
    assert a.dtype == torch.float32 and a.device.type == "cpu" and a.shape == (3, num_params("small_cnn"))
    assert torch.equal(a, b)
    alone = train_clients("small_cnn", start, clients[1:2], cfg, seeds[1:2], path="loop")
    assert torch.equal(alone[0], a[1])
    other_seed = train_clients("small_cnn", start, clients[:1], cfg, [6], path="loop")
    assert not torch.equal(other_seed[0], a[0])
    assert torch.equal(train_clients("small_cnn", start, clients, cfg, seeds), a)  # auto = loop on CPU


def test_batched_is_deterministic():
    start = init_params("small_cnn", 4)
    clients = _clients([9, 2], seed=5)
    cfg = LocalConfig(epochs=2, batch_size=4)
    a = train_clients("small_cnn", start, clients, cfg, [1, 2], path="batched")
    assert torch.equal(a, train_clients("small_cnn", start, clients, cfg, [1, 2], path="batched"))


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("shuffle", [True, False])
def test_batched_matches_loop_on_ragged_clients(name, shuffle):
    start = init_params(name, 3)
    sizes = [1, 7, 0, 12, 4] if name == "paper_cnn" else [1, 7, 0, 23, 4, 16]
    clients = _clients(sizes, seed=6)
    # The paper CNN at lr 0.1 is sensitive to its inputs: a relative perturbation of 1e-7 of the
    # start moves its update by about 2 % after three epochs on one 12-image client (a ReLU or
    # max-pool decision flips), so float32 summation order alone (which differs between the two
    # paths and between CPUs) can exceed the tolerance below. At lr 0.01 the same check keeps
    # its 1e-5 tolerance with room.
    lr = 0.01 if name == "paper_cnn" else 0.1
    cfg = LocalConfig(epochs=2, batch_size=5, lr=lr, shuffle=shuffle)
    seeds = list(range(100, 100 + len(sizes)))
    loop = train_clients(name, start, clients, cfg, seeds, path="loop")
    batched = train_clients(name, start, clients, cfg, seeds, path="batched")
    for k, n in enumerate(sizes):
        scale = loop[k].abs().max().item()
        if n == 0:
            assert torch.count_nonzero(loop[k]) == 0 and torch.count_nonzero(batched[k]) == 0
        else:
            assert scale > 0
            torch.testing.assert_close(batched[k], loop[k], rtol=0, atol=1e-5 * scale)


@pytest.mark.parametrize("path", ["loop", "batched"])
def test_zero_example_clients_and_zero_epochs_give_zero_updates(path):
    start = init_params("small_cnn", 0)
    dim = num_params("small_cnn")
    out = train_clients("small_cnn", start, _clients([0, 0]), LocalConfig(epochs=1), [1, 2], path=path)
    assert out.shape == (2, dim) and torch.count_nonzero(out) == 0
    out = train_clients("small_cnn", start, _clients([3]), LocalConfig(epochs=0), [1], path=path)
    assert torch.count_nonzero(out) == 0
    assert train_clients("small_cnn", start, [], LocalConfig(), [], path=path).shape == (0, dim)


def test_row_weights_give_each_true_batch_weight_one():
    w = row_weights([5, 2, 1], batch_size=3)
    third, half = 1 / 3, 1 / 2
    expected = torch.tensor(
        [
            [third, third, third, half, half, 0.0],
            [half, half, 0.0, 0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        ]
    )
    torch.testing.assert_close(w, expected)


def test_training_reduces_the_loss():
    """Local SGD actually learns: a client's own loss drops after training on it."""
    from fl.model import evaluate

    start = init_params("small_cnn", 0)
    (data,) = _clients([40], seed=9)
    before = evaluate("small_cnn", start, data.x, data.y)[1]
    delta = train_clients("small_cnn", start, [data], LocalConfig(epochs=5, batch_size=10, lr=0.1), [3])[0]
    after = evaluate("small_cnn", start + delta, data.x, data.y)[1]
    assert after < before
