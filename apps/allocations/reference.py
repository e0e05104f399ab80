"""A slow, independent reference for the engine: sequential linear programs (scipy's HiGHS).

Used by the tests and the benchmark, never by the portal. It computes the exact (fractional)
weighted max-min fair totals the way the textbook states them, one org variable per (org, pool):

1. With the orgs still rising in ``U`` held at ``x_o >= clip(w_o t, f_o, d_o)`` and the frozen ones
   fixed, find the largest feasible level ``t``: a binary search over the levels where some
   ``clip`` changes form (feasibility LPs), then one LP maximising ``t`` on the last feasible segment.
2. At that level an org in ``U`` is frozen when no feasible allocation gives it more than its bound.
   One LP maximising a small capped slack for every candidate sorts out those that clearly can
   rise; for the others, an LP maximises their sum: if it cannot exceed the sum of their bounds,
   none of them can rise; otherwise those above their bound in the optimum can, and the others are
   asked again. Orgs at their demand freeze too.
3. Repeat until every org is frozen; if every remaining demand fits, they all get it.

It assumes a valid instance (the engine validates) and raises ``ValueError`` when the floors alone
are infeasible.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from apps.allocations.engine import Pool, RequestLine

_SLACK = 1e-2  # GPU-hours: the "clearly can rise" probe of step 2 (affects speed only, not results)


def reference_totals(
    pools: list[Pool], requests: list[RequestLine], *, tol: float = 1e-6
) -> dict[tuple[str, str], float]:
    """Exact weighted max-min fair totals per (org, class)."""
    result: dict[tuple[str, str], float] = {}
    by_class: dict[str, list[RequestLine]] = {}
    for line in requests:
        by_class.setdefault(line.gpu_class, []).append(line)
    for gpu_class, lines in sorted(by_class.items()):
        class_pools = sorted((p for p in pools if p.gpu_class == gpu_class), key=lambda p: p.id)
        totals = _ClassLP(class_pools, sorted(lines, key=lambda line: line.org), tol).solve()
        for line, total in zip(sorted(lines, key=lambda line: line.org), totals, strict=True):
            result[(line.org, gpu_class)] = total
    return result


class _ClassLP:
    def __init__(self, pools: list[Pool], lines: list[RequestLine], tol: float) -> None:
        index = {pool.id: j for j, pool in enumerate(pools)}
        every = [pool.id for pool in pools]
        self.cap = np.array([pool.capacity for pool in pools], dtype=float)
        self.w = np.array([float(line.weight) for line in lines])
        self.f = np.array([float(line.floor) for line in lines])
        self.d = np.array([float(line.demand) for line in lines])
        self.n, self.m = len(lines), len(pools)
        pairs = [
            (i, index[pool_id])
            for i, line in enumerate(lines)
            for pool_id in sorted(set(every if line.pools is None else line.pools))
        ]
        self.v = len(pairs)  # one flow variable per eligible (org, pool)
        ones = np.ones(self.v)
        orgs, pools_ = (np.array(column, dtype=int) for column in zip(*pairs, strict=True))
        # totals = org_rows @ flows; usage = pool_rows @ flows
        self.org_rows = sparse.csr_matrix((ones, (orgs, np.arange(self.v))), shape=(self.n, self.v))
        self.pool_rows = sparse.csr_matrix((ones, (pools_, np.arange(self.v))), shape=(self.m, self.v))
        self.tol = tol * max(1.0, float(self.cap.sum()), float(self.d.sum()))

    def _lp(self, objective, *, lower=None, fixed=None, extra=None, bounds=None):
        """Maximise ``objective`` over [flows, extra variables] subject to the pool capacities and
        the demands, ``totals >= b`` for ``lower = (rows, b)``, ``totals == b`` for ``fixed`` and
        ``rows @ z <= b`` for ``extra``. Narrow matrices (flows only) are padded with zeros."""
        width = len(objective)

        def wide(matrix):
            matrix = sparse.csr_matrix(matrix)
            if matrix.shape[1] < width:
                matrix = sparse.hstack(
                    [matrix, sparse.csr_matrix((matrix.shape[0], width - matrix.shape[1]))]
                )
            return matrix

        blocks, rhs = [wide(self.pool_rows), wide(self.org_rows)], [self.cap, self.d]
        if lower is not None:
            blocks.append(-wide(lower[0]))
            rhs.append(-np.asarray(lower[1], dtype=float))
        if extra is not None:
            blocks.append(wide(extra[0]))
            rhs.append(np.asarray(extra[1], dtype=float))
        has_fixed = fixed is not None and fixed[0].shape[0] > 0
        return linprog(
            -np.asarray(objective, dtype=float),
            A_ub=sparse.vstack(blocks).tocsr(),
            b_ub=np.concatenate(rhs),
            A_eq=wide(fixed[0]) if has_fixed else None,
            b_eq=np.asarray(fixed[1], dtype=float) if has_fixed else None,
            bounds=bounds if bounds is not None else (0, None),
            method="highs",
        )

    def _bound(self, t: float, orgs: np.ndarray) -> np.ndarray:
        return np.clip(self.w[orgs] * t, self.f[orgs], self.d[orgs])

    def _feasible(self, t: float, rising: np.ndarray, fixed) -> bool:
        result = self._lp(
            np.zeros(self.v), lower=(self.org_rows[rising], self._bound(t, rising)), fixed=fixed
        )
        return result.status == 0

    def solve(self) -> list[float]:
        value = np.zeros(self.n)
        is_frozen = np.zeros(self.n, dtype=bool)
        if self.n and not self._feasible(0.0, np.arange(self.n), None):
            raise ValueError("the floors alone are infeasible")
        t_prev = 0.0
        while not is_frozen.all():
            rising = np.flatnonzero(~is_frozen)
            frozen = np.flatnonzero(is_frozen)
            fixed = (self.org_rows[frozen], value[frozen])
            t_top = max(t_prev, float((self.d[rising] / self.w[rising]).max()))
            if self._feasible(t_top, rising, fixed):
                value[rising] = self.d[rising]
                break
            t = self._highest_level(t_prev, t_top, rising, fixed)
            bound = self._bound(t, rising)
            newly = self._blocked(rising, fixed, bound)
            if not newly.any():
                raise RuntimeError(f"no org could be frozen at level {t}")
            value[rising[newly]] = bound[newly]
            is_frozen[rising[newly]] = True
            t_prev = t
        return value.tolist()

    def _highest_level(self, lo: float, hi: float, rising: np.ndarray, fixed) -> float:
        w, f, d = self.w[rising], self.f[rising], self.d[rising]
        points = np.concatenate((f / w, d / w))
        points = np.concatenate(([lo], np.unique(points[(points > lo) & (points < hi)]), [hi]))
        # points[0] = lo is feasible and points[-1] = hi is not: find the last feasible one.
        first, last, best = 1, len(points) - 2, 0
        while first <= last:
            middle = (first + last) // 2
            if self._feasible(float(points[middle]), rising, fixed):
                best, first = middle, middle + 1
            else:
                last = middle - 1
        a, b = float(points[best]), float(points[best + 1])
        # On [a, b] every bound is f, w t or d: maximise t with the linear ones as w t - total <= 0.
        middle = (a + b) / 2
        linear = (f < w * middle) & (w * middle < d)
        constant = np.where(f >= w * middle, f, d)[~linear]
        t_column = sparse.csr_matrix(w[linear].reshape(-1, 1))
        extra = sparse.hstack([-self.org_rows[rising[linear]], t_column])
        objective = np.zeros(self.v + 1)
        objective[-1] = 1.0
        result = self._lp(
            objective,
            lower=(self.org_rows[rising[~linear]], constant),
            fixed=fixed,
            extra=(extra, np.zeros(int(linear.sum()))),
            bounds=[(0, None)] * self.v + [(a, b)],
        )
        return float(result.x[-1]) if result.status == 0 else a

    def _blocked(self, rising: np.ndarray, fixed, bound: np.ndarray) -> np.ndarray:
        """Which rising orgs cannot get more than ``bound`` (those at their demand included)."""
        blocked = bound >= self.d[rising] - self.tol
        candidates = np.flatnonzero(~blocked)
        if not len(candidates):
            return blocked
        # Probe: maximise sum(s), 0 <= s <= _SLACK, total - s >= bound for the candidates.
        c = len(candidates)
        slack = sparse.csr_matrix((np.ones(c), (candidates, np.arange(c))), shape=(len(rising), c))
        probe = self._lp(
            np.concatenate((np.zeros(self.v), np.ones(c))),
            lower=(sparse.hstack([self.org_rows[rising], -slack]), bound),
            fixed=fixed,
            bounds=[(0, None)] * self.v + [(0, _SLACK)] * c,
        )
        unsure = candidates if probe.status != 0 else candidates[probe.x[self.v :] < _SLACK / 2]
        # If the unsure ones together cannot get more than their bounds, none of them can alone;
        # otherwise those that got more in the optimum can rise: drop them and ask again.
        while len(unsure):
            objective = np.asarray(self.org_rows[rising[unsure]].sum(axis=0)).ravel()
            best = self._lp(objective, lower=(self.org_rows[rising], bound), fixed=fixed)
            if best.status != 0 or -best.fun <= bound[unsure].sum() + self.tol:
                blocked[unsure] = True
                break
            totals = self.org_rows[rising[unsure]] @ best.x
            unsure = unsure[totals <= bound[unsure] + self.tol]
        return blocked
