"""The backtest's replay split across processes by independent groups of scopes.

A transaction is scored against its merchant's and its category's baselines (in its
currency), and feeds those two only (`baseline_worker.rollup.scopes_of`). Rows whose scopes
are never linked by a row, directly or through others, cannot change each other's verdicts:
each connected group of scopes replays on its own, in the rows' order, to the same verdicts
as in one replay of the whole file (a recompute falls on the same hour, takes the same
scopes' rows, and refits a scope's tail at the same look-ups). The groups are shared out
among worker processes forked after reading (so the rows are not copied through a pipe),
and their outcomes are put back in the rows' order.
"""

import multiprocessing
import traceback
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from tqdm import tqdm

from benchmarks.replay import replay
from detector_worker.scoring import ScoringConfig
from schemas import Severity, Transaction, Verdict

SEVERITY_CODES: tuple[Severity | None, ...] = (None, "medium", "high", "critical")
_CODE = {severity: code for code, severity in enumerate(SEVERITY_CODES)}
# Rows a worker replays between two reports of its progress.
_PROGRESS_STEP = 4096


@dataclass(frozen=True)
class Scored:
    """The replay's outcome per row, in the rows' order: severity code (`SEVERITY_CODES`),
    the score the curve ranks by, and the verdict of every flagged row by its index."""

    codes: bytearray
    scores: array  # type: ignore[type-arg]
    flagged: dict[int, Verdict]

    def severity(self, index: int) -> Severity | None:
        return SEVERITY_CODES[self.codes[index]]


def scope_groups(transactions: Sequence[Transaction]) -> list[list[int]]:
    """The rows' indices (ascending) by connected group of scopes, largest group first."""
    leader: dict[tuple[str, ...], tuple[str, ...]] = {}

    def find(node: tuple[str, ...]) -> tuple[str, ...]:
        root = leader.setdefault(node, node)
        while root != leader[root]:
            root = leader[root]
        leader[node] = root
        return root

    triples = {(t.category, t.merchant, t.currency) for t in transactions}
    for category, merchant, currency in triples:
        a, b = find(("category", category, currency)), find(("merchant", merchant, currency))
        leader[a] = b
    group_of = {triple: find(("category", triple[0], triple[2])) for triple in triples}
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, txn in enumerate(transactions):
        groups.setdefault(group_of[(txn.category, txn.merchant, txn.currency)], []).append(index)
    return sorted(groups.values(), key=len, reverse=True)


def shares(groups: list[list[int]], workers: int) -> list[list[int]]:
    """The groups dealt to at most `workers` workers, largest first to the least loaded;
    each worker's indices ascending (the rows' order)."""
    loads: list[list[int]] = [[] for _ in range(min(workers, len(groups)))]
    for group in groups:
        min(loads, key=len).extend(group)
    return [sorted(load) for load in loads]


Summary = Callable[[Verdict], float]


def replay_scored(
    transactions: Sequence[Transaction],
    config: ScoringConfig,
    score_of: Summary,
    workers: int,
    progress: tqdm,  # type: ignore[type-arg]
    **replay_args: Any,
) -> Scored:
    """Every row replayed (`benchmarks.replay.replay`), in `workers` processes when there
    are independent groups of scopes to share among them (and processes can fork)."""
    forks = "fork" in multiprocessing.get_all_start_methods()
    parts = shares(scope_groups(transactions), workers) if workers > 1 and forks else []
    if len(parts) <= 1:
        indices = list(range(len(transactions)))
        return Scored(
            *_replay_part(transactions, indices, config, score_of, progress.update, replay_args)
        )
    return _merge(
        len(transactions),
        _in_processes(transactions, parts, config, score_of, progress, replay_args),
    )


_Part = tuple[bytearray, array, dict[int, Verdict]]  # type: ignore[type-arg]


def _replay_part(
    transactions: Sequence[Transaction],
    indices: Sequence[int],
    config: ScoringConfig,
    score_of: Summary,
    advance: Callable[[int], object],
    replay_args: dict[str, Any],
) -> _Part:
    codes, scores = bytearray(len(indices)), array("d", bytes(8 * len(indices)))
    flagged: dict[int, Verdict] = {}
    verdicts = replay((transactions[i] for i in indices), config, **replay_args)
    for position, (index, (_, verdict)) in enumerate(zip(indices, verdicts, strict=True)):
        codes[position] = _CODE[verdict.severity]
        scores[position] = score_of(verdict)
        if verdict.severity is not None:
            flagged[index] = verdict
        if position % _PROGRESS_STEP == _PROGRESS_STEP - 1:
            advance(_PROGRESS_STEP)
    advance(len(indices) % _PROGRESS_STEP)
    return codes, scores, flagged


def _merge(size: int, parts: list[tuple[list[int], _Part]]) -> Scored:
    scored = Scored(bytearray(size), array("d", bytes(8 * size)), {})
    for indices, (codes, scores, flagged) in parts:
        for position, index in enumerate(indices):
            scored.codes[index] = codes[position]
            scored.scores[index] = scores[position]
        scored.flagged.update(flagged)
    return scored


def _in_processes(
    transactions: Sequence[Transaction],
    parts: list[list[int]],
    config: ScoringConfig,
    score_of: Summary,
    progress: tqdm,  # type: ignore[type-arg]
    replay_args: dict[str, Any],
) -> list[tuple[list[int], _Part]]:
    # Forked: the children inherit the rows (and the closures) instead of unpickling them.
    context = multiprocessing.get_context("fork")
    done = context.Value("q", 0)
    pipes: dict[Connection, list[int]] = {}
    processes = []
    for indices in parts:
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_worker,
            args=(sender, transactions, indices, config, score_of, done, replay_args),
        )
        process.start()
        sender.close()
        pipes[receiver] = indices
        processes.append(process)
    try:
        return _collect(pipes, done, progress)
    finally:
        # One worker failed (or was killed): the others are stopped, not joined at exit
        # minutes later while the error waits.
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()


def _collect(
    pipes: dict[Connection, list[int]],
    done: Any,
    progress: tqdm,  # type: ignore[type-arg]
) -> list[tuple[list[int], _Part]]:
    results: list[tuple[list[int], _Part]] = []
    waiting = list(pipes)
    while waiting:
        for ready in wait(waiting, timeout=0.5):
            assert isinstance(ready, Connection)
            try:
                outcome: _Part | str = ready.recv()
            except EOFError:
                outcome = "it ended without a result (killed, e.g. out of memory?)"
            if isinstance(outcome, str):
                raise RuntimeError(f"a replay worker failed:\n{outcome}")
            results.append((pipes[ready], outcome))
            waiting.remove(ready)
        progress.update(done.value - progress.n)
    return results


def _worker(
    sender: Connection,
    transactions: Sequence[Transaction],
    indices: list[int],
    config: ScoringConfig,
    score_of: Summary,
    done: Any,
    replay_args: dict[str, Any],
) -> None:
    def advance(rows: int) -> None:
        with done.get_lock():
            done.value += rows

    try:
        sender.send(_replay_part(transactions, indices, config, score_of, advance, replay_args))
    except BaseException:
        sender.send(traceback.format_exc())
        raise
    finally:
        sender.close()
