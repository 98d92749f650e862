"""The controller's front end: fetch, the four-stage checker and the dispatcher.

Documented latencies (hw/controller/*.py) the model follows, times in cycles after the start
pulse (cycle 0):
  - the fetcher issues its first request in cycle 1, valid in cycle 2; a request of
    min(remaining, 4) words is issued when (words requested - words taken by the checker) +
    run <= 16 and no request is pending; it is valid the next cycle until the read DMA takes
    it (fetch has priority over LOADs there);
  - a word on `fetch_words` in cycle w can leave the fetcher FIFO in cycle w + 2 (f);
  - the checker is a CHECK_LATENCY-stage (4) lockstep pipeline: word k reaches its output 4
    advancing cycles after f_k; it stops while its output holds a word the dispatcher
    cannot place;
  - the dispatcher writes word k into its queue in the cycle it is on the checker's output
    and the queue has room (fewer than queue_depth entries); END needs no room;
  - a queue entry written in cycle d can be taken by its unit from d + 2.
"""

from __future__ import annotations

from hw.controller.checker import CHECK_LATENCY

__all__ = ["Frontend", "REQUEST_WORDS", "PREFETCH_WORDS", "CHECK_STAGES"]

REQUEST_WORDS = 4
PREFETCH_WORDS = 16
CHECK_STAGES = CHECK_LATENCY


class Frontend:
    """Fetch-request bookkeeping and the checker/dispatcher recurrences."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.w = [None] * n      # word on fetch_words
        self.f = [None] * n      # word leaves the fetcher FIFO into the checker
        self.o = [None] * n      # word valid on the checker output
        self.d = [None] * n      # word dispatched
        self.requested = 0       # words requested so far
        self.req_valid = None    # cycle the pending request became valid (None: none pending)
        self.req_words = 0
        self.last_accept = -1    # cycle the previous request was taken by the read DMA
        self.next_check = 0      # next word to enter the checker

    # ---- fetch requests --------------------------------------------------------------
    def request_time(self) -> int | None:
        """Earliest cycle the next request can be issued, or None (unknown / nothing left)."""
        if self.req_valid is not None or self.requested >= self.n:
            return None
        run = min(self.n - self.requested, REQUEST_WORDS)
        t = max(1, self.last_accept + 1)
        # credit: requested - taken(f < t) + run <= PREFETCH_WORDS
        need_taken = self.requested + run - PREFETCH_WORDS
        if need_taken > 0:
            ft = self.f[need_taken - 1]
            if ft is None:
                return None
            t = max(t, ft + 1)
        return t

    def issue_request(self, t: int) -> None:
        run = min(self.n - self.requested, REQUEST_WORDS)
        self.req_valid = t + 1
        self.req_words = run

    def accepted(self, t: int, word_times: list[int]) -> None:
        base = self.requested
        for i, wt in enumerate(word_times):
            self.w[base + i] = wt
        self.requested += len(word_times)
        self.req_valid = None
        self.last_accept = t

    # ---- checker and dispatch --------------------------------------------------------
    def try_enter(self, k: int) -> int | None:
        """f_k once it is final: the first cycle >= max(w_k + 2, f_{k-1} + 1) outside every
        stall of the checker output [o_j, d_j); None while a word ahead of it might still
        stall the pipeline before that cycle."""
        if self.w[k] is None or (k and self.f[k - 1] is None):
            return None
        f, o, d = self.f, self.o, self.d
        t = self.w[k] + 2
        if k:
            t = max(t, f[k - 1] + 1)
        changed = True
        while changed:
            changed = False
            low = None          # lower bound of o_j: o_j >= o_{j-1} + 1 and f_j + CHECK_STAGES
            for j in range(max(0, k - CHECK_STAGES), k):
                if d[j] is not None:
                    low = d[j]
                    if o[j] <= t < d[j]:
                        t = d[j]
                        changed = True
                else:
                    bound = o[j] if o[j] is not None else f[j] + CHECK_STAGES
                    if low is not None and low + 1 > bound:
                        bound = low + 1
                    low = bound
                    if bound <= t:
                        return None
        return t

    def output_time(self, k: int) -> int | None:
        """o_k: CHECK_STAGES advancing cycles after f_k, plus the stalls of the words ahead
        that began after it entered; None until those words are dispatched."""
        fk = self.f[k]
        if fk is None:
            return None
        stall = 0
        for j in range(max(0, k - CHECK_STAGES + 1), k):
            if self.d[j] is None:
                return None
            if self.o[j] > fk:
                stall += self.d[j] - self.o[j]
        return fk + CHECK_STAGES + stall
