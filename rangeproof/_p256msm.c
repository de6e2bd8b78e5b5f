/* Variable-time multi-exponentiation on P-256 for public scalars (Pippenger's bucket method).
 *
 * The maths is written down in docs/proofs.md ("Native multi-exponentiation"). In short:
 *
 *   field    p = 2^256 - 2^224 + 2^192 + 2^96 - 1, four 64-bit limbs, Montgomery form with
 *            R = 2^256 (-p^-1 mod 2^64 = 1, so the reduction multiplier is the low limb);
 *   points   Jacobian (X : Y : Z) for x = X / Z^2, y = Y / Z^3, the identity as Z = 0;
 *            additions by the Cohen-Miyaji-Ono formulas with the exceptional cases (equal
 *            points, opposite points, the identity) handled explicitly, so any input points
 *            (a prover chooses some of them) give the exact sum;
 *   scalars  signed c-bit digits in (-2^(c-1), 2^(c-1)], one set of 2^(c-1) buckets per window,
 *            bucket sums by running sums, windows combined by c doublings each.
 *
 * Nothing here is constant-time: the verifier's scalars (challenges and its own weights) are
 * public, and the Python wrapper (rangeproof/native_msm.py) is the only caller. Points arrive as
 * affine big-endian x || y (64 bytes, the caller guarantees they are on the curve), scalars as
 * 32-byte big-endian integers below 2^256; the result is 64 bytes x || y, or None for the
 * identity. The group work runs without the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>

typedef uint64_t u64;
typedef unsigned __int128 u128;

static const u64 P[4] = {0xFFFFFFFFFFFFFFFFULL, 0x00000000FFFFFFFFULL, 0x0000000000000000ULL,
                         0xFFFFFFFF00000001ULL};
static u64 R2[4];   /* 2^512 mod p: into Montgomery form (computed at import) */
static u64 ONE[4];  /* 2^256 mod p: 1 in Montgomery form */

typedef struct { u64 x[4], y[4]; } aff;
typedef struct { u64 X[4], Y[4], Z[4]; } jac;

/* ---- field ---------------------------------------------------------------------------- */

static inline int f_is_zero(const u64 a[4]) { return (a[0] | a[1] | a[2] | a[3]) == 0; }

static inline int f_eq(const u64 a[4], const u64 b[4]) {
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0;
}

/* r = t - m if t (5 limbs, t < 2m) >= m, else t; m is p or q */
static inline void reduce_once(u64 r[4], u64 t0, u64 t1, u64 t2, u64 t3, u64 t4, const u64 m[4]) {
    u128 d;
    u64 s[4], borrow;
    d = (u128)t0 - m[0];          s[0] = (u64)d; borrow = (u64)(d >> 64) & 1;
    d = (u128)t1 - m[1] - borrow; s[1] = (u64)d; borrow = (u64)(d >> 64) & 1;
    d = (u128)t2 - m[2] - borrow; s[2] = (u64)d; borrow = (u64)(d >> 64) & 1;
    d = (u128)t3 - m[3] - borrow; s[3] = (u64)d; borrow = (u64)(d >> 64) & 1;
    if (t4 == 0 && borrow) {      /* t < m */
        r[0] = t0; r[1] = t1; r[2] = t2; r[3] = t3;
    } else {
        r[0] = s[0]; r[1] = s[1]; r[2] = s[2]; r[3] = s[3];
    }
}

/* r = a + b mod m for a, b < m */
static inline void mod_add(u64 r[4], const u64 a[4], const u64 b[4], const u64 m[4]) {
    u128 c;
    u64 t0, t1, t2, t3;
    c = (u128)a[0] + b[0];             t0 = (u64)c;
    c = (u128)a[1] + b[1] + (c >> 64); t1 = (u64)c;
    c = (u128)a[2] + b[2] + (c >> 64); t2 = (u64)c;
    c = (u128)a[3] + b[3] + (c >> 64); t3 = (u64)c;
    reduce_once(r, t0, t1, t2, t3, (u64)(c >> 64), m);
}

/* whether the 4-limb value is below m */
static int below(const u64 a[4], const u64 m[4]) {
    for (int i = 3; i >= 0; i--) {
        if (a[i] < m[i]) return 1;
        if (a[i] > m[i]) return 0;
    }
    return 0;
}

static inline void f_add(u64 r[4], const u64 a[4], const u64 b[4]) { mod_add(r, a, b, P); }

static inline void f_sub(u64 r[4], const u64 a[4], const u64 b[4]) {
    u128 d;
    u64 t[4], borrow;
    d = (u128)a[0] - b[0];          t[0] = (u64)d; borrow = (u64)(d >> 64) & 1;
    d = (u128)a[1] - b[1] - borrow; t[1] = (u64)d; borrow = (u64)(d >> 64) & 1;
    d = (u128)a[2] - b[2] - borrow; t[2] = (u64)d; borrow = (u64)(d >> 64) & 1;
    d = (u128)a[3] - b[3] - borrow; t[3] = (u64)d; borrow = (u64)(d >> 64) & 1;
    if (borrow) {                   /* a < b: add p back (the carry out cancels the borrow) */
        u128 c;
        c = (u128)t[0] + P[0];             r[0] = (u64)c;
        c = (u128)t[1] + P[1] + (c >> 64); r[1] = (u64)c;
        c = (u128)t[2] + P[2] + (c >> 64); r[2] = (u64)c;
        c = (u128)t[3] + P[3] + (c >> 64); r[3] = (u64)c;
    } else {
        r[0] = t[0]; r[1] = t[1]; r[2] = t[2]; r[3] = t[3];
    }
}

/* r = a b / 2^256 mod p (CIOS Montgomery multiplication; a, b < p gives r < p) */
static inline void f_mul(u64 r[4], const u64 a[4], const u64 b[4]) {
    u64 t0 = 0, t1 = 0, t2 = 0, t3 = 0, t4 = 0, t5, m;
    u128 c;
    for (int i = 0; i < 4; i++) {
        u64 bi = b[i];
        c = (u128)a[0] * bi + t0;              t0 = (u64)c;
        c = (u128)a[1] * bi + t1 + (c >> 64);  t1 = (u64)c;
        c = (u128)a[2] * bi + t2 + (c >> 64);  t2 = (u64)c;
        c = (u128)a[3] * bi + t3 + (c >> 64);  t3 = (u64)c;
        c = (u128)t4 + (c >> 64);              t4 = (u64)c; t5 = (u64)(c >> 64);
        m = t0;  /* -p^-1 = 1 mod 2^64 */
        c = (u128)m * P[0] + t0;
        c = (u128)m * P[1] + t1 + (c >> 64);   t0 = (u64)c;
        c = (u128)t2 + (c >> 64);              t1 = (u64)c;  /* P[2] = 0 */
        c = (u128)m * P[3] + t3 + (c >> 64);   t2 = (u64)c;
        c = (u128)t4 + (c >> 64);              t3 = (u64)c;
        t4 = t5 + (u64)(c >> 64);
    }
    reduce_once(r, t0, t1, t2, t3, t4, P);
}

static inline void f_sqr(u64 r[4], const u64 a[4]) { f_mul(r, a, a); }

/* r = a^(p-2) = a^-1 (a != 0) */
static void f_inv(u64 r[4], const u64 a[4]) {
    static const u64 E[4] = {0xFFFFFFFFFFFFFFFDULL, 0x00000000FFFFFFFFULL, 0x0000000000000000ULL,
                             0xFFFFFFFF00000001ULL};
    u64 acc[4];
    memcpy(acc, ONE, sizeof acc);
    for (int i = 255; i >= 0; i--) {
        f_sqr(acc, acc);
        if ((E[i >> 6] >> (i & 63)) & 1) f_mul(acc, acc, a);
    }
    memcpy(r, acc, sizeof acc);
}

static void f_from_be(u64 r[4], const unsigned char *b) {
    for (int i = 0; i < 4; i++) {
        u64 v = 0;
        for (int k = 0; k < 8; k++) v = (v << 8) | b[(3 - i) * 8 + k];
        r[i] = v;
    }
}

static void f_to_be(unsigned char *b, const u64 a[4]) {
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 8; k++) b[(3 - i) * 8 + k] = (unsigned char)(a[i] >> (56 - 8 * k));
}

/* ---- scalars mod q (the group order): the verifier's sums of challenge products ----------- */

static const u64 Q[4] = {0xF3B9CAC2FC632551ULL, 0xBCE6FAADA7179E84ULL, 0xFFFFFFFFFFFFFFFFULL,
                         0xFFFFFFFF00000000ULL};
static u64 Q_N0;  /* -q^-1 mod 2^64 (computed at import) */

static inline void q_add(u64 r[4], const u64 a[4], const u64 b[4]) { mod_add(r, a, b, Q); }

/* r = a b / 2^256 mod q (CIOS; a, b < q gives r < q) */
static inline void q_mul(u64 r[4], const u64 a[4], const u64 b[4]) {
    u64 t0 = 0, t1 = 0, t2 = 0, t3 = 0, t4 = 0, t5, m;
    u128 c;
    for (int i = 0; i < 4; i++) {
        u64 bi = b[i];
        c = (u128)a[0] * bi + t0;              t0 = (u64)c;
        c = (u128)a[1] * bi + t1 + (c >> 64);  t1 = (u64)c;
        c = (u128)a[2] * bi + t2 + (c >> 64);  t2 = (u64)c;
        c = (u128)a[3] * bi + t3 + (c >> 64);  t3 = (u64)c;
        c = (u128)t4 + (c >> 64);              t4 = (u64)c; t5 = (u64)(c >> 64);
        m = t0 * Q_N0;
        c = (u128)m * Q[0] + t0;
        c = (u128)m * Q[1] + t1 + (c >> 64);   t0 = (u64)c;
        c = (u128)m * Q[2] + t2 + (c >> 64);   t1 = (u64)c;
        c = (u128)m * Q[3] + t3 + (c >> 64);   t2 = (u64)c;
        c = (u128)t4 + (c >> 64);              t3 = (u64)c;
        t4 = t5 + (u64)(c >> 64);
    }
    reduce_once(r, t0, t1, t2, t3, t4, Q);
}

/* ---- points ----------------------------------------------------------------------------- */

static inline void j_set_inf(jac *r) { memset(r, 0, sizeof *r); }
static inline int j_is_inf(const jac *a) { return f_is_zero(a->Z); }

/* r = 2 a (dbl-2001-b, a = -3); r may alias a */
static void j_dbl(jac *r, const jac *a) {
    u64 delta[4], gamma[4], beta[4], alpha[4], t1[4], t2[4], x3[4], z3[4], y3[4];
    if (j_is_inf(a)) { j_set_inf(r); return; }
    f_sqr(delta, a->Z);
    f_sqr(gamma, a->Y);
    f_mul(beta, a->X, gamma);
    f_sub(t1, a->X, delta);
    f_add(t2, a->X, delta);
    f_mul(t1, t1, t2);
    f_add(alpha, t1, t1);
    f_add(alpha, alpha, t1);                      /* alpha = 3 (X - delta)(X + delta) */
    f_sqr(x3, alpha);
    f_add(t1, beta, beta);                        /* 2 beta */
    f_add(t1, t1, t1);                            /* 4 beta */
    f_add(t2, t1, t1);                            /* 8 beta */
    f_sub(x3, x3, t2);                            /* X3 = alpha^2 - 8 beta */
    f_add(z3, a->Y, a->Z);
    f_sqr(z3, z3);
    f_sub(z3, z3, gamma);
    f_sub(z3, z3, delta);                         /* Z3 = (Y + Z)^2 - gamma - delta = 2 Y Z */
    f_sub(t1, t1, x3);                            /* 4 beta - X3 */
    f_mul(y3, alpha, t1);
    f_sqr(t2, gamma);
    f_add(t2, t2, t2);
    f_add(t2, t2, t2);
    f_add(t2, t2, t2);                            /* 8 gamma^2 */
    f_sub(y3, y3, t2);
    memcpy(r->X, x3, 32); memcpy(r->Y, y3, 32); memcpy(r->Z, z3, 32);
}

/* r = a + (x, y) for an affine point (x, y); r may alias a */
static void j_add_aff(jac *r, const jac *a, const u64 x[4], const u64 y[4]) {
    u64 z1z1[4], u2[4], s2[4], h[4], rr[4], h2[4], h3[4], v[4], x3[4], y3[4], z3[4], t[4];
    if (j_is_inf(a)) {
        memcpy(r->X, x, 32); memcpy(r->Y, y, 32); memcpy(r->Z, ONE, 32);
        return;
    }
    f_sqr(z1z1, a->Z);
    f_mul(u2, x, z1z1);
    f_mul(s2, a->Z, z1z1);
    f_mul(s2, y, s2);                             /* S2 = y Z1^3 */
    f_sub(h, u2, a->X);
    f_sub(rr, s2, a->Y);
    if (f_is_zero(h)) {
        if (f_is_zero(rr)) { j_dbl(r, a); } else { j_set_inf(r); }
        return;
    }
    f_sqr(h2, h);
    f_mul(h3, h, h2);
    f_mul(v, a->X, h2);                           /* X1 H^2 */
    f_sqr(x3, rr);
    f_sub(x3, x3, h3);
    f_sub(x3, x3, v);
    f_sub(x3, x3, v);                             /* X3 = R^2 - H^3 - 2 X1 H^2 */
    f_sub(t, v, x3);
    f_mul(y3, rr, t);
    f_mul(t, a->Y, h3);
    f_sub(y3, y3, t);                             /* Y3 = R (X1 H^2 - X3) - Y1 H^3 */
    f_mul(z3, a->Z, h);                           /* Z3 = Z1 H */
    memcpy(r->X, x3, 32); memcpy(r->Y, y3, 32); memcpy(r->Z, z3, 32);
}

/* r = a + b, both Jacobian; r may alias either */
static void j_add(jac *r, const jac *a, const jac *b) {
    u64 z1z1[4], z2z2[4], u1[4], u2[4], s1[4], s2[4], h[4], rr[4], h2[4], h3[4], v[4];
    u64 x3[4], y3[4], z3[4], t[4];
    if (j_is_inf(a)) { *r = *b; return; }
    if (j_is_inf(b)) { *r = *a; return; }
    f_sqr(z1z1, a->Z);
    f_sqr(z2z2, b->Z);
    f_mul(u1, a->X, z2z2);
    f_mul(u2, b->X, z1z1);
    f_mul(s1, b->Z, z2z2);
    f_mul(s1, a->Y, s1);                          /* S1 = Y1 Z2^3 */
    f_mul(s2, a->Z, z1z1);
    f_mul(s2, b->Y, s2);                          /* S2 = Y2 Z1^3 */
    f_sub(h, u2, u1);
    f_sub(rr, s2, s1);
    if (f_is_zero(h)) {
        if (f_is_zero(rr)) { j_dbl(r, a); } else { j_set_inf(r); }
        return;
    }
    f_sqr(h2, h);
    f_mul(h3, h, h2);
    f_mul(v, u1, h2);
    f_sqr(x3, rr);
    f_sub(x3, x3, h3);
    f_sub(x3, x3, v);
    f_sub(x3, x3, v);
    f_sub(t, v, x3);
    f_mul(y3, rr, t);
    f_mul(t, s1, h3);
    f_sub(y3, y3, t);
    f_mul(z3, a->Z, b->Z);
    f_mul(z3, z3, h);
    memcpy(r->X, x3, 32); memcpy(r->Y, y3, 32); memcpy(r->Z, z3, 32);
}

/* ---- Pippenger ----------------------------------------------------------------------------- */

static inline u64 window_bits(const u64 s[4], int pos, int c) {
    if (pos >= 256) return 0;
    int limb = pos >> 6, off = pos & 63;
    u64 v = s[limb] >> off;
    if (off + c > 64 && limb + 1 < 4) v |= s[limb + 1] << (64 - off);
    return v & ((1ULL << c) - 1);
}

static int pick_window(Py_ssize_t n) {
    if (n < 32) return 3;
    int lg = 0;
    while (((Py_ssize_t)1 << (lg + 1)) <= n) lg++;
    int c = lg - 3;                 /* measured best near lg n - 3 or - 4 for 2^10..2^21 */
    if (c < 4) c = 4;
    if (c > 16) c = 16;
    return c;
}

/* sum_i s_i P_i; returns 0 on success, -1 when out of memory */
static int pippenger(jac *out, const aff *pts, const u64 (*sc)[4], Py_ssize_t n, int c) {
    int nwin = (256 + c - 1) / c + 1;   /* one more window for the last carry */
    Py_ssize_t nb = (Py_ssize_t)1 << (c - 1);
    jac *buckets = malloc(sizeof(jac) * (size_t)nb);
    jac *wsum = malloc(sizeof(jac) * (size_t)nwin);
    unsigned char *carry = calloc((size_t)n + 1, 1);
    aff neg;
    if (!buckets || !wsum || !carry) { free(buckets); free(wsum); free(carry); return -1; }
    const u64 half = (u64)1 << (c - 1), full = (u64)1 << c;
    for (int w = 0; w < nwin; w++) {
        for (Py_ssize_t b = 0; b < nb; b++) j_set_inf(&buckets[b]);
        for (Py_ssize_t i = 0; i < n; i++) {
            u64 d = window_bits(sc[i], w * c, c) + carry[i];
            if (d > half) {             /* digit d - 2^c < 0, carry one into the next window */
                carry[i] = 1;
                d = full - d;
                if (d == 0) continue;
                memcpy(neg.x, pts[i].x, 32);
                f_sub(neg.y, (const u64[4]){0, 0, 0, 0}, pts[i].y);
                j_add_aff(&buckets[d - 1], &buckets[d - 1], neg.x, neg.y);
            } else {
                carry[i] = 0;
                if (d == 0) continue;
                j_add_aff(&buckets[d - 1], &buckets[d - 1], pts[i].x, pts[i].y);
            }
        }
        jac run, acc;
        j_set_inf(&run);
        j_set_inf(&acc);
        for (Py_ssize_t b = nb - 1; b >= 0; b--) {  /* acc = sum_b (b + 1) bucket_b */
            j_add(&run, &run, &buckets[b]);
            j_add(&acc, &acc, &run);
        }
        wsum[w] = acc;
    }
    jac res;
    j_set_inf(&res);
    for (int w = nwin - 1; w >= 0; w--) {
        for (int k = 0; k < c; k++) j_dbl(&res, &res);
        j_add(&res, &res, &wsum[w]);
    }
    *out = res;
    free(buckets); free(wsum); free(carry);
    return 0;
}

/* ---- Python interface ------------------------------------------------------------------------ */

/* The point as affine x || y (64 bytes big-endian, out of Montgomery form), or None for the
 * identity (a new reference, or NULL with an exception set). */
static PyObject *affine_result(const jac *r) {
    if (j_is_inf(r)) { Py_INCREF(Py_None); return Py_None; }
    u64 zi[4], zi2[4], x[4], y[4], one[4] = {1, 0, 0, 0};
    unsigned char outb[64];
    f_inv(zi, r->Z);
    f_sqr(zi2, zi);
    f_mul(x, r->X, zi2);
    f_mul(zi2, zi2, zi);
    f_mul(y, r->Y, zi2);
    f_mul(x, x, one);                          /* out of Montgomery form */
    f_mul(y, y, one);
    f_to_be(outb, x);
    f_to_be(outb + 32, y);
    return PyBytes_FromStringAndSize((const char *)outb, 64);
}

static PyObject *py_msm(PyObject *self, PyObject *args) {
    Py_buffer pb, sb;
    (void)self;
    int c = 0;
    if (!PyArg_ParseTuple(args, "y*y*|i", &pb, &sb, &c)) return NULL;
    PyObject *result = NULL;
    aff *pts = NULL;
    u64 (*sc)[4] = NULL;
    if (pb.len % 64 != 0 || sb.len % 32 != 0 || pb.len / 64 != sb.len / 32) {
        PyErr_SetString(PyExc_ValueError, "msm: need 64 bytes per point and 32 per scalar, as many of each");
        goto done;
    }
    if (c < 0 || c > 20) {
        PyErr_SetString(PyExc_ValueError, "msm: window must be in [1, 20] (0: chosen by size)");
        goto done;
    }
    Py_ssize_t n = pb.len / 64;
    if (n >= ((Py_ssize_t)1 << 40)) {
        PyErr_SetString(PyExc_ValueError, "msm: too many terms");
        goto done;
    }
    if (n == 0) { Py_INCREF(Py_None); result = Py_None; goto done; }
    if (c == 0) c = pick_window(n);
    pts = malloc(sizeof(aff) * (size_t)n);
    sc = malloc(sizeof(*sc) * (size_t)n);
    if (!pts || !sc) { PyErr_NoMemory(); goto done; }
    const unsigned char *pbytes = pb.buf, *sbytes = sb.buf;
    int bad = 0, oom = 0;
    jac r;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !bad; i++) {
        u64 x[4], y[4];
        f_from_be(x, pbytes + 64 * i);
        f_from_be(y, pbytes + 64 * i + 32);
        if (!below(x, P) || !below(y, P)) { bad = 1; break; }
        f_mul(pts[i].x, x, R2);
        f_mul(pts[i].y, y, R2);
        f_from_be(sc[i], sbytes + 32 * i);
    }
    if (!bad) oom = pippenger(&r, pts, (const u64 (*)[4])sc, n, c);
    Py_END_ALLOW_THREADS
    if (bad) { PyErr_SetString(PyExc_ValueError, "msm: a coordinate is not below p"); goto done; }
    if (oom) { PyErr_NoMemory(); goto done; }
    result = affine_result(&r);
done:
    free(pts);
    free(sc);
    PyBuffer_Release(&pb);
    PyBuffer_Release(&sb);
    return result;
}

/* Field multiplication exposed for known-answer tests: (a * b) mod p on 32-byte big-endian
 * values below p, through the Montgomery domain and back. */
static PyObject *py_field_mul(PyObject *self, PyObject *args) {
    Py_buffer ab, bb;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*", &ab, &bb)) return NULL;
    PyObject *result = NULL;
    if (ab.len != 32 || bb.len != 32) {
        PyErr_SetString(PyExc_ValueError, "field_mul: 32-byte operands");
    } else {
        u64 a[4], b[4], r[4], one[4] = {1, 0, 0, 0};
        unsigned char out[32];
        f_from_be(a, ab.buf);
        f_from_be(b, bb.buf);
        if (!below(a, P) || !below(b, P)) {
            PyErr_SetString(PyExc_ValueError, "field_mul: operand not below p");
        } else {
            f_mul(a, a, R2);
            f_mul(b, b, R2);
            f_mul(r, a, b);
            f_mul(r, r, one);
            f_to_be(out, r);
            result = PyBytes_FromStringAndSize((const char *)out, 32);
        }
    }
    PyBuffer_Release(&ab);
    PyBuffer_Release(&bb);
    return result;
}

/* tensor_add(total, a, b, offset, d): total[offset + i] += a[i / w] * b[i % w] / 2^256 mod q
 * for i < d, w = len(b) / 32; every entry 32 bytes big-endian below q (the caller passes each
 * a[h] times 2^256 mod q, so the sum gains a[h] b[l]). */
static PyObject *py_tensor_add(PyObject *self, PyObject *args) {
    Py_buffer tb, ab, bb;
    Py_ssize_t offset, d;
    (void)self;
    if (!PyArg_ParseTuple(args, "w*y*y*nn", &tb, &ab, &bb, &offset, &d)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t rows = ab.len / 32, width = bb.len / 32, n = tb.len / 32;
    if (tb.len % 32 || ab.len % 32 || bb.len % 32 || width == 0 || offset < 0 || d < 0 ||
        offset > n || d > n - offset || (d > 0 && (d - 1) / width >= rows)) {
        PyErr_SetString(PyExc_ValueError, "tensor_add: lengths do not fit");
        goto done;
    }
    unsigned char *t = tb.buf;
    const unsigned char *a = ab.buf, *b = bb.buf;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    u64 ah[4] = {0, 0, 0, 0}, bl[4], tv[4], pr[4];
    for (Py_ssize_t i = 0; i < d && !bad; i++) {
        Py_ssize_t h = i / width, l = i % width;
        if (l == 0) {
            f_from_be(ah, a + 32 * h);
            if (!below(ah, Q)) { bad = 1; break; }
        }
        f_from_be(bl, b + 32 * l);
        f_from_be(tv, t + 32 * (offset + i));
        if (!below(bl, Q) || !below(tv, Q)) { bad = 1; break; }
        q_mul(pr, ah, bl);
        q_add(tv, tv, pr);
        f_to_be(t + 32 * (offset + i), tv);
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "tensor_add: an entry is not below q");
        goto done;
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&tb);
    PyBuffer_Release(&ab);
    PyBuffer_Release(&bb);
    return result;
}

/* table_sum(table, start, values) -> bytes | None: sum_i values[i] T[start + i] for the affine
 * table T (64 bytes x || y big-endian per point, as msm takes) and small signed values (int64,
 * |v| <= 2^20): each point is added into the bucket of |v| (its negative for v < 0) by a mixed
 * Jacobian-affine addition, then sum_b b S_b by running sums. The result as msm returns it.
 * Variable time in the values (the prover's own vector, on its own machine). */
/* *top = max |vals[i]|; -1 with ValueError when a value exceeds 2^20 in magnitude */
static int values_top(const int64_t *vals, Py_ssize_t n, const char *who, int64_t *top) {
    int64_t t = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t v = vals[i];
        if (v > (1 << 20) || v < -(1 << 20)) {
            PyErr_Format(PyExc_ValueError, "%s: a value above 2^20 in magnitude", who);
            return -1;
        }
        if (v > t) t = v;
        if (-v > t) t = -v;
    }
    *top = t;
    return 0;
}

static int is_int64_format(const Py_buffer *b) {
    const char *f = b->format ? b->format : "B";
    if (*f == '@' || *f == '=' || *f == '<') f++;
    return b->itemsize == 8 && (f[0] == 'q' || f[0] == 'l') && f[1] == 0;
}

static PyObject *py_table_sum(PyObject *self, PyObject *args) {
    Py_buffer tb, vb;
    PyObject *vobj;
    Py_ssize_t start;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nO", &tb, &start, &vobj)) return NULL;
    if (PyObject_GetBuffer(vobj, &vb, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&tb);
        return NULL;
    }
    PyObject *result = NULL;
    jac *buckets = NULL;
    int64_t top = 0, *vals = NULL;
    Py_ssize_t n = vb.len / 8, npts = tb.len / 64;
    if (!is_int64_format(&vb) || vb.ndim > 1) {
        PyErr_SetString(PyExc_ValueError, "table_sum: the values must be a flat int64 buffer");
        goto done;
    }
    if (tb.len % 64 || start < 0 || start > npts || n > npts - start) {
        PyErr_SetString(PyExc_ValueError, "table_sum: 64 bytes per point and the values' points "
                                          "inside the table");
        goto done;
    }
    /* a private copy, checked and then used: the caller's buffer may change once the lock is
     * released below (and need not be aligned) */
    vals = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!vals) { PyErr_NoMemory(); goto done; }
    memcpy(vals, vb.buf, sizeof(int64_t) * (size_t)n);
    if (values_top(vals, n, "table_sum", &top) < 0) goto done;
    buckets = calloc((size_t)top + 1, sizeof(jac));   /* all zero: Z = 0, the identity */
    if (!buckets) { PyErr_NoMemory(); goto done; }
    int bad = 0;
    jac acc;
    const unsigned char *tbytes = (const unsigned char *)tb.buf + 64 * start;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t v = vals[i];
        if (!v) continue;
        u64 x[4], y[4];
        f_from_be(x, tbytes + 64 * i);
        f_from_be(y, tbytes + 64 * i + 32);
        if (!below(x, P) || !below(y, P)) { bad = 1; break; }
        f_mul(x, x, R2);
        f_mul(y, y, R2);
        if (v < 0) { f_sub(y, (const u64[4]){0, 0, 0, 0}, y); v = -v; }
        j_add_aff(&buckets[v], &buckets[v], x, y);
    }
    if (!bad) {
        jac run;
        j_set_inf(&run);
        j_set_inf(&acc);
        for (int64_t b = top; b >= 1; b--) {     /* acc = sum_b b S_b */
            j_add(&run, &run, &buckets[b]);
            j_add(&acc, &acc, &run);
        }
    }
    Py_END_ALLOW_THREADS
    if (bad) { PyErr_SetString(PyExc_ValueError, "table_sum: a coordinate is not below p"); goto done; }
    result = affine_result(&acc);
done:
    free(buckets);
    free(vals);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&vb);
    return result;
}

/* small_sum(group, points, values, out): out = sum_i values[i] points[i] for OpenSSL points
 * (addresses of EC_POINT objects of `group`, as 64-bit integers) and small signed values
 * (int64, |v| <= 2^20), by OpenSSL's own point additions into one bucket per magnitude and
 * sign, then running sums: rangeproof.group.msm_small's loop without a Python call per point.
 * The caller (msm_small) takes the addresses from petlib points it has checked and keeps them
 * alive; this is not a public interface. Variable time in the values. Returns None, or raises
 * ArithmeticError when OpenSSL fails (out then undefined). */
static PyObject *py_small_sum(PyObject *self, PyObject *args) {
    unsigned long long gaddr, oaddr;
    Py_buffer pb, vb;
    (void)self;
    if (!PyArg_ParseTuple(args, "Ky*y*K", &gaddr, &pb, &vb, &oaddr)) return NULL;
    PyObject *result = NULL;
    EC_POINT **pos = NULL, **neg = NULL;
    EC_POINT *run = NULL;
    BN_CTX *ctx = NULL;
    int64_t top = 0;
    Py_ssize_t n = vb.len / 8;
    const EC_GROUP *g = (const EC_GROUP *)(uintptr_t)gaddr;
    EC_POINT *out = (EC_POINT *)(uintptr_t)oaddr;
    const uint64_t *paddr = pb.buf;
    const int64_t *vals = vb.buf;
    if (vb.len % 8 || pb.len != vb.len || !g || !out) {
        PyErr_SetString(PyExc_ValueError, "small_sum: one 8-byte address per 8-byte value");
        goto done;
    }
    if (values_top(vals, n, "small_sum", &top) < 0) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!paddr[i]) {
            PyErr_SetString(PyExc_ValueError, "small_sum: a null point");
            goto done;
        }
    }
    pos = calloc((size_t)top + 1, sizeof(EC_POINT *));
    neg = calloc((size_t)top + 1, sizeof(EC_POINT *));
    ctx = BN_CTX_new();
    run = EC_POINT_new(g);
    if (!pos || !neg || !ctx || !run) { PyErr_NoMemory(); goto done; }
    for (int64_t b = 1; b <= top; b++) {
        pos[b] = EC_POINT_new(g);
        neg[b] = EC_POINT_new(g);
        if (!pos[b] || !neg[b]) { PyErr_NoMemory(); goto done; }
    }
    int ok = EC_POINT_set_to_infinity(g, run) && EC_POINT_set_to_infinity(g, out);
    for (int64_t b = 1; ok && b <= top; b++)
        ok = EC_POINT_set_to_infinity(g, pos[b]) && EC_POINT_set_to_infinity(g, neg[b]);
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        int64_t v = vals[i];
        const EC_POINT *P = (const EC_POINT *)(uintptr_t)paddr[i];
        if (v > 0) ok = EC_POINT_add(g, pos[v], pos[v], P, ctx);
        else if (v < 0) ok = EC_POINT_add(g, neg[-v], neg[-v], P, ctx);
    }
    for (int64_t b = top; ok && b >= 1; b--) {  /* run = sum_{b' >= b} (P_b' - N_b') */
        ok = EC_POINT_invert(g, neg[b], ctx) && EC_POINT_add(g, run, run, pos[b], ctx) &&
             EC_POINT_add(g, run, run, neg[b], ctx) && EC_POINT_add(g, out, out, run, ctx);
    }
    if (!ok) {
        ERR_clear_error();  /* a stale entry would be read by the thread's next TLS call */
        PyErr_SetString(PyExc_ArithmeticError, "small_sum: an OpenSSL point operation failed");
        goto done;
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    if (pos) for (int64_t b = 0; b <= top; b++) EC_POINT_free(pos[b]);
    if (neg) for (int64_t b = 0; b <= top; b++) EC_POINT_free(neg[b]);
    free(pos);
    free(neg);
    EC_POINT_free(run);
    BN_CTX_free(ctx);
    PyBuffer_Release(&pb);
    PyBuffer_Release(&vb);
    return result;
}

/* ternary_transpose(stream, rows, gamma, table, out): for a block of `cols` columns of the
 * projection matrix P (rows x d, entries in {-1, 0, 1}, four per keystream byte: column j's
 * entries are bytes [j rows / 4, (j + 1) rows / 4) of `stream`, entry 4t + i of byte t read
 * through table[byte][i], the int8 table of rangeproof/norm/projection.py), writes
 * v_j = sum_k P[k, j] gamma_k for each column as seven int32 limbs of 16 bits (six unsigned,
 * the seventh the signed rest: v_j = sum_l limb_l 2^(16 l)). gamma: rows 16-byte little-endian
 * values below 2^96 (so |v_j| < rows 2^96 < 2^127 for rows < 2^31). Per byte position t a
 * 256-entry table of the four entries' signed sum is built first (rows / 4 tables of 128-bit
 * integers), so a column costs rows / 4 lookups and additions. */
static PyObject *py_ternary_transpose(PyObject *self, PyObject *args) {
    Py_buffer sb, gb, tb, ob;
    Py_ssize_t rows;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*ny*y*w*", &sb, &rows, &gb, &tb, &ob)) return NULL;
    PyObject *result = NULL;
    __int128 *T = NULL;
    Py_ssize_t width = rows / 4;
    if (rows <= 0 || rows % 8 || rows > (1 << 20) || gb.len != rows * 16 || tb.len != 1024 ||
        sb.len % width || ob.len != (sb.len / width) * 7 * 4) {
        PyErr_SetString(PyExc_ValueError, "ternary_transpose: lengths do not fit");
        goto done;
    }
    Py_ssize_t cols = sb.len / width;
    const unsigned char *g = gb.buf, *st = sb.buf;
    const signed char *tab = tb.buf;
    for (Py_ssize_t k = 0; k < rows; k++) {
        if (g[16 * k + 12] | g[16 * k + 13] | g[16 * k + 14] | g[16 * k + 15]) {
            PyErr_SetString(PyExc_ValueError, "ternary_transpose: a coefficient is not below 2^96");
            goto done;
        }
    }
    for (int i = 0; i < 1024; i++) {
        if (tab[i] < -1 || tab[i] > 1) {
            PyErr_SetString(PyExc_ValueError, "ternary_transpose: table entries must be -1, 0 or 1");
            goto done;
        }
    }
    T = malloc(sizeof(__int128) * 256 * (size_t)width);
    if (!T) { PyErr_NoMemory(); goto done; }
    int32_t *out = ob.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t t = 0; t < width; t++) {
        __int128 gam[4];
        for (int i = 0; i < 4; i++) {
            unsigned __int128 v = 0;
            for (int b = 11; b >= 0; b--) v = (v << 8) | g[16 * (4 * t + i) + b];
            gam[i] = (__int128)v;
        }
        for (int byte = 0; byte < 256; byte++) {
            __int128 acc = 0;
            for (int i = 0; i < 4; i++) acc += (__int128)tab[4 * byte + i] * gam[i];
            T[256 * t + byte] = acc;
        }
    }
    for (Py_ssize_t j = 0; j < cols; j++) {
        const unsigned char *col = st + j * width;
        __int128 acc = 0;
        for (Py_ssize_t t = 0; t < width; t++) acc += T[256 * t + col[t]];
        unsigned __int128 u = (unsigned __int128)acc;
        int32_t *o = out + 7 * j;
        for (int l = 0; l < 6; l++) o[l] = (int32_t)((u >> (16 * l)) & 0xFFFF);
        o[6] = (int32_t)(acc >> 96);
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    free(T);
    PyBuffer_Release(&sb);
    PyBuffer_Release(&gb);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&ob);
    return result;
}

/* the OpenSSL this module runs against: small_sum handles petlib's points, so both must be the
 * same library (rangeproof.group compares this with petlib's before using small_sum) */
static PyObject *py_openssl_version_num(PyObject *self, PyObject *args) {
    (void)self; (void)args;
    return PyLong_FromUnsignedLong(OpenSSL_version_num());
}

static PyMethodDef methods[] = {
    {"openssl_version_num", py_openssl_version_num, METH_NOARGS,
     "openssl_version_num() -> int: OpenSSL_version_num() of the libcrypto this module uses."},
    {"ternary_transpose", py_ternary_transpose, METH_VARARGS,
     "ternary_transpose(stream, rows, gamma, table, out): v = P^T gamma for a block of the\n"
     "projection matrix, as seven 16-bit int32 limbs per column (rangeproof/norm/projection.py)."},
    {"table_sum", py_table_sum, METH_VARARGS,
     "table_sum(table, start, values) -> bytes | None: sum of small signed values (int64) times\n"
     "the affine table's points from index start on, as msm returns it. Variable time."},
    {"small_sum", py_small_sum, METH_VARARGS,
     "small_sum(group, points, values, out): sum of small signed values times OpenSSL points\n"
     "(addresses), into the OpenSSL point at address out. Internal: rangeproof.group.msm_small."},
    {"tensor_add", py_tensor_add, METH_VARARGS,
     "tensor_add(total, a, b, offset, d): total[offset + i] += a[i // w] * b[i % w] / 2^256 mod q\n"
     "(32-byte big-endian entries below q, w = len(b) // 32), in place."},
    {"msm", py_msm, METH_VARARGS,
     "msm(points, scalars, window=0) -> bytes | None: sum of scalars[i] * points[i] on P-256.\n"
     "points: 64 bytes (affine x || y, big-endian) each; scalars: 32 bytes big-endian each.\n"
     "Returns affine x || y, or None for the identity. Variable time: public scalars only."},
    {"field_mul", py_field_mul, METH_VARARGS,
     "field_mul(a, b) -> bytes: a * b mod p (32-byte big-endian), for known-answer tests."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_p256msm",
                                    "Variable-time P-256 multi-exponentiation (public scalars).",
                                    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__p256msm(void) {
    /* ONE = 2^256 mod p and R2 = 2^512 mod p, by doubling 1 modulo p */
    u64 v[4] = {1, 0, 0, 0};
    for (int i = 0; i < 512; i++) {
        f_add(v, v, v);
        if (i == 255) memcpy(ONE, v, sizeof v);
    }
    memcpy(R2, v, sizeof v);
    /* -q^-1 mod 2^64 by Newton's iteration (q odd): inv = q^-1 mod 2^64 */
    u64 inv = Q[0];
    for (int i = 0; i < 6; i++) inv *= 2 - Q[0] * inv;
    Q_N0 = (u64)0 - inv;
    return PyModule_Create(&module);
}
