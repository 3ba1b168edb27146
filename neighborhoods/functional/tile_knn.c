/* k-NN of every query against all keys, a tile of queries at a time, the scores never leaving the cache.
 *
 * Why: on the CPU the blocked search of knn.py writes every score to memory with a batched matmul
 * and reads it back in the top-k scan. With 64 features a score costs 64 multiply-adds but 4 bytes
 * written and read again, and at 32x32 tokens (B 8, 1024 keys) the matmul ran at ~125 GFLOP/s
 * against the machine's ~185 (2-core AMD EPYC), its 32 MiB of scores going to memory and back. Here a
 * tile of TILE_ROWS queries is scored against one panel of PANEL keys at a time in registers, the
 * tile's rows of scores (TILE_ROWS x keys, 24 KiB at 1024 float keys) stay in the core's cache, and
 * each row goes through the top-k scan of top_k_scan.c (top_k_row.h) while it is still there.
 *
 * Every score is one multiply-add chain over the features in order (fused multiply-adds where the
 * CPU has them), so a query's scores do not depend on its place in a tile or on the thread count; they
 * can differ from a BLAS matmul's in the last bits (another summation order), so ranks can differ from
 * the blocked search's only between scores that close. Metrics: the dot product (cosine takes
 * normalised tokens, knn.py's PairScorer), and the negated squared distance
 * -max(0, -2 <q, k> + (|q|^2 + |k|^2)), PairScorer's formula with larger-is-nearer.
 *
 * Keys come packed (knn.py): (B, panels, d, PANEL), the keys padded with zeros to whole panels;
 * the padding's scores are computed and never scanned. Rows left open by the scan (k-th value -inf
 * or NaN) are the caller's to settle, as for top_k_scan.c. Built and loaded by native.py.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "parallel_rows.h"
#include "top_k_row.h"

/* queries per tile: 6 rows x 2 vectors = 12 accumulators, beside 2 key vectors and a broadcast, in
 * the 16 AVX registers */
#define TILE_ROWS 6

#if defined(__AVX2__) && defined(__FMA__)
#define PANEL_f32 16
#define PANEL_f64 8
/* ROWS query rows (q, stride d) against one packed panel b (d x PANEL): s[r * ld + j] = <q_r, key_j> */
#define DEFINE_PANEL(T, SUFFIX, VEC, LANES, ZERO, LOAD, BCAST, FMA, STORE)                        \
static inline __attribute__((always_inline)) void panel_##SUFFIX(const T *q, const int rows,     \
                                                                 int64_t d, const T *b, T *s,    \
                                                                 int64_t ld) {                   \
    VEC acc[TILE_ROWS][2];                                                                      \
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = ZERO();                             \
    for (int64_t c = 0; c < d; c++) {                                                           \
        VEC b0 = LOAD(b + c * 2 * LANES), b1 = LOAD(b + c * 2 * LANES + LANES);                \
        for (int r = 0; r < rows; r++) {                                                        \
            VEC x = BCAST(q + r * d + c);                                                       \
            acc[r][0] = FMA(x, b0, acc[r][0]);                                                  \
            acc[r][1] = FMA(x, b1, acc[r][1]);                                                  \
        }                                                                                       \
    }                                                                                           \
    for (int r = 0; r < rows; r++) {                                                            \
        STORE(s + r * ld, acc[r][0]);                                                           \
        STORE(s + r * ld + LANES, acc[r][1]);                                                   \
    }                                                                                           \
}
DEFINE_PANEL(float, f32, __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_broadcast_ss,
             _mm256_fmadd_ps, _mm256_storeu_ps)
DEFINE_PANEL(double, f64, __m256d, 4, _mm256_setzero_pd, _mm256_loadu_pd, _mm256_broadcast_sd,
             _mm256_fmadd_pd, _mm256_storeu_pd)
#else
#define PANEL_f32 16
#define PANEL_f64 8
/* the same sums in the same order, without vector registers */
#define DEFINE_PANEL(T, SUFFIX)                                                                 \
static inline void panel_##SUFFIX(const T *q, const int rows, int64_t d, const T *b, T *s,      \
                                  int64_t ld) {                                                 \
    for (int r = 0; r < rows; r++)                                                              \
        for (int j = 0; j < PANEL_##SUFFIX; j++) {                                              \
            T acc = 0;                                                                          \
            for (int64_t c = 0; c < d; c++) acc += q[r * d + c] * b[c * PANEL_##SUFFIX + j];    \
            s[r * ld + j] = acc;                                                                \
        }                                                                                       \
}
DEFINE_PANEL(float, f32)
DEFINE_PANEL(double, f64)
#endif

#define DEFINE_TILE_KNN(T, SUFFIX)                                                              \
typedef struct {                                                                                \
    const T *q, *kp, *qsq, *ksq;                                                                \
    const int64_t *exclude;                                                                     \
    int64_t nq, nk, panels, d, k;                                                               \
    T *val;                                                                                     \
    int64_t *idx;                                                                               \
    int failed; /* 1: no score buffer, 2: an excluded key outside 0..nk-1 */                    \
} tile_knn_##SUFFIX;                                                                            \
/* one tile's scores, panel by panel; the switch gives every row count its own unrolled kernel */ \
static void score_tile_##SUFFIX(const T *q, int rows, int64_t d, const T *kp, int64_t panels,   \
                                T *s, int64_t ld) {                                             \
    for (int64_t p = 0; p < panels; p++) {                                                      \
        const T *b = kp + p * d * PANEL_##SUFFIX;                                               \
        T *out = s + p * PANEL_##SUFFIX;                                                        \
        switch (rows) {                                                                         \
        case 6: panel_##SUFFIX(q, 6, d, b, out, ld); break;                                     \
        case 5: panel_##SUFFIX(q, 5, d, b, out, ld); break;                                     \
        case 4: panel_##SUFFIX(q, 4, d, b, out, ld); break;                                     \
        case 3: panel_##SUFFIX(q, 3, d, b, out, ld); break;                                     \
        case 2: panel_##SUFFIX(q, 2, d, b, out, ld); break;                                     \
        default: panel_##SUFFIX(q, 1, d, b, out, ld); break;                                    \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
static void tiles_##SUFFIX(void *ctx, int64_t begin, int64_t end) {                             \
    tile_knn_##SUFFIX *a = (tile_knn_##SUFFIX *)ctx;                                            \
    const int64_t ld = a->panels * PANEL_##SUFFIX, tiles = (a->nq + TILE_ROWS - 1) / TILE_ROWS;  \
    T *s = (T *)malloc(sizeof(T) * TILE_ROWS * ld);                                             \
    if (!s) {                                                                                   \
        a->failed = 1;                                                                          \
        return;                                                                                 \
    }                                                                                           \
    for (int64_t u = begin; u < end; u++) {                                                     \
        const int64_t b = u / tiles, q0 = u % tiles * TILE_ROWS;                                \
        const int rows = (int)(a->nq - q0 < TILE_ROWS ? a->nq - q0 : TILE_ROWS);               \
        score_tile_##SUFFIX(a->q + (b * a->nq + q0) * a->d, rows, a->d,                         \
                            a->kp + b * a->panels * a->d * PANEL_##SUFFIX, a->panels, s, ld);   \
        for (int r = 0; r < rows; r++) {                                                        \
            const int64_t row = b * a->nq + q0 + r;                                             \
            T *sr = s + r * ld;                                                                 \
            if (a->qsq) { /* -max(0, -2 <q, k> + (|q|^2 + |k|^2)): -2 x is exact, fused or not */ \
                const T qs = a->qsq[row], *ks = a->ksq + b * ld;                                \
                for (int64_t j = 0; j < a->nk; j++) {                                           \
                    T dist = (T)-2 * sr[j] + (qs + ks[j]);                                      \
                    sr[j] = -(dist < 0 ? (T)0 : dist); /* NaN stays NaN, as clamp_min keeps it */ \
                }                                                                               \
            }                                                                                   \
            if (a->exclude) {                                                                   \
                const int64_t e = a->exclude[row];                                              \
                if (e < 0 || e >= a->nk) {                                                      \
                    a->failed = 2;                                                              \
                    continue;                                                                   \
                }                                                                               \
                sr[e] = -INFINITY;                                                              \
            }                                                                                   \
            nz_top_k_row_##SUFFIX(sr, a->nk, a->k, a->val + row * a->k, a->idx + row * a->k);   \
        }                                                                                       \
    }                                                                                           \
    free(s);                                                                                    \
}                                                                                               \
/* q (B, nq, d), kp (B, panels, d, PANEL), qsq (B, nq) and ksq (B, panels PANEL) or both NULL      \
 * (the dot product), exclude (B, nq) or NULL; val and idx (B, nq, k). Returns 0, or 1 when a      \
 * thread had no memory for its score rows, 2 when an excluded key is not a key (nothing is then  \
 * to be read from val and idx) */                                                              \
int nz_tile_knn_##SUFFIX(const T *q, const T *kp, const T *qsq, const T *ksq,                   \
                         const int64_t *exclude, int64_t batch, int64_t nq, int64_t nk,         \
                         int64_t d, int64_t k, T *val, int64_t *idx, int64_t threads) {         \
    tile_knn_##SUFFIX a = {q, kp, qsq, ksq, exclude, nq, nk,                                    \
                           (nk + PANEL_##SUFFIX - 1) / PANEL_##SUFFIX, d, k, val, idx, 0};      \
    parallel_rows(tiles_##SUFFIX, &a, batch * ((nq + TILE_ROWS - 1) / TILE_ROWS), threads);     \
    return a.failed;                                                                            \
}

DEFINE_TILE_KNN(float, f32)
DEFINE_TILE_KNN(double, f64)

/* the keys per panel the packing in knn.py must use */
int64_t nz_tile_knn_panel_f32(void) { return PANEL_f32; }
int64_t nz_tile_knn_panel_f64(void) { return PANEL_f64; }
