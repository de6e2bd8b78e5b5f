"""Round parameters: the ring Z_(2^k), the threshold t, the SecAgg+ graph degree, the side field.

The calculation behind :func:`secagg_plus_parameters` is written out in ``docs/secagg.md``
(section "Parameter choices"); the names here follow it.
"""
from __future__ import annotations

import dataclasses
import math

from .errors import ConfigError

__all__ = [
    "P256_ORDER",
    "MAX_CLIENTS",
    "MAX_DIM",
    "MAX_FIELD_DIM",
    "SecAggParams",
    "default_threshold",
    "secagg_plus_parameters",
    "GraphChoice",
    "GRINDING_BITS",
    "complete_graph_active_threshold",
    "SPARSE_ACTIVE_DOCS_SECTION",
    "sparse_active_refusal",
]

#: order of the NIST P-256 group: the default modulus of the side sum (commitment randomness)
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
#: client ids are 1..n and go on the wire as u16 (Shamir evaluation points are the ids)
MAX_CLIENTS = 65_535
#: largest vector accepted by the codec: 2^28 coordinates (1 GiB at 32 bits)
MAX_DIM = 1 << 28
#: largest side vector over the prime field
MAX_FIELD_DIM = 1 << 16
#: default grinding budget of the sparse active derivation (``unsafe_sparse_active`` only): the
#: colluders and the server may evaluate up to 2^40 candidate graphs (key choices, U1 subsets) per
#: round; the placement-dependent terms of the security bound are multiplied by it (``docs/secagg.md``, "Placement and grinding")
GRINDING_BITS = 40.0
#: the section of ``docs/secagg.md`` that explains why the active variant refuses the SecAgg+ graph
SPARSE_ACTIVE_DOCS_SECTION = "Ring cut by uneven share delivery"


def sparse_active_refusal(what: str) -> str:
    """The message of the :class:`ConfigError` that refuses ``what`` (a sparse graph, active variant)."""
    return (
        f"{what}: the active variant runs on the complete graph only. On a SecAgg+ (sparse) graph a "
        f"malicious server with no colluders cuts the ring by uneven share delivery (an arc of honest "
        f"clients never receives its outside neighbours' shares, so it does not mask with them) and two "
        f"survivor views, and learns the exact sum of the arc's inputs within every budget; nothing signed "
        f"binds who masked with whom (docs/secagg.md, section '{SPARSE_ACTIVE_DOCS_SECTION}'). Use the "
        f"complete graph (degree=None, graph='complete'); unsafe_sparse_active=True builds the sparse set "
        f"anyway, for research on the fix only"
    )



@dataclasses.dataclass(frozen=True)
class GraphChoice:
    """Result of :func:`secagg_plus_parameters`.

    Attributes:
      degree: number of neighbours of each client (``None``: the complete graph).
      threshold: shares needed to reconstruct a secret (out of ``degree + 1`` holders).
      log2_security_failure: log2 of the bound on the probability that the adversary learns an
        honest client's input (corrupted neighbours reach t, the honest graph splits, or - active
        variant - two views of the survivors both reach t), grinding included. For the sparse
        active sets (``unsafe_sparse_active=True`` only) this figure is NOT a security bound: its
        split term assumes what the ring-cut attack breaks (``docs/secagg.md``).
      log2_correctness_failure: log2 of the bound on the probability that the round fails
        although the dropout and corruption rates hold.
      dropout_budget: (active variant; ``None`` otherwise) the most clients missing from U3
        (dropped or excluded, whole round) an honest client accepts before it refuses to reveal
        any share.
      neighbour_dropout_budget: (active variant) the same among the client's own share holders.
      grinding_bits: (active variant) log2 of the number of candidate graphs the adversary is
        assumed to evaluate; counted in ``log2_security_failure``.
    """

    degree: int | None
    threshold: int
    log2_security_failure: float
    log2_correctness_failure: float
    dropout_budget: int | None = None
    neighbour_dropout_budget: int | None = None
    grinding_bits: float = 0.0


def default_threshold(holders: int) -> int:
    """The default threshold for ``holders`` share holders: ``floor(2 * holders / 3) + 1``.

    Tolerates a third of the holders dropping out while any set of ``t`` holders is a strict
    majority (so a server cannot collect two disjoint reconstructing sets).
    """
    if holders < 2:
        raise ConfigError(f"holders: need at least 2 share holders, got {holders}")
    return (2 * holders) // 3 + 1


def _log2_binom_sf(k_minus_1: int, n: int, p: float) -> float:
    """log2 P[Bin(n, p) > k_minus_1]."""
    from scipy.stats import binom  # imported here: scipy is slow to import and rarely needed

    if p <= 0.0:
        return -math.inf if k_minus_1 >= 0 else 0.0
    return float(binom.logsf(k_minus_1, n, p)) / math.log(2)


def _log2_binom_cdf(k: int, n: int, p: float) -> float:
    """log2 P[Bin(n, p) <= k]."""
    from scipy.stats import binom

    if k < 0:
        return -math.inf
    if p >= 1.0:
        return -math.inf if k < n else 0.0
    return float(binom.logcdf(k, n, p)) / math.log(2)


def _check_rates(n: int, dropout_rate: float, corruption_rate: float) -> None:
    if not 3 <= n <= MAX_CLIENTS:
        raise ConfigError(f"num_clients: expected 3..{MAX_CLIENTS}, got {n}")
    if not 0.0 <= dropout_rate < 1.0:
        raise ConfigError(f"dropout_rate: expected 0 <= rate < 1, got {dropout_rate}")
    if not 0.0 <= corruption_rate < 1.0:
        raise ConfigError(f"corruption_rate: expected 0 <= rate < 1, got {corruption_rate}")
    if dropout_rate + corruption_rate >= 1.0:
        raise ConfigError("dropout_rate + corruption_rate must be below 1")


def _failure_bounds(n: int, k: int, t: int, delta: float, gamma: float) -> tuple[float, float]:
    """(log2 security failure, log2 correctness failure) for degree k, threshold t (see docs)."""
    lg_n = math.log2(n)
    # security (a): some honest client has >= t corrupted neighbours
    sec_shares = lg_n + _log2_binom_sf(t - 1, k, gamma)
    # security (b): the ring of a Harary graph minus the removed (corrupted or dropped) clients
    # splits only if two disjoint runs of k/2 consecutive clients are all removed
    removed = delta + gamma
    sec_split = (2 * lg_n - 1 + k * math.log2(removed)) if (removed > 0 and k < n - 1) else -math.inf
    security = max(sec_shares, sec_split)
    # correctness: some client has fewer than t honest, surviving holders (self not counted)
    correctness = lg_n + _log2_binom_cdf(t - 1, k, 1.0 - delta - gamma)
    return security, correctness


def _log2_binom_sf_ge(a: int, n: int, p: float) -> float:
    """log2 P[Bin(n, p) >= a]."""
    if a <= 0:
        return 0.0
    if a > n:
        return -math.inf
    return _log2_binom_sf(a - 1, n, p)


def _smallest_budget(n: int, p: float, log2_target: float) -> int:
    """The smallest D with ``P[Bin(n, p) > D] <= 2^log2_target`` (D = n always qualifies)."""
    lo, hi = 0, n
    while lo < hi:  # the tail is decreasing in D
        mid = (lo + hi) // 2
        if _log2_binom_sf(mid, n, p) <= log2_target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def complete_graph_active_threshold(n: int, corrupted: int) -> int:
    """Smallest t on the complete graph that two views cannot both reach: ``2t > n + corrupted``.

    Each honest client answers one unmasking request, so the honest clients' shares of a target
    split between the two views while the ``corrupted`` colluders answer in both; both views reach
    t only if ``n - corrupted + 2 * corrupted >= 2t`` (``docs/secagg.md``, "Against a malicious
    server (active variant)"). This is the active variant's threshold: it runs on the complete graph only.
    """
    return (n + corrupted) // 2 + 1


def _active_failure_bounds(n: int, k: int, t: int, d_local: int, d_global: int, gamma: float, grinding: float) -> tuple[float, float]:
    """(log2 two-views failure, log2 split failure) of the active variant, grinding included."""
    lg_n = math.log2(n)
    # two views: some honest client has >= 2t - (k + 1) corrupted holders (then the honest holders
    # split between two views and the corrupted ones answer in both, reaching t twice)
    views = lg_n + _log2_binom_sf_ge(2 * t - k - 1, k, gamma) + grinding
    # split: two disjoint windows of k/2 ring positions, each ending next to an honest survivor,
    # in which every honest client is missing; the client next to each window sees its honest
    # members missing in its own neighbourhood (<= d_local), and together they are <= d_global
    half = k // 2
    per_window = _log2_binom_sf_ge(half - d_local, half, gamma)
    split = 2 * lg_n - 1 + min(2 * per_window, _log2_binom_sf_ge(k - d_global, k, gamma)) + grinding
    return views, split


def _log2_sum(*terms: float) -> float:
    """log2 of the sum of 2^term (a union bound over the terms)."""
    finite = [x for x in terms if x != -math.inf]
    if not finite:
        return -math.inf
    top = max(finite)
    return top + math.log2(sum(2.0 ** (x - top) for x in finite))


def _active_secagg_plus(n: int, delta: float, gamma: float, sigma: float, eta: float, grinding: float) -> GraphChoice:
    lg_n = math.log2(n)
    # correctness is the union of three events, budgeted 1/4 + 1/4 + 1/2 of 2^-eta: the round's
    # missing clients exceed the global budget, some neighbourhood's exceed the local one, some
    # client has fewer than t honest surviving holders; security is two views or a split, 1/2 each
    d_global = _smallest_budget(n, delta + gamma, -eta - 2)
    for k in range(2, n - 1, 2):
        d_local = _smallest_budget(k, delta + gamma, -eta - 2 - lg_n)
        for t in range(k // 2 + 1, k + 2):
            holders_term = lg_n + _log2_binom_cdf(t - 1, k, 1.0 - delta - gamma)
            if holders_term > -eta - 1:
                break  # larger t only makes correctness worse
            budget_local = min(d_local, k + 1 - t)
            views, split = _active_failure_bounds(n, k, t, budget_local, d_global, gamma, grinding)
            if split > -sigma - 1:
                break  # a larger t can only lower the local budget
            if views <= -sigma - 1:
                correctness = _log2_sum(holders_term, lg_n + _log2_binom_sf(budget_local, k, delta + gamma),
                                        _log2_binom_sf(d_global, n, delta + gamma))
                return GraphChoice(k, t, _log2_sum(views, split), correctness, min(d_global, n - t), budget_local, grinding)
    return _active_complete_graph(n, delta, gamma)


def _active_complete_graph(n: int, delta: float, gamma: float) -> GraphChoice:
    """The active variant's parameters: the complete graph, worst case over c = floor(gamma n)
    colluders, ``2t > n + c``; the round completes while at least t clients answer (c colluders
    silent, floor(delta n) honest drops); it cannot be cut, so the budget is what t allows."""
    c = math.floor(gamma * n)
    t = complete_graph_active_threshold(n, c)
    if t <= n - c - math.floor(delta * n):
        return GraphChoice(None, t, -math.inf, -math.inf, n - t, n - t, 0.0)
    raise ConfigError(
        f"no threshold on the complete graph has 2t > n + floor(corruption_rate n) and still finishes with "
        f"floor(corruption_rate n) silent colluders and floor(dropout_rate n) drops, for n={n}, "
        f"dropout_rate={delta}, corruption_rate={gamma}"
    )


def secagg_plus_parameters(
    n: int,
    *,
    dropout_rate: float,
    corruption_rate: float,
    security_bits: float = 40.0,
    correctness_bits: float = 20.0,
    active: bool = False,
    grinding_bits: float = GRINDING_BITS,
    unsafe_sparse_active: bool = False,
) -> GraphChoice:
    """Smallest even SecAgg+ degree (and its threshold) meeting both failure targets.

    Each client is dropped with probability ``dropout_rate`` and corrupted with probability
    ``corruption_rate``, independently. For degree ``k`` (the Harary graph H(n, k) on a random
    permutation of the clients) and threshold ``t`` the function bounds, with union bounds over
    the ``n`` clients:

    * security: ``n * P[Bin(k, gamma) >= t] + C(n, 2) * (gamma + delta)^k <= 2^-security_bits``;
    * correctness: ``n * P[Bin(k, 1 - gamma - delta) < t] <= 2^-correctness_bits``;

    and takes the smallest ``t`` that is secure and a strict majority of the ``k + 1`` holders.
    When no degree below ``n - 1`` works the complete graph is returned (``degree=None``), with
    the worst-case rule ``gamma * n < t <= n - floor(gamma n) - floor(delta n)`` and ``t`` a strict
    majority (its failure bounds are then reported as ``-inf``: exact under the stated rates).

    With ``active=True`` the server is malicious, and the result is always the complete graph
    (``degree=None``) with ``t = complete_graph_active_threshold(n, floor(gamma n))``, i.e. the
    smallest t with ``2t > n + floor(gamma n)`` (worst case over the colluders, no probability), and
    the budget ``n - t``: on a SecAgg+ graph a malicious server cuts the ring by uneven share
    delivery (``docs/secagg.md``, "Ring cut by uneven share delivery"). Only with
    ``unsafe_sparse_active=True`` does it run the sparse derivation of ``docs/secagg.md`` (per client
    ``P[Bin(k, gamma) >= 2t - k - 1]`` for two views, two windows of ``k/2`` ring positions for the
    split, both times ``2^grinding_bits``, with dropout budgets); its split bound rests on an
    assumption that attack breaks, so those sets are for research on the fix, not for use.

    Args:
      n: clients in the round.
      dropout_rate: tolerated fraction of dropouts (delta).
      corruption_rate: tolerated fraction of clients colluding with the server (gamma).
      security_bits: sigma, the statistical security parameter.
      correctness_bits: eta, the correctness parameter.
      active: derive the parameters against a malicious server (the active variant).
      grinding_bits: (active, with ``unsafe_sparse_active``) log2 of the graphs the adversary may try.
      unsafe_sparse_active: (active) run the sparse derivation, whose split bound the ring-cut
        attack shows unsound; research only.

    Returns:
      The :class:`GraphChoice`.

    Raises:
      ConfigError: the rates are out of range, no threshold meets both targets even on the
        complete graph, or ``unsafe_sparse_active`` without ``active``.
    """
    _check_rates(n, dropout_rate, corruption_rate)
    if not isinstance(unsafe_sparse_active, bool):
        raise ConfigError(f"unsafe_sparse_active: expected a bool, got {unsafe_sparse_active!r}")
    if unsafe_sparse_active and not active:
        raise ConfigError("unsafe_sparse_active applies to the active variant only")
    if active:
        if not 0 <= grinding_bits <= 128:
            raise ConfigError(f"grinding_bits: expected 0..128, got {grinding_bits}")
        if not unsafe_sparse_active:
            return _active_complete_graph(n, dropout_rate, corruption_rate)
        return _active_secagg_plus(n, dropout_rate, corruption_rate, security_bits, correctness_bits, grinding_bits)
    for k in range(2, n - 1, 2):
        t_low = (k + 1) // 2 + 1
        for t in range(t_low, k + 2):
            security, correctness = _failure_bounds(n, k, t, dropout_rate, corruption_rate)
            if correctness > -correctness_bits:
                break  # larger t only makes correctness worse
            if security <= -security_bits:
                return GraphChoice(k, t, security, correctness)
    # complete graph: with at most floor(gamma n) corrupted and floor(delta n) dropped clients
    # (worst case, not random) the round is secure if t > gamma n and correct if
    # t <= n - floor(gamma n) - floor(delta n)
    t = max(math.floor(corruption_rate * n) + 1, n // 2 + 1)
    if t <= n - math.floor(corruption_rate * n) - math.floor(dropout_rate * n):
        return GraphChoice(None, t, -math.inf, -math.inf)
    raise ConfigError(
        f"no threshold gives 2^-{security_bits} security and 2^-{correctness_bits} correctness for "
        f"n={n}, dropout_rate={dropout_rate}, corruption_rate={corruption_rate}"
    )


@dataclasses.dataclass(frozen=True)
class SecAggParams:
    """The public parameters of one secure-aggregation round, agreed by all parties.

    Attributes:
      num_clients: n; clients carry protocol ids ``1..n`` (the Shamir evaluation points).
      threshold: t, the number of shares that reconstruct a secret.
      mask_bits: k; inputs and masks live in Z_(2^k), ``1 <= k <= 64``.
      degree: ``None`` for classic SecAgg (complete graph), else the even SecAgg+ degree.
      active: the variant against an active server (Ed25519 signatures, consistency check).
      field_modulus: prime modulus of the optional side vector (default: the P-256 order).
      field_dim: length of the side vector (0: none).
      dropout_budget: the most clients that may be missing from U3 (dropped at any step before
        the masked input, or excluded), over the whole round; an honest client of the active
        variant refuses to sign U3 or reveal shares beyond it (:class:`~secagg.errors.DropoutBudgetExceeded`).
        Default: ``n - t`` (what the threshold allows anyway).
      neighbour_dropout_budget: the same among a client's own holders (both variants check it).
        Default: ``holders - t``; in the active variant on the SecAgg+ graph also below
        ``degree / 2`` (removals alone then cannot cut the ring - but uneven share delivery can).
      unsafe_sparse_active: the research opt-in that allows ``active=True`` with a ``degree``.
        Without it that combination is a :class:`ConfigError`: a malicious server cuts the sparse
        ring by uneven share delivery and reads the sum of an arc of honest clients
        (``docs/secagg.md``, "Ring cut by uneven share delivery"). Only the tests' malicious-server
        harness and research benchmarks set it.

    Notes:
      Each secret has ``holders = degree + 1`` (or ``n``) share holders, the client itself
      included; ``t`` must satisfy ``2 <= t <= holders``, and in the active variant also
      ``t > holders / 2``. Against a malicious server that shows two views of the survivors, the
      parameters hold while a client has at most :attr:`tolerated_corrupt_holders` corrupted
      holders (``2t > holders + c``); the active variant runs on the complete graph
      (``degree=None``), where that is a worst-case statement about any c colluders.
    """

    num_clients: int
    threshold: int
    mask_bits: int = 32
    degree: int | None = None
    active: bool = False
    field_modulus: int = P256_ORDER
    field_dim: int = 0
    dropout_budget: int | None = None
    neighbour_dropout_budget: int | None = None
    unsafe_sparse_active: bool = False

    def __post_init__(self) -> None:
        n = self.num_clients
        if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= MAX_CLIENTS:
            raise ConfigError(f"num_clients: expected an int in 2..{MAX_CLIENTS}, got {n!r}")
        if isinstance(self.mask_bits, bool) or not isinstance(self.mask_bits, int) or not 1 <= self.mask_bits <= 64:
            raise ConfigError(f"mask_bits: expected an int in 1..64, got {self.mask_bits!r}")
        if self.degree is not None:
            d = self.degree
            if isinstance(d, bool) or not isinstance(d, int) or d < 2 or d % 2 or d >= n - 1:
                raise ConfigError(f"degree: expected an even int in 2..{n - 2} (or None), got {d!r}")
        if not isinstance(self.unsafe_sparse_active, bool):
            raise ConfigError(f"unsafe_sparse_active: expected a bool, got {self.unsafe_sparse_active!r}")
        if self.unsafe_sparse_active and not self.active:
            raise ConfigError("unsafe_sparse_active applies to the active variant only")
        if self.active and self.degree is not None and not self.unsafe_sparse_active:
            raise ConfigError(sparse_active_refusal(f"active=True with degree={self.degree}"))
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, int) or not 2 <= t <= self.holders:
            raise ConfigError(f"threshold: expected an int in 2..{self.holders}, got {t!r}")
        if self.active and 2 * t <= self.holders:
            raise ConfigError(f"threshold: the active variant needs t > holders/2 = {self.holders / 2}, got {t}")
        if self.field_modulus < 3 or self.field_modulus.bit_length() > 256:
            raise ConfigError("field_modulus: expected a prime of at most 256 bits")
        if not 0 <= self.field_dim <= MAX_FIELD_DIM:
            raise ConfigError(f"field_dim: expected 0..{MAX_FIELD_DIM}, got {self.field_dim}")
        if self.dropout_budget is None:
            object.__setattr__(self, "dropout_budget", n - t)
        if self.neighbour_dropout_budget is None:
            local = self.holders - t
            if self.active and self.degree is not None:
                local = min(local, self.degree // 2 - 1)
            object.__setattr__(self, "neighbour_dropout_budget", local)
        for name, top in (("dropout_budget", n - t), ("neighbour_dropout_budget", self.holders - t)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= top:
                raise ConfigError(f"{name}: expected an int in 0..{top}, got {v!r}")

    @property
    def holders(self) -> int:
        """Share holders per secret: the neighbours plus the client itself."""
        return self.num_clients if self.degree is None else self.degree + 1

    @property
    def tolerated_corrupt_holders(self) -> int:
        """The most corrupted holders of one client for which two views cannot both reach t.

        ``2t - holders - 1`` (negative: none). With c corrupted holders, the honest holders'
        answers split between the views and the corrupted ones count in both, so both views reach
        t exactly when ``holders + c >= 2t``.
        """
        return 2 * self.threshold - self.holders - 1

    @property
    def modulus(self) -> int:
        """2^k."""
        return 1 << self.mask_bits

    @property
    def client_ids(self) -> range:
        return range(1, self.num_clients + 1)

    @classmethod
    def classic(cls, num_clients: int, *, threshold: int | None = None, **kw) -> "SecAggParams":
        """Classic SecAgg on the complete graph, threshold :func:`default_threshold` by default."""
        t = default_threshold(num_clients) if threshold is None else threshold
        return cls(num_clients=num_clients, threshold=t, **kw)

    @classmethod
    def secagg_plus(
        cls,
        num_clients: int,
        *,
        dropout_rate: float = 0.1,
        corruption_rate: float = 0.1,
        security_bits: float = 40.0,
        correctness_bits: float = 20.0,
        grinding_bits: float = GRINDING_BITS,
        **kw,
    ) -> "SecAggParams":
        """SecAgg+ with degree and threshold from :func:`secagg_plus_parameters` (semi-honest variant).

        With ``active=True`` this is a :class:`ConfigError` (the active variant runs on the complete
        graph only, ``docs/secagg.md``, "Ring cut by uneven share delivery") unless
        ``unsafe_sparse_active=True`` is passed too, the research opt-in: then degree, threshold and
        budgets come from the sparse active derivation (whose split bound that attack breaks).
        """
        active = bool(kw.get("active", False))
        unsafe = kw.get("unsafe_sparse_active", False)
        if active and unsafe is not True:
            raise ConfigError(sparse_active_refusal("SecAggParams.secagg_plus(..., active=True)")
                              + "; for the active variant's complete-graph threshold from the rates see "
                              "secagg_plus_parameters(..., active=True) or SecureSum(graph='complete', active=True)")
        g = secagg_plus_parameters(
            num_clients,
            dropout_rate=dropout_rate,
            corruption_rate=corruption_rate,
            security_bits=security_bits,
            correctness_bits=correctness_bits,
            active=active,
            grinding_bits=grinding_bits,
            unsafe_sparse_active=unsafe,
        )
        if g.dropout_budget is not None:
            kw.setdefault("dropout_budget", g.dropout_budget)
            kw.setdefault("neighbour_dropout_budget", g.neighbour_dropout_budget)
        return cls(num_clients=num_clients, threshold=g.threshold, degree=g.degree, **kw)
