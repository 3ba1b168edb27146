/* parallel_rows(fn, ctx, rows, threads): fn over rows split into `threads` contiguous slices, the
 * native kernels' one way of using several cores (top_k_scan.c, knn_rounds.c; built by native.py).
 *
 * Built with OpenMP (native.py tries -fopenmp first), the slices run on the OpenMP team that torch's
 * own CPU kernels use: torch loads its libgomp.so.1 before these kernels are loaded, and the loader
 * resolves this library's libgomp.so.1 to that copy. Why not threads of our own: after a torch
 * matmul, torch's OpenMP worker keeps spinning on the other core for a while, and a thread started
 * then shares that core with it. On a 2-core AMD EPYC the top-k scan of (4096, 1024) scores right
 * after the matmul that made them took 2.5-2.7 ms on one thread and on two threads of its own alike,
 * 1.5 ms on two once the spinning was switched off (OMP_WAIT_POLICY=PASSIVE), and 1.3-1.4 ms on two
 * when no matmul ran before. Without OpenMP the slices run on threads started per call; a thread
 * that cannot start has its slice run on the calling thread. */
#ifndef NZ_PARALLEL_ROWS_H
#define NZ_PARALLEL_ROWS_H
#include <stdint.h>
#ifndef _OPENMP
#include <pthread.h>
#endif

/* rows [begin, end) of one call, on one thread */
typedef void (*row_range_fn)(void *ctx, int64_t begin, int64_t end);

#ifdef _OPENMP
static void parallel_rows(row_range_fn fn, void *ctx, int64_t rows, int64_t threads) {
    if (threads > rows) threads = rows;
    if (threads <= 1) {
        if (rows > 0) fn(ctx, 0, rows);
        return;
    }
#pragma omp parallel for num_threads((int)threads) schedule(static, 1)
    for (int64_t t = 0; t < threads; t++) fn(ctx, rows * t / threads, rows * (t + 1) / threads);
}
#else
typedef struct { row_range_fn fn; void *ctx; int64_t begin, end; } nz_slice_t;

static void *nz_run_slice(void *arg) {
    nz_slice_t *s = (nz_slice_t *)arg;
    s->fn(s->ctx, s->begin, s->end);
    return 0;
}

static void parallel_rows(row_range_fn fn, void *ctx, int64_t rows, int64_t threads) {
    enum { MAX_THREADS = 64 };
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > rows) threads = rows;
    if (threads < 1) threads = 1;
    nz_slice_t slices[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int64_t t = 0; t < threads; t++) {
        slices[t] = (nz_slice_t){fn, ctx, rows * t / threads, rows * (t + 1) / threads};
        if (t > 0) started[t] = pthread_create(&tid[t], 0, nz_run_slice, &slices[t]) == 0;
    }
    nz_run_slice(&slices[0]);
    for (int64_t t = 1; t < threads; t++) {
        if (started[t]) pthread_join(tid[t], 0);
        else nz_run_slice(&slices[t]);
    }
}
#endif
#endif
