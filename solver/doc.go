// Package solver holds the optimization side of asyncmb, as plain functions
// and small state machines that know nothing of sockets, files of data or
// goroutines of workers:
//
//   - Problem: phi(x) = f(x) + Psi(x), with f(x) = (1/n) sum_i l(a_i.x, y_i)
//     from kernels and a regularizer Psi (Reg), evaluated on the full data
//     in parallel by kernels.FullGrad.
//   - Reg: the regularizers none, l1, l2, elastic, box, nonneg, ball, l1box,
//     group and simplex, each with its value, exact proximal operator and
//     strong-convexity modulus, and the common step
//     x+ = argmin_u <g,u> + Psi(u) + (1/alpha) D(u, x) (Reg.Step), Euclidean
//     for all but the simplex, whose step is the entropic mirror step.
//   - Schedule: the step-size policies (constant, alpha0/sqrt(t+1), the
//     general convex and strongly convex schedules of Feyzmahdavian, Aytekin
//     and Johansson, optionally scaled by each update's measured delay), and
//     Averager, the uniform / tail / weighted average of the iterates.
//   - Reference: FISTA with backtracking and adaptive restart, the
//     deterministic solver that gives phi* for suboptimality curves, and a
//     small on-disk cache of optima keyed by the data's hash and the problem.
//   - SGD: serial proximal SGD with the same schedules and averaging (the
//     P = 1 baseline of the asynchronous algorithm).
//   - Checkpoint: a versioned, checksummed, atomically written snapshot of a
//     solver's state.
//
// solver imports only the standard library, gonum and kernels. Caller bugs
// (wrong lengths, an unknown kind) panic with a "solver: ..." message;
// anything that comes from users or files is returned as an error.
package solver
