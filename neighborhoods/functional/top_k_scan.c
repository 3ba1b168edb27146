/* One pass per row: the k largest scores of each row of a (rows, n) block, in the zoo's order
 * (larger first, ties to the lower index, NaN last; topk.py's docstring).
 *
 * Why a scan: torch.topk's CPU kernel costs a few ns per entry, more than the similarity matmul
 * that produced the scores. A row scanned left to right keeps its k best in a small sorted list;
 * once the list is full, an entry can only enter if it is strictly larger than the k-th held
 * value (an equal one has the larger index and loses the tie). The row is read a window of 32
 * floats (16 doubles) at a time: one mask of the entries above the threshold, and only those are
 * looked at, so a window that holds none costs four vector comparisons and one branch (a skip
 * that stopped at the first vector with a hit and re-read the rest took ~1.4x longer per row on
 * cosine scores, 1024 keys, k 9). Before the scan, the least of the maxima of k disjoint
 * segments of the row (k distinct entries reach it, so the k-th best does too) is a floor below
 * which nothing is inserted: on random rows that spares most of the ~k ln(n / k) insertions,
 * each a mispredicted branch, that a list starting empty would take.
 *
 * The list is exact for every row whose k-th value ends finite or +inf. A row whose k-th held
 * value is -inf or NaN (a forbidden key, masked to -inf, must rank after a genuine -inf and
 * after NaN; the window masks treat a NaN threshold as -inf) is not resolved here: the caller
 * recomputes those rows with the general rule. Built and loaded by native.py.
 */
#include <math.h>
#include <stdint.h>
#ifdef __AVX__
#include <immintrin.h>
#endif

#include "parallel_rows.h"
#include "top_k_row.h"

/* x (the later index) ranks before the held y: strictly larger, or y is NaN and x is not */
#define BEATS(x, y) (isnan(y) ? !isnan(x) : (x) > (y))

#ifdef __AVX__
/* max of s[0:len], NaN ignored (-inf when all are NaN): maxps returns its second operand on NaN */
static float seg_max_f32(const float *s, int64_t len) {
    __m256 m = _mm256_set1_ps(-INFINITY);
    int64_t j = 0;
    for (; j + 8 <= len; j += 8) m = _mm256_max_ps(_mm256_loadu_ps(s + j), m);
    float lanes[8], best = -INFINITY;
    _mm256_storeu_ps(lanes, m);
    for (int t = 0; t < 8; t++) best = lanes[t] > best ? lanes[t] : best;
    for (; j < len; j++) best = s[j] > best ? s[j] : best;
    return best;
}
static double seg_max_f64(const double *s, int64_t len) {
    __m256d m = _mm256_set1_pd(-INFINITY);
    int64_t j = 0;
    for (; j + 4 <= len; j += 4) m = _mm256_max_pd(_mm256_loadu_pd(s + j), m);
    double lanes[4], best = -INFINITY;
    _mm256_storeu_pd(lanes, m);
    for (int t = 0; t < 4; t++) best = lanes[t] > best ? lanes[t] : best;
    for (; j < len; j++) best = s[j] > best ? s[j] : best;
    return best;
}
#else
#define SEG_MAX(T, NAME)                                                                       \
    static T NAME(const T *s, int64_t len) {                                                   \
        T best = -INFINITY;                                                                    \
        for (int64_t j = 0; j < len; j++) best = s[j] > best ? s[j] : best;                    \
        return best;                                                                           \
    }
SEG_MAX(float, seg_max_f32)
SEG_MAX(double, seg_max_f64)
#endif

/* wide_[T](p, thr): bit t set where p[t] > thr, for t < WIDE_[T] (32 floats, 16 doubles: four
 * AVX registers); the scan's unit of work */
#define WIDE_f32 32
#define WIDE_f64 16
#ifdef __AVX__
static inline uint32_t wide_f32(const float *p, float thr) {
    __m256 t = _mm256_set1_ps(thr);
    return (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p), t, _CMP_GT_OQ))
         | (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p + 8), t, _CMP_GT_OQ)) << 8
         | (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p + 16), t, _CMP_GT_OQ)) << 16
         | (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p + 24), t, _CMP_GT_OQ)) << 24;
}
static inline uint32_t wide_f64(const double *p, double thr) {
    __m256d t = _mm256_set1_pd(thr);
    return (uint32_t)_mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(p), t, _CMP_GT_OQ))
         | (uint32_t)_mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(p + 4), t, _CMP_GT_OQ)) << 4
         | (uint32_t)_mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(p + 8), t, _CMP_GT_OQ)) << 8
         | (uint32_t)_mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(p + 12), t, _CMP_GT_OQ)) << 12;
}
#else
#define WIDE_BODY(W)                                                  \
    uint32_t m = 0;                                                   \
    for (int t = 0; t < W; t++) m |= (uint32_t)(p[t] > thr) << t;     \
    return m;
static inline uint32_t wide_f32(const float *p, float thr) { WIDE_BODY(32) }
static inline uint32_t wide_f64(const double *p, double thr) { WIDE_BODY(16) }
#endif

/* the largest value below x (x itself for -inf): ``y > below(x)`` is ``y >= x`` */
static float nextafter_f32(float x) { return x == -INFINITY ? x : nextafterf(x, -INFINITY); }
static double nextafter_f64(double x) { return x == -INFINITY ? x : nextafter(x, -INFINITY); }

#define DEFINE_SCAN(T, SUFFIX)                                                                  \
/* x (at index j) into the sorted list of the held best; the threshold follows its k-th value */ \
static inline void insert_##SUFFIX(T x, int64_t j, int64_t k, T *val, int64_t *idx, int64_t *held, \
                                   T *thr) {                                                    \
    int64_t p = *held < k ? (*held)++ : k - 1;                                                  \
    while (p > 0 && BEATS(x, val[p - 1])) {                                                     \
        val[p] = val[p - 1];                                                                    \
        idx[p] = idx[p - 1];                                                                    \
        p--;                                                                                    \
    }                                                                                           \
    val[p] = x;                                                                                 \
    idx[p] = j;                                                                                 \
    /* a NaN k-th value cannot threshold the vector skip: -inf lets every number through */     \
    if (*held == k && !isnan(val[k - 1]) && val[k - 1] > *thr) *thr = val[k - 1];               \
}                                                                                               \
static void row_##SUFFIX(const T *s, int64_t n, int64_t k, T *val, int64_t *idx) {             \
    int64_t held = 0;                                                                           \
    /* a floor for the k-th value before the scan: the least of the maxima of k disjoint       \
     * segments (k distinct entries are >= it). Entries below it are skipped from the start,    \
     * which spares most insertions (each a mispredicted branch) of a list that starts empty */ \
    T thr = -INFINITY;                                                                          \
    if (n >= 16 * k) {                                                                          \
        T floor_ = INFINITY;                                                                    \
        for (int64_t g = 0; g < k; g++) {                                                       \
            T m = seg_max_##SUFFIX(s + n * g / k, n * (g + 1) / k - n * g / k);                 \
            floor_ = m < floor_ ? m : floor_;                                                   \
        }                                                                                       \
        thr = nextafter_##SUFFIX(floor_);  /* x > thr  <=>  x >= floor_ */                      \
    }                                                                                           \
    int64_t j = 0;                                                                              \
    if (thr == -INFINITY)  /* no floor: the first k entries fill the list, whatever they are */   \
        for (; j < n && held < k; j++) insert_##SUFFIX(s[j], j, k, val, idx, &held, &thr);      \
    /* a window of WIDE entries at a time: only those above the threshold can enter (while the  \
     * list is full the threshold is its k-th value, so "above" is "beats"); each is still        \
     * checked, as the threshold rises with every insertion */                                    \
    for (; j + WIDE_##SUFFIX <= n; j += WIDE_##SUFFIX)                                          \
        for (uint32_t m = wide_##SUFFIX(s + j, thr); m; m &= m - 1) {                           \
            int64_t at = j + __builtin_ctz(m);                                                  \
            if (held == k ? !BEATS(s[at], val[k - 1]) : !(s[at] > thr)) continue;              \
            insert_##SUFFIX(s[at], at, k, val, idx, &held, &thr);                               \
        }                                                                                       \
    for (; j < n; j++) {                                                                        \
        if (held == k ? !BEATS(s[j], val[k - 1]) : !(s[j] > thr)) continue;                    \
        insert_##SUFFIX(s[j], j, k, val, idx, &held, &thr);                                     \
    }                                                                                           \
}                                                                                               \
void nz_top_k_row_##SUFFIX(const T *s, int64_t n, int64_t k, T *val, int64_t *idx) {           \
    row_##SUFFIX(s, n, k, val, idx);                                                            \
}                                                                                               \
typedef struct { const T *s; int64_t n, k; T *val; int64_t *idx; } scan_##SUFFIX;             \
static void rows_##SUFFIX(void *ctx, int64_t begin, int64_t end) {                              \
    scan_##SUFFIX *a = (scan_##SUFFIX *)ctx;                                                    \
    for (int64_t r = begin; r < end; r++)                                                       \
        row_##SUFFIX(a->s + r * a->n, a->n, a->k, a->val + r * a->k, a->idx + r * a->k);        \
}                                                                                               \
/* returns 0 (the rows of a thread that could not start ran on the calling thread) */            \
int nz_top_k_scan_##SUFFIX(const T *s, int64_t rows, int64_t n, int64_t k, T *val,              \
                           int64_t *idx, int64_t threads) {                                     \
    scan_##SUFFIX a = {s, n, k, val, idx};                                                      \
    parallel_rows(rows_##SUFFIX, &a, rows, threads);                                            \
    return 0;                                                                                   \
}

DEFINE_SCAN(float, f32)
DEFINE_SCAN(double, f64)
