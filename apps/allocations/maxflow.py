"""A small max-flow network (Dinic's algorithm) for the allocation engine; pure Python.

Capacities are ints (exact) or floats (compared with a tolerance); ``math.inf`` is allowed. Edge
``e ^ 1`` is the reverse of edge ``e``; ``cap`` holds residual capacities.
"""

from __future__ import annotations

from collections import deque
from typing import Any


class FlowNetwork:
    """Dinic's max-flow on a small graph, exact with int capacities, within ``tol`` with floats."""

    def __init__(self, n: int) -> None:
        self.adj: list[list[int]] = [[] for _ in range(n)]
        self.to: list[int] = []
        self.cap: list[Any] = []  # residual capacities; edge e ^ 1 is the reverse of e

    def add(self, u: int, v: int, capacity: float) -> int:
        e = len(self.to)
        self.to += (v, u)
        self.cap += (capacity, 0)
        self.adj[u].append(e)
        self.adj[v].append(e + 1)
        return e

    def flow(self, e: int) -> Any:
        return self.cap[e ^ 1]

    def _levels(self, source: int, tol: float) -> list[int]:
        level = [-1] * len(self.adj)
        level[source] = 0
        queue = deque([source])
        while queue:
            u = queue.popleft()
            for e in self.adj[u]:
                v = self.to[e]
                if level[v] < 0 and self.cap[e] > tol:
                    level[v] = level[u] + 1
                    queue.append(v)
        return level

    def max_flow(self, source: int, sink: int, tol: float = 0) -> Any:
        adj, to, cap = self.adj, self.to, self.cap
        total = 0
        while True:
            level = self._levels(source, tol)
            if level[sink] < 0:
                return total
            position = [0] * len(adj)
            path: list[int] = []
            u = source
            while True:
                if u == sink:
                    push = min(cap[e] for e in path)
                    for e in path:
                        cap[e] -= push
                        cap[e ^ 1] += push
                    total += push
                    path.clear()
                    u = source
                    continue
                edges = adj[u]
                i = position[u]
                while i < len(edges) and not (cap[edges[i]] > tol and level[to[edges[i]]] == level[u] + 1):
                    i += 1
                position[u] = i
                if i < len(edges):
                    path.append(edges[i])
                    u = to[edges[i]]
                elif u == source:
                    break
                else:  # dead end: retreat
                    level[u] = -1
                    u = to[path.pop() ^ 1]

    def reachable_from(self, source: int, tol: float) -> list[bool]:
        seen = [False] * len(self.adj)
        seen[source] = True
        queue = deque([source])
        while queue:
            u = queue.popleft()
            for e in self.adj[u]:
                v = self.to[e]
                if not seen[v] and self.cap[e] > tol:
                    seen[v] = True
                    queue.append(v)
        return seen

    def reaching(self, sink: int, tol: float) -> list[bool]:
        seen = [False] * len(self.adj)
        seen[sink] = True
        queue = deque([sink])
        while queue:
            v = queue.popleft()
            for e in self.adj[v]:
                u = self.to[e]
                if not seen[u] and self.cap[e ^ 1] > tol:
                    seen[u] = True
                    queue.append(u)
        return seen

    def augment_from(self, start: int, sink: int, amount: int, dead: list[bool]) -> int:
        """Push up to ``amount`` (integral) from ``start`` to ``sink`` on paths avoiding the ``dead``
        nodes, found depth first (the sink edge comes first in a pool's list, so spare capacity is
        found at once). A failed search marks every node it saw dead: none of them can reach the
        sink, and pushing flow elsewhere never lets them (new residual edges join path nodes)."""
        to, cap, adj = self.to, self.cap, self.adj
        pushed = 0
        while pushed < amount and not dead[start]:
            seen = {start}
            path: list[int] = []
            stack = [iter(adj[start])]
            while stack:
                for e in stack[-1]:
                    v = to[e]
                    if cap[e] > 0 and v not in seen and not dead[v]:
                        seen.add(v)
                        path.append(e)
                        stack.append(iter(adj[v]))
                        break
                else:
                    stack.pop()
                    if path:
                        path.pop()
                    continue
                if to[path[-1]] == sink:
                    break
            if not stack:
                for v in seen:
                    dead[v] = True
                break
            push = min(amount - pushed, *(cap[e] for e in path))
            for e in path:
                cap[e] -= push
                cap[e ^ 1] += push
            pushed += push
        return pushed
