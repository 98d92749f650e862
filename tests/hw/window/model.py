"""NumPy models of the window generator for its tests: the chunks of every window and the
clock edge at which each word goes in and each chunk comes out (no gaps, no backpressure);
plus the simulator process that records those edges."""

from __future__ import annotations

import numpy as np

from hw.window import WindowGenerator, WindowPass

__all__ = ["window_chunks", "pass_edges", "pack", "unpack", "transfer_monitor"]


def pack(lanes: np.ndarray) -> int:
    """One buffer word (int8 lanes, lane 0 in the low byte) as an unsigned integer."""
    return int.from_bytes(np.asarray(lanes, np.int8).tobytes(), "little")


def unpack(word: int, lanes: int) -> np.ndarray:
    return np.frombuffer(int(word).to_bytes(lanes, "little"), np.int8)


def transfer_monitor(ports: dict, edges: dict[str, list[int]]):
    """A simulator process appending to edges[name] every clock edge (counted from 0) at which
    stream ports[name] transfers (valid and ready sampled high)."""
    async def monitor(ctx):
        edge = 0
        names = list(ports)
        async for _, _, *flags in ctx.tick().sample(
                *[s for name in names for s in (ports[name].valid, ports[name].ready)]):
            for n, name in enumerate(names):
                if flags[2 * n] and flags[2 * n + 1]:
                    edges.setdefault(name, []).append(edge)
            edge += 1
    return monitor


def window_chunks(tile: np.ndarray, p: WindowPass) -> tuple[np.ndarray, np.ndarray]:
    """Chunks [pixels, chunk_count, lanes] and inside flags [pixels, chunk_count] of a pass over
    `tile` [in_h, in_w, groups, lanes]."""
    k = np.arange(p.chunk_start, p.chunk_start + p.chunk_count)
    ky, rest = np.divmod(k, p.kernel * p.groups)
    kx, group = np.divmod(rest, p.groups)
    oy, ox = np.divmod(np.arange(p.out_h * p.out_w), p.out_w)
    iy = oy[:, None] * p.stride - p.pad_top + ky[None, :]
    ix = ox[:, None] * p.stride - p.pad_left + kx[None, :]
    inside = (iy >= 0) & (iy < p.in_h) & (ix >= 0) & (ix < p.in_w)
    taps = tile[np.clip(iy, 0, p.in_h - 1), np.clip(ix, 0, p.in_w - 1), group[None, :]]
    return np.where(inside[..., None], taps, 0).astype(np.int8), inside


def pass_edges(passes: list[WindowPass], *, row_slots: int, accept: int
               ) -> tuple[list[int], list[int], list[int]]:
    """(cmd accept edges, input word edges, output chunk edges) of passes sent back to back
    with no gaps and no backpressure, the first cmd accepted at clock edge `accept`, following
    the timing rules of the WindowGenerator docstring:

    - cmd j+1 is accepted at the latest of one edge after the last input word of pass j, one
      edge after the output side's load of pass j, and WindowGenerator.CMD_SETUP edges after
      it is first offered (the edge after cmd j: commands are sent back to back); the output
      side loads pass j at the later of its cmd edge and one edge after the last issue of
      pass j-1;
    - output row oy issues its out_w*chunk_count chunks back to back from the later of the
      edge after the previous row's last issue (load + 2 + chunk_start // (K*groups) for the
      first row) and the edge after the last word of row min(oy*S - pad_top + K, in_h) - 1;
      each chunk leaves WindowGenerator.LATENCY edges after its issue;
    - input row r of pass j starts at the later of cmd edge + 1, the edge after the previous
      row and the first edge at which the line buffer has room: while the output side works on
      row oy of pass j, r < max(oy*S - pad_top, 0) + row_slots; while it still works on row oy
      of pass j-1, r + max(in_h[j-1] - max(oy*S - pad_top, 0), 0) < row_slots; once it has
      finished pass j, always.
    """
    n = len(passes)
    cmd_edge: list[int] = [accept]
    load_edge: list[int] = []
    row_end: list[list[int]] = [[] for _ in passes]    # edge of the last word of each row
    issue_end: list[list[int]] = [[] for _ in passes]  # edge of the last issue of each row

    def top(p: WindowPass, oy: int) -> int:
        return max(oy * p.stride - p.pad_top, 0)

    def phases(j: int):
        """(first edge, last edge or None, output row) while the output side is on pass j."""
        p = passes[j]
        for oy in range(p.out_h):
            first = load_edge[j] + 1 if oy == 0 else issue_end[j][oy - 1] + 1
            last = issue_end[j][oy] if oy < len(issue_end[j]) else None
            if last is not None and oy == p.out_h - 1 and j + 1 < len(load_edge):
                last = load_edge[j + 1]   # on the last row until the next pass loads
            yield first, last, oy
            if last is None:
                return

    def release(j: int, r: int) -> int | None:
        earliest = cmd_edge[j] + 1
        for pj in ([j - 1] if j else []) + [j]:
            if pj == j and len(load_edge) <= j:
                return None
            p = passes[pj]
            for first, last, oy in phases(pj):
                if last is not None and last < earliest:
                    continue
                if pj == j:
                    room = r - top(p, oy) < row_slots
                else:
                    room = r + max(p.in_h - top(p, oy), 0) < row_slots
                if room:
                    return max(first, earliest)
                if last is None:
                    return None
        return max(issue_end[j][-1] + 1, earliest)

    while True:
        progressed = False
        j = len(load_edge)
        if j < n and len(cmd_edge) > j and (j == 0 or len(issue_end[j - 1]) ==
                                             passes[j - 1].out_h):
            load_edge.append(max(cmd_edge[j], issue_end[j - 1][-1] + 1 if j else accept))
            progressed = True
        j = len(cmd_edge)
        if j < n and len(row_end[j - 1]) == passes[j - 1].in_h and len(load_edge) >= j:
            cmd_edge.append(max(row_end[j - 1][-1] + 1, load_edge[j - 1] + 1,
                                cmd_edge[j - 1] + 1 + WindowGenerator.CMD_SETUP))
            progressed = True
        for j, p in enumerate(passes):
            r = len(row_end[j])
            if len(cmd_edge) > j and r < p.in_h and (free := release(j, r)) is not None:
                start = max(row_end[j][-1] + 1 if r else cmd_edge[j] + 1, free)
                row_end[j].append(start + p.in_w * p.groups - 1)
                progressed = True
            oy = len(issue_end[j])
            if len(load_edge) > j and oy < p.out_h:
                need = min(oy * p.stride - p.pad_top + p.kernel, p.in_h) - 1
                if need < len(row_end[j]):
                    first = load_edge[j] + 2 + p.chunk_start // (p.kernel * p.groups)
                    start = max(issue_end[j][-1] + 1 if oy else first, row_end[j][need] + 1)
                    issue_end[j].append(start + p.out_w * p.chunk_count - 1)
                    progressed = True
        if all(len(issue_end[j]) == p.out_h and len(row_end[j]) == p.in_h
               for j, p in enumerate(passes)):
            break
        assert progressed, "the timing model found a deadlock"
    inputs = [end - p.in_w * p.groups + 1 + k for j, p in enumerate(passes)
              for end in row_end[j] for k in range(p.in_w * p.groups)]
    outputs = [end - p.out_w * p.chunk_count + 1 + WindowGenerator.LATENCY + k
               for j, p in enumerate(passes) for end in issue_end[j]
               for k in range(p.out_w * p.chunk_count)]
    return cmd_edge, inputs, outputs
