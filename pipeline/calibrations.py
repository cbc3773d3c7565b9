"""Which calibration decides an answer: a collection's own, else the pipeline's.

A calibration fitted on one domain can be off on another: the shipped default's confidence,
fitted on SQuAD, overstates the share right by about 0.19 on Amazon product reviews
(bench/RESULTS.md), while it ranks answers nearly as well there. `verirag calibrate
--recalibrate-with RUN --collection NAME` writes a calibration recalibrated on a labelled run
of that domain into the collection's directory, and every answer from that collection is
decided by it, and says so (`Answer.calibration`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from verirag.evaluators.decision import Thresholds
from verirag.retrievers.collection_dir import CollectionError, fsync_dir, validate_name

CALIBRATION_FILE = "calibration.json"

log = logging.getLogger(__name__)


class CollectionCalibrationError(CollectionError):
    """A collection's calibration file cannot be read: the server's state, not the request."""

    def __init__(self, collection: str, detail: str) -> None:
        super().__init__(f"collection '{collection}': {detail}")
        self.collection = collection


@dataclass(frozen=True)
class ChosenCalibration:
    """The calibration an answer is decided by, whether it was fitted for the combination
    answering, and where it came from (shown with the answer)."""

    thresholds: Thresholds
    calibrated: bool
    source: str


def describe(t: Thresholds, origin: str) -> str:
    """`origin` and what the file is: "shipped: qwen2.5-1.5b version 11"."""
    if not t.model:
        return f"{origin}: library defaults"
    return f"{origin}: {t.model} version {t.version}"


def collection_calibration_path(collections_dir: Path, name: str) -> Path:
    return collections_dir / validate_name(name) / CALIBRATION_FILE


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` so that a reader sees the old file or the new one, never half
    of one, and the new one survives a power loss."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


class CollectionCalibrations:
    """The collections' own calibrations, read when a collection is asked and again only when
    its file changes (a recalibration is picked up without a restart)."""

    def __init__(self, collections_dir: Path) -> None:
        self.collections_dir = collections_dir
        self._lock = threading.Lock()
        self._read: dict[str, tuple[tuple[int, int], Thresholds]] = {}
        # Collections whose file, as last read, was said not to fit: said once per file, not
        # on every question.
        self._unfit_told: set[str] = set()

    def get(self, name: str) -> Thresholds | None:
        """The collection's calibration, or None when it has none. A file that is not a
        calibration is refused with its path, not passed over: answers would otherwise be
        decided by another calibration than the one its owner installed."""
        path = collection_calibration_path(self.collections_dir, name)
        try:
            st = path.stat()
        except FileNotFoundError:
            with self._lock:
                self._read.pop(name, None)
            return None
        key = (st.st_mtime_ns, st.st_size)
        with self._lock:
            cached = self._read.get(name)
            if cached is not None and cached[0] == key:
                return cached[1]
        try:
            thresholds = Thresholds.parse(path.read_text(), str(path))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CollectionCalibrationError(
                name,
                f"its calibration {path} cannot be read ({exc}); write it again with "
                f"`verirag calibrate --collection {name}` or remove it with "
                f"`verirag calibrate --collection {name} --remove`",
            ) from exc
        with self._lock:
            self._read[name] = (key, thresholds)
            self._unfit_told.discard(name)
        return thresholds

    def choose(
        self,
        names: Sequence[str],
        fallback: ChosenCalibration,
        covers: Callable[[Thresholds], bool],
    ) -> ChosenCalibration:
        """The calibration of the collections `names` when they all carry the same one and it
        was fitted for the combination answering (`covers`); else `fallback`. Collections of
        different calibrations asked together are decided by the fallback: no one domain's
        shift describes the mix."""
        own = [self.get(name) for name in names]
        first = own[0]
        if first is None or any(t != first for t in own[1:]):
            return fallback
        if not covers(first):
            with self._lock:
                told = names[0] in self._unfit_told
                self._unfit_told.add(names[0])
            if told:
                return fallback
            log.warning(
                "the calibration of collection '%s' was fitted for %s (judge %s, backend %s), "
                "not for the model answering: its answers are decided by %s",
                names[0],
                first.model or "no model",
                first.judge,
                first.backend,
                fallback.source,
            )
            return fallback
        label = f"collection '{names[0]}'" if len(names) == 1 else "collections"
        return ChosenCalibration(first, True, describe(first, label))
