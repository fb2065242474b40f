/*
 * collectives.c: times MPI_Bcast and MPI_Allreduce (MPI_SUM) of N float64
 * values, the Open MPI baseline of `asyncmb bench comm`.
 *
 *   mpicc -O2 -o collectives collectives.c
 *   mpirun --allow-run-as-root --oversubscribe --mca btl tcp,self -np 4 \
 *       ./collectives [N=1048576] [REPS=20] [WARMUP=3]
 *
 * Each repetition starts after a barrier; its time is the maximum over the
 * ranks of (end - start), as asyncmb measures its own collectives. Rank 0
 * prints one line per operation:
 *
 *   mpi bcast np=4 n=1048576 reps=20 p50_ms=... min_ms=... p99_ms=...
 *
 * The Allreduce result is checked (every rank contributes rank+1+i%7).
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void report(const char *op, int np, long n, int reps, double *t) {
  qsort(t, reps, sizeof(double), cmp);
  int i99 = (int)(0.99 * (reps - 1) + 0.5);
  printf("mpi %s np=%d n=%ld reps=%d p50_ms=%.4f min_ms=%.4f p99_ms=%.4f\n", op, np, n, reps,
         1e3 * t[(reps - 1) / 2], 1e3 * t[0], 1e3 * t[i99]);
  fflush(stdout);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, np;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &np);
  long n = argc > 1 ? atol(argv[1]) : 1048576;
  int reps = argc > 2 ? atoi(argv[2]) : 20;
  int warmup = argc > 3 ? atoi(argv[3]) : 3;
  if (n < 1 || reps < 1 || warmup < 0) {
    if (rank == 0) fprintf(stderr, "usage: collectives [N>=1] [REPS>=1] [WARMUP>=0]\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  double *x = malloc(n * sizeof(double));
  double *times = malloc(reps * sizeof(double));
  if (!x || !times) MPI_Abort(MPI_COMM_WORLD, 1);

  for (int k = -warmup; k < reps; k++) {
    for (long i = 0; i < n; i++) x[i] = rank == 0 ? (double)(i % 1000) : -1;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    MPI_Bcast(x, (int)n, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    double dt = MPI_Wtime() - t0, mx;
    MPI_Reduce(&dt, &mx, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (x[n - 1] != (double)((n - 1) % 1000)) MPI_Abort(MPI_COMM_WORLD, 1);
    if (k >= 0) times[k] = mx;
  }
  if (rank == 0) report("bcast", np, n, reps, times);

  double want_last = 0;
  for (int r = 0; r < np; r++) want_last += r + 1 + (n - 1) % 7;
  for (int k = -warmup; k < reps; k++) {
    for (long i = 0; i < n; i++) x[i] = rank + 1 + i % 7;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    double dt = MPI_Wtime() - t0, mx;
    MPI_Reduce(&dt, &mx, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (x[n - 1] != want_last) MPI_Abort(MPI_COMM_WORLD, 1);
    if (k >= 0) times[k] = mx;
  }
  if (rank == 0) report("allreduce", np, n, reps, times);

  free(x);
  free(times);
  MPI_Finalize();
  return 0;
}
