"""Attack: put weight on the padding coordinates (d not a power of two) whose generators are
the identity. They enter <x, x> (the w2 term) but not C, and are not projected, so a prover can
choose pad values whose squares sum to (M^2 - ||x_real||^2) mod q, i.e. S = M^2 in C_S while the
committed x_real has a norm far above M."""
import random, sys
import numpy as np
ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]; sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / "tests"))
from rangeproof.generators import pedersen_bases
from rangeproof.group import ORDER as q, msm, random_scalar, identity
from rangeproof.norm import NormStatement, commit_vector, L2Proof
from rangeproof.norm import l2 as l2mod
from rangeproof.norm.norm_linear import NormLinearProof, _DOMAIN
from rangeproof.norm.l2 import projection_for
from rangeproof.norm.commitment import vector_generators

B, Bt = pedersen_bases()

def is_qr(a): return pow(a, (q - 1) // 2, q) == 1
def sqrt_mod(a):  # Tonelli-Shanks
    a %= q
    if a == 0: return 0
    assert is_qr(a)
    Q, S = q - 1, 0
    while Q % 2 == 0: Q //= 2; S += 1
    z = 2
    while is_qr(z): z += 1
    M, c, t, R = S, pow(z, Q, q), pow(a, Q, q), pow(a, (Q + 1) // 2, q)
    while t != 1:
        i, tt = 0, t
        while tt != 1: tt = tt * tt % q; i += 1
        b = pow(c, 1 << (M - i - 1), q)
        M, c, t, R = i, b * b % q, t * b * b % q, R * b % q
    return R

PAD = []

def padded_create(cls, transcript, G, x, r, v, s, sigma, *, rng=None):
    d = len(G)
    n = 1 << max(0, (d - 1).bit_length())
    transcript.domain_sep(_DOMAIN, d=d)
    w1 = transcript.challenge_scalar(b"w1"); w2 = transcript.challenge_scalar(b"w2")
    xs = [int(a) % q for a in x] + [p % q for p in PAD] + [0] * (n - d - len(PAD))
    vs = [int(a) % q for a in v] + [0] * (n - d)
    Gs = list(G) + [None] * (n - d)   # None = identity generator
    rho = (r + w1 * s + w2 * sigma) % q
    def gsum(sc, pts):
        pairs = [(a, P) for a, P in zip(sc, pts) if P is not None and a % q]
        return msm([a for a, _ in pairs], [P for _, P in pairs]) if pairs else None
    def add(P1, P2):
        if P1 is None: return P2
        if P2 is None: return P1
        return P1 + P2
    Ls, Rs, Ws = [], [], []
    while n > 1:
        h = n // 2
        xl, xh, vl, vh, Gl, Gh = xs[:h], xs[h:], vs[:h], vs[h:], Gs[:h], Gs[h:]
        dot = lambda a, b: sum(i * j for i, j in zip(a, b)) % q
        cL = w1 * dot(xl, vh) % q
        cR = (w1 * dot(xh, vl) + 2 * w2 * dot(xl, xh)) % q
        cW = w2 * dot(xh, xh) % q
        rL, rR, rW = random_scalar(rng), random_scalar(rng), random_scalar(rng)
        L = add(gsum(xl, Gh), msm([cL, rL], [B, Bt]))
        R = add(gsum(xh, Gl), msm([cR, rR], [B, Bt]))
        W = msm([cW, rW], [B, Bt])
        for lab, P, out in ((b"L", L, Ls), (b"R", R, Rs), (b"W", W, Ws)):
            transcript.validate_and_append_point(lab, P); out.append(P)
        u = transcript.challenge_scalar(b"u"); ui = pow(u, -1, q)
        xs = [(a + u * b) % q for a, b in zip(xl, xh)]
        vs = [(a + ui * b) % q for a, b in zip(vl, vh)]
        Gs = [add(a, None if b is None else msm([ui], [b])) for a, b in zip(Gl, Gh)]
        rho = (rho + ui * rL + u * rR + (u * u - 1) * rW) % q
        n = h
    a, vf, g = xs[0], vs[0], Gs[0]
    k, s1, s2 = random_scalar(rng), random_scalar(rng), random_scalar(rng)
    A1 = msm([k], [g]) + msm([(w1 * k * vf + 2 * w2 * a * k) % q, s1], [B, Bt])
    A2 = msm([w2 * k * k % q, s2], [B, Bt])
    transcript.validate_and_append_point(b"A1", A1); transcript.validate_and_append_point(b"A2", A2)
    e = transcript.challenge_scalar(b"e")
    return cls(Ls, Rs, Ws, A1, A2, (k + e * a) % q, (s2 + e * s1 + e * e * rho) % q)

def main():
    rng = random.Random(1).getrandbits
    import os
    d, M = int(os.environ.get("D", 1000)), int(os.environ.get("M", 1000))
    st = NormStatement(round_id=7, client_id=3, dim=d, norm="l2", bound=M, scale=1.0)
    import os
    x = np.full(d, 100, dtype=np.int64)          # ||x||^2 = 10^7 = 10 M^2
    if os.environ.get("BIG"):
        x = np.zeros(d, dtype=np.int64); x[0] = int(os.environ.get("X0", 30000))
    N = int((x.astype(object) ** 2).sum())
    C, r = commit_vector(x, rng=rng)
    target = (M * M - N) % q                     # pads must contribute this mod q
    a = 0
    while not is_qr((target - a * a) % q): a += 1
    PAD[:] = [sqrt_mod((target - a * a) % q), a]
    S = (N + sum(p * p for p in PAD)) % q
    assert S == M * M
    prm = st.l2_params()
    t = st.transcript(C)
    proj = projection_for(t, prm, d)
    z = proj.apply(x)
    print("d", d, "M^2", M * M, "true ||x||^2", N, "T", prm.half_range, "max|z|", max(abs(int(v)) for v in z))
    orig = NormLinearProof.__dict__["create"]
    NormLinearProof.create = classmethod(padded_create)
    try:
        proof = L2Proof._finish(t, st, prm, proj, x.tolist(), list(z), S, C, r, rng, l2mod._Clock(None))
    finally:
        NormLinearProof.create = orig
    blob = proof.to_bytes()
    from rangeproof.norm import verify, verify_batch, commit_and_prove
    verify(st, C, blob)   # public entry point, raises on rejection
    print("rangeproof.norm.verify ACCEPTED: committed x has ||x||^2 =", N, "> M^2 =", M * M,
          "(norm", round((N / M / M) ** 0.5, 3), "x M)")
    # check the commitment really is the plain commitment to x
    C2, _ = commit_vector(x, r)
    print("C == commit_vector(x, r):", C2 == C)
    hst = NormStatement(round_id=7, client_id=4, dim=d, norm="l2", bound=M, scale=1.0)
    hx = np.ones(d, dtype=np.int64)
    hC, _, hproof = commit_and_prove(hst, hx, rng=rng)
    print("verify_batch [honest client, attacker]:", verify_batch([(hst, hC, hproof), (st, C, blob)], rng=rng))

if __name__ == "__main__":
    main()
