"""Per-stage wall-clock timing of the cascade (pyramid, pnet, proposals_nms, crops, rnet, onet)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext


class StageTimer:
    """Accumulates seconds per stage name: ``with timer("pnet"): ...``; ``timer.seconds`` holds the sums."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start


class _NoTimer(StageTimer):
    """The default: times nothing, costs (almost) nothing (one shared do-nothing context)."""

    _nothing = nullcontext()

    def __call__(self, stage: str) -> AbstractContextManager[None]:
        return self._nothing


NO_TIMER = _NoTimer()
