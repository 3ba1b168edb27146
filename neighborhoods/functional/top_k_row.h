/* The one-row top-k scan of top_k_scan.c, shared with the kernels that score rows themselves
 * (tile_knn.c): the k largest of s[0:n] into val/idx in the zoo's order (top_k_scan.c says how and
 * which rows it leaves open). */
#ifndef NZ_TOP_K_ROW_H
#define NZ_TOP_K_ROW_H
#include <stdint.h>

void nz_top_k_row_f32(const float *s, int64_t n, int64_t k, float *val, int64_t *idx);
void nz_top_k_row_f64(const double *s, int64_t n, int64_t k, double *val, int64_t *idx);
#endif
