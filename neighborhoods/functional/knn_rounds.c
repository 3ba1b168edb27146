/* The k softmax rounds of N3's continuous k-nearest neighbours (Ploetz & Roth 2018, Eqs. 8-10),
 * forward and backward, one row of M candidates at a time.
 *
 * Why C: N3's blocks in the digits ablation score 8 candidates for 9 queries of 64 images.
 * The op-by-op rounds of continuous_knn.py cost ~15 tensor ops per round forward and as many
 * backward, a few microseconds each, on 4608 numbers: the time is all dispatch. Here each row
 * is read once, the rounds' functions run in double precision (float32 rows keep each round's
 * numbers at float precision, see keep), and the results are written back in the row's dtype;
 * the two routes agree to round-off (tests compare them,
 * gradients included).
 *
 * Forward, per row, round j (logits L, temperature t, "scores" update when by_t):
 *   log w = L - max L - log sum exp(L - max L)                        (log-softmax)
 *   w = exp(L - max L) / sum, 0 where that is at most 4 tiny         (continuous_knn.exp_flushed;
 *                                                                      tiny of the row's dtype)
 *   step = log(1 - w): log1p(-w) below w = 1/2, log(-expm1(log w)) above (the two-branch
 *          log1mexp); the candidate is taken where log w >= 0
 *   L += step / t (by_t) or step; a taken candidate's logit becomes -inf.
 * Backward, rounds in reverse, from the gradient g of the next round's logits:
 *   d log w = dW * w + [not taken] (g / t or g) * w / (w - 1)         (expm1(log w) above w = 1/2)
 *   d L = [not taken] g + d log w - w * sum(d log w)                   (torch's log-softmax backward)
 *   dt -= sum [not taken] g * step / t^2                              (by_t only)
 *
 * Speed: libm's exp and log1p cost 3-5 ns a call. The per-candidate loops below call instead
 * exp_neg and log1p_neg, polynomials without branches that the compiler turns into vector code
 * (4 doubles a step with AVX2), to within a few units in the last place of double precision;
 * the rare candidates past w = 1/2 (at most one per row and round) take libm's log and expm1.
 * Built and loaded by native.py.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parallel_rows.h"

/* log(1/2): log1mexp's branch point (Maechler 2012) */
#define LOG_HALF (-0.69314718055994530942)
/* log of the least normal double: an exp below it is lost in a sum >= 1 */
#define LOG_DBL_MIN (-708.39641853226408)

/* c[0] x^(n-1) + ... + c[n-1] by Horner's rule; unrolled, so that the callers' loops vectorise */
static inline double horner(double x, const double *c, int n) {
    double p = c[0];
#pragma GCC unroll 20
    for (int i = 1; i < n; i++) p = p * x + c[i];
    return p;
}

/* 1/13!, 1/12!, ..., 1/1!, 1/0!: exp's Taylor series, highest power first */
static const double EXP_TAYLOR[14] = {
    1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
    1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0};

/* exp(x) for LOG_DBL_MIN <= x <= 0: x = n ln 2 + r with |r| <= ln 2 / 2 (Cody-Waite, n read off
 * the low bits of x / ln 2 + 1.5 * 2^52), exp(r) by its Taylor series to r^13 / 13! (the next
 * term is below 5e-18 of the sum), times 2^n built in the exponent bits */
static inline double exp_neg(double x) {
    const double shift = 0x1.8p52, ln2_hi = 0x1.62e42fefa3800p-1, ln2_lo = 0x1.ef35793c76730p-45;
    double y = x * 1.4426950408889634 + shift;
    double n = y - shift;
    uint64_t bits;
    memcpy(&bits, &y, sizeof bits);
    double r = (x - n * ln2_hi) - n * ln2_lo;
    double p = horner(r, EXP_TAYLOR, 14);
    /* the low bits of y hold n (two's complement); 2^n's exponent field is n + 1023 */
    uint64_t scale_bits = (bits - 0x4338000000000000ULL + 1023u) << 52;
    double scale;
    memcpy(&scale, &scale_bits, sizeof scale);
    return p * scale;
}

/* 1/35, 1/33, ..., 1/3, 1: 2 atanh(s) / (2 s) as a series in s^2, highest power first */
static const double ATANH_SERIES[18] = {
    1.0 / 35.0, 1.0 / 33.0, 1.0 / 31.0, 1.0 / 29.0, 1.0 / 27.0, 1.0 / 25.0, 1.0 / 23.0, 1.0 / 21.0, 1.0 / 19.0,
    1.0 / 17.0, 1.0 / 15.0, 1.0 / 13.0, 1.0 / 11.0, 1.0 / 9.0, 1.0 / 7.0, 1.0 / 5.0, 1.0 / 3.0, 1.0};

/* log(1 - p) for 0 <= p <= 1/2 (a little beyond is fine): with s = -p / (2 - p), |s| <= 1/3,
 * log(1 - p) = 2 atanh(s) = 2 s sum_n s^2n / (2n + 1), summed to n = 17 ((1/9)^17 / 35 < 2e-18) */
static inline double log1p_neg(double p) {
    double s = -p / (2.0 - p);
    return 2.0 * s * horner(s * s, ATANH_SERIES, 18);
}

/* rows handled together: each stage of a round runs over all of them before the next stage, so
 * the polynomials' dependency chains of different rows overlap (one row of 8 candidates is a
 * single vector, and its chain alone would leave the core waiting) */
#define BLOCK_ENTRIES 256

/* per-thread buffers of one block of rows (n = rows * m entries, rows per-row numbers) */
typedef struct { double *L, *E, *V, *P, *S, *top, *sum, *lse, *t; } work_t;

static double *work_alloc(work_t *w, int64_t n, int64_t rows) {
    size_t a = (size_t)(n ? n : 1), b = (size_t)(rows ? rows : 1);
    double *base = (double *)malloc(sizeof(double) * (a * 5 + b * 4));
    if (!base) return 0;
    w->L = base, w->E = base + a, w->V = base + 2 * a, w->P = base + 3 * a, w->S = base + 4 * a;
    w->top = base + 5 * a, w->sum = w->top + b, w->lse = w->sum + b, w->t = w->lse + b;
    return base;
}

/* x as the row's dtype holds it: float32 rows keep each round's sum, weights, log-weights, steps and
 * logits at float precision, as the torch rounds do. That matters where a weight is within float32's
 * round-off of 1: there torch's log-weight is exactly 0 and the candidate is taken (its next logit
 * -inf), where double precision would keep it with a finite, large step; under the 'logits' update
 * (the authors' code) that candidate can stay the best one. The libm-free functions still run in
 * double */
static inline double keep(double x, int single) { return single ? (double)(float)x : x; }

/* rows rb of m candidates forward: w->L holds their logits and is consumed, w->t their
 * temperatures; round j's log w and w go to V and P, then store(ctx, j) copies them out.
 * single: the rows are float32 (keep) */
static void forward_block(work_t *w, int64_t rb, int64_t m, int64_t k, int by_t, double flush, int single,
                          void (*store)(void *, int64_t, const double *, const double *), void *ctx) {
    double *L = w->L, *E = w->E, *V = w->V, *P = w->P, *S = w->S, *T = w->t;
    int64_t n = rb * m;
    for (int64_t j = 0; j < k; j++) {
        for (int64_t b = 0; b < rb; b++) {
            double top = -INFINITY;
            int nan = 0;
            for (int64_t i = b * m; i < (b + 1) * m; i++) {
                nan |= isnan(L[i]);
                top = L[i] > top ? L[i] : top;
            }
            w->top[b] = nan ? NAN : top;
        }
        for (int64_t b = 0; b < rb; b++) {
            double top = w->top[b];
            for (int64_t i = b * m; i < (b + 1) * m; i++) {
                double d = L[i] - top, e = exp_neg(d > LOG_DBL_MIN ? d : LOG_DBL_MIN);
                E[i] = d > LOG_DBL_MIN ? e : 0.0;
            }
        }
        for (int64_t b = 0; b < rb; b++) {
            double sum = isfinite(w->top[b]) ? 0.0 : NAN; /* a NaN, all -inf, or +inf: NaN, as torch's */
            for (int64_t i = b * m; i < (b + 1) * m; i++) sum += E[i];
            w->sum[b] = keep(sum, single);
            w->lse[b] = log(w->sum[b]);
        }
        for (int64_t b = 0; b < rb; b++) {
            double top = w->top[b], sum = w->sum[b], lse = w->lse[b];
            for (int64_t i = b * m; i < (b + 1) * m; i++) {
                double p = keep(E[i] / sum, single);
                V[i] = keep(L[i] - top - lse, single);
                P[i] = p <= flush ? 0.0 : p; /* exp_flushed; NaN stays */
            }
        }
        store(ctx, j, V, P);
        if (j + 1 == k) break;
        for (int64_t i = 0; i < n; i++) S[i] = keep(log1p_neg(P[i]), single);
        for (int64_t i = 0; i < n; i++) /* past w = 1/2 (or NaN): the other branch */
            if (!(V[i] < LOG_HALF) && !(V[i] >= 0)) S[i] = keep(log(-expm1(V[i])), single);
        for (int64_t b = 0; b < rb; b++) {
            double t = T[b];
            for (int64_t i = b * m; i < (b + 1) * m; i++) {
                double moved = keep(L[i] + (by_t ? keep(S[i] / t, single) : S[i]), single);
                L[i] = V[i] >= 0 ? -INFINITY : moved; /* taken: it leaves the next rounds */
            }
        }
    }
}

/* rows rb backward. Wt, Vt, Dt: (k, rb m) weights, log-weights and the weights' gradient,
 * round-major; G (rb m) receives the logits' gradient; acc (rb) each row's sum over rounds of
 * [not taken] g * step */
static void backward_block(work_t *w, const double *Wt, const double *Vt, const double *Dt, double *G,
                           double *acc, int64_t rb, int64_t m, int64_t k, int by_t) {
    double *Dl = w->E, *TT = w->S, *T = w->t;
    int64_t n = rb * m;
    for (int64_t i = 0; i < n; i++) G[i] = 0.0;
    for (int64_t b = 0; b < rb; b++) acc[b] = 0.0;
    for (int64_t j = k - 1; j >= 0; j--) {
        const double *P = Wt + j * n, *V = Vt + j * n, *D = Dt + j * n;
        if (j + 1 < k) { /* G holds the next round's logit gradient */
            for (int64_t b = 0; b < rb; b++) {
                double t = T[b];
                for (int64_t i = b * m; i < (b + 1) * m; i++) {
                    int taken = V[i] >= 0;
                    double through = taken ? 0.0 : G[i], p = P[i];
                    double slope = p / (p - 1.0); /* exp(v) / expm1(v), exact below 1/2 */
                    TT[i] = taken ? 0.0 : through * log1p_neg(p);
                    Dl[i] = D[i] * p + (taken ? 0.0 : (by_t ? through / t : through) * slope);
                    G[i] = through;
                }
            }
            for (int64_t i = 0; i < n; i++) /* past w = 1/2 (or NaN): the other branch */
                if (!(V[i] < LOG_HALF) && !(V[i] >= 0)) {
                    double em1 = expm1(V[i]);
                    TT[i] = G[i] * log(-em1);
                    Dl[i] = D[i] * P[i] + (by_t ? G[i] / T[i / m] : G[i]) * (P[i] / em1);
                }
            if (by_t)
                for (int64_t b = 0; b < rb; b++)
                    for (int64_t i = b * m; i < (b + 1) * m; i++) acc[b] += TT[i];
        } else {
            for (int64_t i = 0; i < n; i++) Dl[i] = D[i] * P[i];
        }
        for (int64_t b = 0; b < rb; b++) {
            double sum = 0.0;
            for (int64_t i = b * m; i < (b + 1) * m; i++) sum += Dl[i];
            for (int64_t i = b * m; i < (b + 1) * m; i++) G[i] = G[i] + (Dl[i] - P[i] * sum);
        }
    }
}

/* the dtype-specific part: reading rows into double, writing results back */
#define DEFINE_ROUNDS(T, SUFFIX, TINY)                                                           \
typedef struct {                                                                                \
    const T *logits, *t, *grad, *w, *log_w;                                                     \
    T *out_w, *out_log_w, *g_logits, *g_t;                                                      \
    int64_t m, k, t_stride;                                                                     \
    int by_t, failed; /* failed: a thread could not allocate its buffers */                     \
} args_##SUFFIX;                                                                                \
typedef struct { T *w, *log_w; int64_t rb, m, k; } out_##SUFFIX;                                \
static void store_##SUFFIX(void *ctx, int64_t j, const double *V, const double *P) {            \
    out_##SUFFIX *o = (out_##SUFFIX *)ctx;                                                      \
    for (int64_t i = 0; i < o->rb * o->m; i++) {                                                \
        o->log_w[i * o->k + j] = (T)V[i];                                                       \
        o->w[i * o->k + j] = (T)P[i];                                                           \
    }                                                                                           \
}                                                                                               \
static void forward_rows_##SUFFIX(void *ctx, int64_t begin, int64_t end) {                      \
    args_##SUFFIX *a = (args_##SUFFIX *)ctx;                                                    \
    int64_t m = a->m, k = a->k, per = m < BLOCK_ENTRIES ? BLOCK_ENTRIES / m : 1;                \
    work_t w;                                                                                   \
    double *buffers = work_alloc(&w, per * m, per);                                             \
    if (!buffers) { a->failed = 1; return; }                                                    \
    for (int64_t r0 = begin; r0 < end; r0 += per) {                                             \
        int64_t rb = end - r0 < per ? end - r0 : per;                                           \
        const T *x = a->logits + r0 * m;                                                        \
        for (int64_t i = 0; i < rb * m; i++) w.L[i] = (double)x[i];                             \
        for (int64_t b = 0; b < rb; b++) w.t[b] = (double)a->t[(r0 + b) * a->t_stride];         \
        out_##SUFFIX o = {a->out_w + r0 * m * k, a->out_log_w + r0 * m * k, rb, m, k};          \
        forward_block(&w, rb, m, k, a->by_t, 4.0 * (double)TINY, sizeof(T) == sizeof(float),     \
                      store_##SUFFIX, &o);                                                      \
    }                                                                                           \
    free(buffers);                                                                              \
}                                                                                               \
static void backward_rows_##SUFFIX(void *ctx, int64_t begin, int64_t end) {                     \
    args_##SUFFIX *a = (args_##SUFFIX *)ctx;                                                    \
    int64_t m = a->m, k = a->k, per = m < BLOCK_ENTRIES ? BLOCK_ENTRIES / m : 1;                \
    work_t w;                                                                                   \
    double *rows = (double *)malloc(sizeof(double) * (size_t)(per * m * (3 * k + 1) + per));    \
    double *buffers = rows ? work_alloc(&w, per * m, per) : 0;                                  \
    if (!buffers) { free(rows); a->failed = 1; return; }                                        \
    for (int64_t r0 = begin; r0 < end; r0 += per) {                                             \
        int64_t rb = end - r0 < per ? end - r0 : per, n = rb * m;                               \
        double *Wt = rows, *Vt = Wt + n * k, *Dt = Vt + n * k, *G = Dt + n * k, *acc = G + n;   \
        const T *wr = a->w + r0 * m * k, *vr = a->log_w + r0 * m * k, *dr = a->grad + r0 * m * k; \
        for (int64_t i = 0; i < n; i++)                                                         \
            for (int64_t j = 0; j < k; j++) {                                                   \
                Wt[j * n + i] = (double)wr[i * k + j];                                          \
                Vt[j * n + i] = (double)vr[i * k + j];                                          \
                Dt[j * n + i] = (double)dr[i * k + j];                                          \
            }                                                                                   \
        for (int64_t b = 0; b < rb; b++) w.t[b] = (double)a->t[(r0 + b) * a->t_stride];         \
        backward_block(&w, Wt, Vt, Dt, G, acc, rb, m, k, a->by_t);                              \
        T *g = a->g_logits + r0 * m;                                                            \
        for (int64_t i = 0; i < n; i++) g[i] = (T)G[i];                                         \
        if (a->g_t)                                                                             \
            for (int64_t b = 0; b < rb; b++) a->g_t[r0 + b] = (T)(-acc[b] / (w.t[b] * w.t[b])); \
    }                                                                                           \
    free(buffers);                                                                              \
    free(rows);                                                                                 \
}                                                                                               \
/* weights and log-weights (rows, m, k) of the logits (rows, m); t[r * t_stride] per row.        \
 * Returns 0, or 1 where memory for a thread's buffers ran out (the outputs are then unset) */  \
int nz_knn_rounds_forward_##SUFFIX(const T *logits, const T *t, int64_t t_stride, int64_t rows, \
                                   int64_t m, int64_t k, int by_t, T *w, T *log_w, int64_t threads) { \
    args_##SUFFIX a = {logits, t, 0, 0, 0, w, log_w, 0, 0, m, k, t_stride, by_t, 0};            \
    parallel_rows(forward_rows_##SUFFIX, &a, rows, threads);                                    \
    return a.failed;                                                                            \
}                                                                                               \
/* the logits' gradient (rows, m) from the weights' (rows, m, k); g_t (rows) or NULL: each row's \
 * share of the temperature's gradient (the caller sums rows that share one temperature).       \
 * Returns 0, or 1 where memory ran out, as the forward */                                      \
int nz_knn_rounds_backward_##SUFFIX(const T *grad, const T *w, const T *log_w, const T *t,      \
                                    int64_t t_stride, int64_t rows, int64_t m, int64_t k,       \
                                    int by_t, T *g_logits, T *g_t, int64_t threads) {            \
    args_##SUFFIX a = {0, t, grad, w, log_w, 0, 0, g_logits, g_t, m, k, t_stride, by_t, 0};     \
    parallel_rows(backward_rows_##SUFFIX, &a, rows, threads);                                   \
    return a.failed;                                                                            \
}

DEFINE_ROUNDS(float, f32, 1.17549435e-38f)
DEFINE_ROUNDS(double, f64, 2.2250738585072014e-308)
