"""Lay every activation tensor of a graph into one arena.

A buffer lives from the operator that writes it to the last operator that
reads it (graph inputs from before the first operator, graph outputs to after
the last one), in TFLM's ``AllocationInfoBuilder`` time steps.  Two buffers
may share bytes when their lifetimes do not overlap.

:func:`greedy_plan` mirrors TFLM's ``GreedyMemoryPlanner``: buffers in
decreasing size (stable for equal sizes), each placed at the lowest offset
whose gap between the time-overlapping buffers already placed is large
enough.  :func:`plan_arena` improves on TFLM in two ways and never does worse:

* RESHAPE/SQUEEZE outputs are the input's bytes under another shape (one
  buffer, the union of both lifetimes), where TFLM plans a second buffer and
  copies;
* buffers are aligned to their element size only (TFLM rounds every buffer up
  to 16 bytes), and several placement orders are tried, TFLM's first; the
  smallest arena wins.

:func:`tflm_arena_plan` reproduces TFLM's own figure for the activations
(16-byte rounding, no aliasing, its order), so the two can be compared.

Comparing with a TFLM arena fairly: TFLM's ``RecordingMicroAllocator``
reports a *head* (non-persistent: this activation plan plus the scratch
buffers kernels request in ``Prepare``, e.g. MEAN's int32 sums or CMSIS-NN's
im2col buffers) and a *tail* (persistent: ``TfLiteEvalTensor`` structs,
per-channel multipliers and shifts, node and registration structs, about
1.6 KB for micro_speech).  The arena planned here is the activations only, so
it is compared with the head; for models whose reference kernels request no
scratch, :func:`tflm_arena_plan` equals the head byte for byte (checked by
the tests on micro_speech: 5968 B; ours 5960 B).  The host-side scratch of
this runtime's own kernels (im2col matrices, float32 accumulators) models no
firmware buffer and is not part of the arena.
"""

from __future__ import annotations

from dataclasses import dataclass

from sed_runtime.model.graph import Graph

__all__ = ["Buffer", "ArenaPlan", "greedy_plan", "plan_arena", "tflm_arena_plan", "buffer_lifetimes",
           "TFLM_ALIGNMENT"]

TFLM_ALIGNMENT = 16  # MicroArenaBufferAlignment()


@dataclass(frozen=True)
class Buffer:
    """A planned region: its size in bytes, first and last time step, and the tensors stored in it."""

    size: int
    first: int
    last: int
    tensors: tuple[int, ...]
    alignment: int = 1


@dataclass(frozen=True)
class ArenaPlan:
    """Offsets of every activation tensor in the arena, and the arena's size in bytes."""

    size: int
    offsets: dict[int, int]
    buffers: tuple[Buffer, ...]
    buffer_offsets: tuple[int, ...]
    order: str

    def peak_at(self, step: int) -> int:
        """Bytes of the buffers alive at ``step`` (a lower bound on any arena)."""
        return sum(b.size for b in self.buffers if b.first <= step <= b.last)


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def buffer_lifetimes(graph: Graph, aliases: dict[int, int] | None = None) -> dict[int, tuple[int, int]]:
    """``{tensor: (first, last)}`` for every non-constant tensor, in TFLM's time steps.

    Graph inputs are created at step 0; operator ``i`` creates its outputs and
    uses its inputs at step ``i + 1``; graph outputs last until after the last
    operator.  ``aliases`` maps an output tensor to the tensor whose bytes it
    shares; the lifetimes of the two are merged under the root tensor.
    """
    aliases = aliases or {}

    def root(t: int) -> int:
        while t in aliases:
            t = aliases[t]
        return t

    life: dict[int, list[int]] = {}

    def touch(t: int, step: int, create: bool) -> None:
        if t < 0 or graph.tensors[t].is_constant:
            return
        r = root(t)
        span = life.setdefault(r, [step, step])
        if create:
            span[0] = min(span[0], step)
        span[1] = max(span[1], step)

    for t in graph.inputs:
        touch(t, 0, True)
    for i, op in enumerate(graph.operators):
        step = i + 1
        for t in op.outputs:
            touch(t, step, True)
        for t in op.inputs:
            touch(t, step, False)
    end = len(graph.operators)
    for t in graph.outputs:
        touch(t, end, True)
    return {t: (a, b) for t, (a, b) in life.items()}


def greedy_plan(buffers: list[Buffer], order: list[int] | None = None) -> list[int]:
    """Offsets for ``buffers`` by TFLM's greedy first fit.

    Mirrors TFLM ``GreedyMemoryPlanner::CalculateOffsetsIfNeeded`` for online
    buffers: ``order`` (default: decreasing size, ties in insertion order, as
    TFLM's stable bubble sort leaves them) is the placement order; each buffer
    goes to the first gap, scanning the already-placed buffers that overlap it
    in time in increasing offset order, large enough to hold it (offsets
    rounded up to the buffer's alignment), else after the last of them.
    """
    if order is None:
        order = sorted(range(len(buffers)), key=lambda i: -buffers[i].size)
    offsets = [-1] * len(buffers)
    placed: list[int] = []  # buffer ids sorted by offset
    for i in order:
        want = buffers[i]
        candidate = 0
        for j in placed:
            other = buffers[j]
            if other.first > want.last or want.first > other.last:
                continue
            start = _align(candidate, want.alignment)
            if offsets[j] - start >= want.size:
                break
            candidate = max(candidate, offsets[j] + other.size)
        offset = _align(candidate, want.alignment)
        offsets[i] = offset
        k = 0
        while k < len(placed) and offsets[placed[k]] <= offset:
            k += 1
        placed.insert(k, i)
    return offsets


def _arena_size(buffers: list[Buffer], offsets: list[int]) -> int:
    return max((o + b.size for o, b in zip(offsets, buffers)), default=0)


def _buffers(graph: Graph, aliases: dict[int, int], round_to: int, natural_alignment: bool) -> list[Buffer]:
    life = buffer_lifetimes(graph, aliases)
    members: dict[int, list[int]] = {}
    for t in range(len(graph.tensors)):
        if graph.tensors[t].is_constant:
            continue
        r = t
        while r in aliases:
            r = aliases[r]
        if r in life:
            members.setdefault(r, []).append(t)
    out = []
    for r in sorted(life):  # TFLM adds buffers in tensor order
        size = max(graph.tensors[t].nbytes for t in members[r])
        if size == 0:
            continue
        align = max(graph.tensors[t].dtype.itemsize for t in members[r]) if natural_alignment else 1
        first, last = life[r]
        out.append(Buffer(_align(size, round_to), first, last, tuple(members[r]), align))
    return out


def _plan(buffers: list[Buffer], order: list[int], name: str) -> ArenaPlan:
    offsets = greedy_plan(buffers, order)
    tensor_offsets = {t: o for b, o in zip(buffers, offsets) for t in b.tensors}
    return ArenaPlan(_arena_size(buffers, offsets), tensor_offsets, tuple(buffers), tuple(offsets), name)


def tflm_arena_plan(graph: Graph) -> ArenaPlan:
    """TFLM's plan of the activations: no aliasing, sizes rounded up to 16 bytes, its greedy order.

    Its ``size`` equals the non-persistent ("head") part of a TFLM arena for a
    model whose kernels request no scratch buffers.
    """
    buffers = _buffers(graph, {}, TFLM_ALIGNMENT, natural_alignment=False)
    return _plan(buffers, sorted(range(len(buffers)), key=lambda i: -buffers[i].size), "tflm-greedy")


def plan_arena(graph: Graph, aliases: dict[int, int] | None = None) -> ArenaPlan:
    """The smallest of several greedy plans of ``graph``'s activations (TFLM's order first).

    ``aliases`` maps an output tensor to an input whose bytes it reuses
    (RESHAPE/SQUEEZE).  The candidate orders are TFLM's (decreasing size),
    decreasing lifetime x size, decreasing lifetime, and creation order; the
    first smallest wins, so the result is never larger than TFLM's order on the
    same buffers.
    """
    buffers = _buffers(graph, aliases or {}, 1, natural_alignment=True)
    ids = list(range(len(buffers)))
    orders = {
        "size": sorted(ids, key=lambda i: -buffers[i].size),
        "area": sorted(ids, key=lambda i: (-(buffers[i].last - buffers[i].first + 1) * buffers[i].size,
                                           -buffers[i].size)),
        "lifetime": sorted(ids, key=lambda i: (-(buffers[i].last - buffers[i].first), -buffers[i].size)),
        "creation": sorted(ids, key=lambda i: (buffers[i].first, -buffers[i].size)),
    }
    best = None
    for name, order in orders.items():
        plan = _plan(buffers, order, name)
        if best is None or plan.size < best.size:
            best = plan
    return best if best is not None else ArenaPlan(0, {}, (), (), "empty")
