/* The k softmax rounds of N3's continuous k-nearest neighbours (Ploetz & Roth 2018, Eqs. 8-10),
 * forward and backward, one row of M candidates at a time.
 *
 * Why C: N3's blocks in the digits ablation score 8 candidates for 9 queries of 64 images.
 * The op-by-op rounds of continuous_knn.py cost ~15 tensor ops per round forward and as many
 * backward, a few microseconds each, on 4608 numbers: the time is all dispatch. One pass per
 * row here does the same arithmetic, with two libm calls per candidate and round where the ops
 * make five (the weights are the kept exponentials over their sum, log(1 - w) is log1p(-w)), so
 * the two routes agree to round-off (tests compare them, gradients included).
 *
 * Forward, per row, round j (logits L, temperature t, "scores" update when by_t):
 *   log w = L - max L - log sum exp(L - max L)                        (log-softmax; sum in double)
 *   w = exp(L - max L) / sum, 0 where that is at most 4 tiny         (continuous_knn.exp_flushed)
 *   step = log(1 - w): log1p(-w) below w = 1/2, log(-expm1(log w)) above (the two-branch
 *          log1mexp); -inf where log w >= 0 (the candidate is taken)
 *   L += step / t (by_t) or step; a taken candidate's logit becomes -inf.
 * Backward, rounds in reverse, from the gradient g of the next round's logits:
 *   d log w = dW * w + [not taken] (g / t or g) * w / (w - 1)         (expm1(log w) above w = 1/2)
 *   d L = [not taken] g + d log w - w * sum(d log w)                   (torch's log-softmax backward)
 *   dt -= sum [not taken] g * step / t^2                              (by_t only)
 * Built and loaded by native.py.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

/* rows [begin, end) of one call, on one thread */
typedef void (*row_range_fn)(void *ctx, int64_t begin, int64_t end);
typedef struct { row_range_fn fn; void *ctx; int64_t begin, end; } slice_t;

static void *run_slice(void *arg) {
    slice_t *s = (slice_t *)arg;
    s->fn(s->ctx, s->begin, s->end);
    return 0;
}

/* fn over rows split into `threads` contiguous slices; a thread that cannot start runs here */
static void parallel_rows(row_range_fn fn, void *ctx, int64_t rows, int64_t threads) {
    enum { MAX_THREADS = 64 };
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > rows) threads = rows;
    if (threads < 1) threads = 1;
    slice_t slices[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int64_t t = 0; t < threads; t++) {
        slices[t] = (slice_t){fn, ctx, rows * t / threads, rows * (t + 1) / threads};
        if (t > 0) started[t] = pthread_create(&tid[t], 0, run_slice, &slices[t]) == 0;
    }
    run_slice(&slices[0]);
    for (int64_t t = 1; t < threads; t++) {
        if (started[t]) pthread_join(tid[t], 0);
        else run_slice(&slices[t]);
    }
}

/* log(1/2): log1mexp's branch point (Maechler 2012) */
#define LOG_HALF (-0.69314718055994530942)

#define DEFINE_ROUNDS(T, SUFFIX, EXP, LOG, LOG1P, EXPM1, TINY)                                   \
/* a < 0, p = exp(a) as the forward kept it: log(1 - e^a), exact on both branches */           \
static inline T log1mexp_##SUFFIX(T a, T p) {                                                   \
    return a < (T)LOG_HALF ? LOG1P(-p) : LOG(-EXPM1(a));                                        \
}                                                                                               \
typedef struct {                                                                                \
    const T *logits, *t, *grad, *w, *log_w;                                                     \
    T *out_w, *out_log_w, *g_logits, *g_t;                                                      \
    int64_t m, k, t_stride;                                                                     \
    int by_t;                                                                                   \
} args_##SUFFIX;                                                                                \
static void forward_rows_##SUFFIX(void *ctx, int64_t begin, int64_t end) {                      \
    args_##SUFFIX *a = (args_##SUFFIX *)ctx;                                                    \
    int64_t m = a->m, k = a->k;                                                                 \
    T *L = (T *)malloc(sizeof(T) * 2 * (m ? m : 1)), *E = L + m;                                \
    for (int64_t r = begin; r < end; r++) {                                                     \
        const T *x = a->logits + r * m;                                                         \
        T t = a->t[r * a->t_stride], *w = a->out_w + r * m * k, *lw = a->out_log_w + r * m * k; \
        for (int64_t i = 0; i < m; i++) L[i] = x[i];                                            \
        for (int64_t j = 0; j < k; j++) {                                                       \
            T top = -INFINITY;                                                                  \
            int nan = 0;                                                                        \
            for (int64_t i = 0; i < m; i++) {                                                   \
                nan |= isnan(L[i]);                                                             \
                top = L[i] > top ? L[i] : top;                                                  \
            }                                                                                   \
            if (nan) top = NAN;                                                                 \
            /* an exp below tiny is lost in a sum >= 1 (the maximum's own term): skipping it   \
             * changes nothing and spares libm's slow underflow path */                        \
            double sum = isfinite(top) ? 0.0 : NAN; /* NaN, all -inf or +inf: NaN, as torch */ \
            for (int64_t i = 0; i < m; i++) {                                                   \
                T d = L[i] - top;                                                               \
                E[i] = d > (T)LOG(TINY) ? EXP(d) : (T)0;                                        \
                sum += (double)E[i];                                                            \
            }                                                                                   \
            T lse = (T)LOG((T)sum), total = (T)sum;                                             \
            for (int64_t i = 0; i < m; i++) {                                                   \
                T v = L[i] - top - lse, p = E[i] / total; /* p = exp(v) up to round-off */      \
                p = p <= (T)4 * TINY ? (T)0 : p; /* as exp_flushed; NaN stays */                \
                lw[i * k + j] = v;                                                              \
                w[i * k + j] = p;                                                               \
                if (j + 1 < k) {                                                                \
                    if (v >= 0) L[i] = -INFINITY; /* taken: it leaves the next rounds */        \
                    else {                                                                      \
                        T step = log1mexp_##SUFFIX(v, p);                                       \
                        L[i] = L[i] + (a->by_t ? step / t : step);                              \
                    }                                                                           \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
    free(L);                                                                                    \
}                                                                                               \
static void backward_rows_##SUFFIX(void *ctx, int64_t begin, int64_t end) {                     \
    args_##SUFFIX *a = (args_##SUFFIX *)ctx;                                                    \
    int64_t m = a->m, k = a->k;                                                                 \
    T *gl = (T *)malloc(sizeof(T) * (m ? m : 1));                                               \
    for (int64_t r = begin; r < end; r++) {                                                     \
        T t = a->t[r * a->t_stride], *g = a->g_logits + r * m;                                  \
        const T *w = a->w + r * m * k, *lw = a->log_w + r * m * k, *dw = a->grad + r * m * k;   \
        double t_acc = 0.0;                                                                     \
        for (int64_t j = k - 1; j >= 0; j--) {                                                  \
            double sum = 0.0;                                                                   \
            for (int64_t i = 0; i < m; i++) {                                                   \
                T v = lw[i * k + j], d = dw[i * k + j] * w[i * k + j];                          \
                if (j + 1 < k) { /* g holds the next round's logit gradient */                  \
                    T through = v >= 0 ? (T)0 : g[i];                                           \
                    if (!(v >= 0)) { /* NaN goes through, as in the torch route */             \
                        T p = w[i * k + j]; /* exp(v) / expm1(v): p / (p - 1), exact below 1/2 */ \
                        if (a->by_t) t_acc += (double)(through * log1mexp_##SUFFIX(v, p));      \
                        d = d + (a->by_t ? through / t : through) * (p / (v < (T)LOG_HALF ? p - 1 : EXPM1(v))); \
                    }                                                                           \
                    g[i] = through;                                                             \
                } else {                                                                        \
                    g[i] = 0;                                                                   \
                }                                                                               \
                gl[i] = d;                                                                      \
                sum += (double)d;                                                               \
            }                                                                                   \
            for (int64_t i = 0; i < m; i++)                                                     \
                g[i] = g[i] + (gl[i] - w[i * k + j] * (T)sum);                                  \
        }                                                                                       \
        if (a->g_t) a->g_t[r] = (T)(-t_acc / ((double)t * (double)t));                         \
    }                                                                                           \
    free(gl);                                                                                   \
}                                                                                               \
/* weights and log-weights (rows, m, k) of the logits (rows, m); t[r * t_stride] per row */     \
void nz_knn_rounds_forward_##SUFFIX(const T *logits, const T *t, int64_t t_stride, int64_t rows, \
                                    int64_t m, int64_t k, int by_t, T *w, T *log_w, int64_t threads) { \
    args_##SUFFIX a = {logits, t, 0, 0, 0, w, log_w, 0, 0, m, k, t_stride, by_t};               \
    parallel_rows(forward_rows_##SUFFIX, &a, rows, threads);                                    \
}                                                                                               \
/* the logits' gradient (rows, m) from the weights' (rows, m, k); g_t (rows) or NULL: each row's \
 * share of the temperature's gradient (the caller sums rows that share one temperature) */    \
void nz_knn_rounds_backward_##SUFFIX(const T *grad, const T *w, const T *log_w, const T *t,     \
                                     int64_t t_stride, int64_t rows, int64_t m, int64_t k,      \
                                     int by_t, T *g_logits, T *g_t, int64_t threads) {           \
    args_##SUFFIX a = {0, t, grad, w, log_w, 0, 0, g_logits, g_t, m, k, t_stride, by_t};        \
    parallel_rows(backward_rows_##SUFFIX, &a, rows, threads);                                   \
}

DEFINE_ROUNDS(float, f32, expf, logf, log1pf, expm1f, 1.17549435e-38f)
DEFINE_ROUNDS(double, f64, exp, log, log1p, expm1, 2.2250738585072014e-308)
