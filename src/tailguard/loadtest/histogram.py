"""HDR latency histograms: microseconds, 1 us .. 1 hour, 3 significant digits.

A :class:`Histogram` keeps the counts of an ``hdrh.HdrHistogram`` with exactly its bucket layout,
but sparse (a dict from hdrh's counts index to a count): hdrh's ``record_value`` costs about
2 us of pure Python, several times the rest of a request's bookkeeping, while the index is five
integer operations (:func:`index_of`). Memory is bounded by the number of distinct buckets
(at most :data:`COUNTS_LEN`), never by the number of samples.

hdrh itself is the wire format: :meth:`Histogram.encode` returns the base64 of
``HdrHistogram.encode()`` (V2, zlib) and :meth:`Histogram.decode` reads any such text, so other
HDR tools read our histograms and ours read theirs. Every figure (:meth:`Histogram.figures`)
follows hdrh's definitions: percentiles are the highest value equivalent to the bucket that
reaches the percentile's count, ``min`` the lowest equivalent value, ``mean`` weights each
bucket by its middle.

hdrh is imported only by :meth:`encode` and :meth:`decode`.
"""

from __future__ import annotations

import math
import zlib
from array import array
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "COUNTS_LEN",
    "HIGHEST_US",
    "LOWEST_US",
    "SIGNIFICANT_DIGITS",
    "Histogram",
    "index_of",
    "highest_equivalent",
    "lowest_equivalent",
    "merge",
]

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour, in microseconds
SIGNIFICANT_DIGITS = 3

# hdrh's layout for (1, 1 hour, 3 digits): 2 * 10**3 values need 2048 sub-buckets (11 bits), of
# which the upper half (1024) is new in each bucket; unit magnitude 0.
_SUB_BITS = 11
_HALF_BITS = _SUB_BITS - 1
_HALF = 1 << _HALF_BITS
_MASK = (1 << _SUB_BITS) - 1
_BUCKETS = (HIGHEST_US | _MASK).bit_length() - _SUB_BITS + 1
COUNTS_LEN = (_BUCKETS + 1) * _HALF  # the length of hdrh's counts array for this layout

_LATENCY_KEYS = ("min", "mean", "p50", "p90", "p99", "p999", "max")
_TIMELINE_KEYS = ("p50", "p90", "p99", "max")
_PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


def index_of(us: int) -> int:
    """hdrh's counts index of a value in microseconds (clamped to 0 .. 1 hour)."""
    if us < 2048:
        return us if us > 0 else 0
    if us > HIGHEST_US:
        us = HIGHEST_US
    bucket = (us | _MASK).bit_length() - _SUB_BITS
    return ((bucket + 1) << _HALF_BITS) + (us >> bucket) - _HALF


def _bucket_of(index: int) -> tuple[int, int]:
    bucket = (index >> _HALF_BITS) - 1
    sub = (index & (_HALF - 1)) + _HALF
    if bucket < 0:
        return 0, sub - _HALF
    return bucket, sub


def lowest_equivalent(index: int) -> int:
    """The lowest value (microseconds) that falls in the bucket ``index``."""
    bucket, sub = _bucket_of(index)
    return sub << bucket


def highest_equivalent(index: int) -> int:
    """The highest value (microseconds) that falls in the bucket ``index``."""
    bucket, sub = _bucket_of(index)
    return (sub << bucket) + (1 << bucket) - 1


def _middle(index: int) -> int:
    bucket, sub = _bucket_of(index)
    return (sub << bucket) + ((1 << bucket) >> 1)


class Histogram:
    """Latencies in microseconds, as HDR bucket counts (``counts``: index -> count)."""

    __slots__ = ("_encoded", "counts")

    def __init__(self, counts: Mapping[int, int] | None = None) -> None:
        self.counts: dict[int, int] = dict(counts) if counts else {}
        self._encoded: str | None = None

    def record(self, us: int, count: int = 1) -> None:
        """Count ``count`` samples of ``us`` microseconds."""
        index = index_of(us)
        self.counts[index] = self.counts.get(index, 0) + count
        self._encoded = None

    def add(self, other: Histogram | Mapping[int, int]) -> None:
        """Add another histogram's counts to this one."""
        counts = self.counts
        for index, count in (other.counts if isinstance(other, Histogram) else other).items():
            counts[index] = counts.get(index, 0) + count
        self._encoded = None

    @property
    def total(self) -> int:
        """How many samples were recorded."""
        return sum(self.counts.values())

    def __len__(self) -> int:
        """The number of non-empty buckets (what the memory use grows with)."""
        return len(self.counts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return {i: c for i, c in self.counts.items() if c} == {
            i: c for i, c in other.counts.items() if c
        }

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Histogram(total={self.total}, buckets={len(self)})"

    # -- figures -----------------------------------------------------------------------------

    def percentiles_us(self, percentiles: Iterable[float]) -> dict[float, int]:
        """The value (microseconds) at each percentile (0 .. 100); 0 for an empty histogram."""
        wanted = sorted(set(percentiles))
        total = self.total
        out = dict.fromkeys(wanted, 0)
        if not total:
            return out
        targets = [(p, max(int(min(p, 100.0) * total / 100 + 0.5), 1)) for p in wanted]
        seen = 0
        at = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            while at < len(targets) and seen >= targets[at][1]:
                p = targets[at][0]
                out[p] = highest_equivalent(index) if p else lowest_equivalent(index)
                at += 1
            if at == len(targets):
                break
        return out

    def percentile_ms(self, percentile: float) -> float:
        """The value at ``percentile`` (0 .. 100), in milliseconds."""
        return _ms(self.percentiles_us([percentile])[percentile])

    def figures(self, keys: Iterable[str] = _LATENCY_KEYS) -> dict[str, float]:
        """Latency figures in milliseconds (3 decimals) for ``keys`` among ``min``, ``mean``,
        ``p50``, ``p90``, ``p99``, ``p999``, ``max``: all 0.0 for an empty histogram."""
        keys = tuple(keys)
        counts = {i: c for i, c in self.counts.items() if c}
        if not counts:
            return dict.fromkeys(keys, 0.0)
        values = self.percentiles_us(_PERCENTILES[k] for k in keys if k in _PERCENTILES)
        out: dict[str, float] = {}
        for key in keys:
            if key == "min":
                out[key] = _ms(lowest_equivalent(min(counts)))
            elif key == "max":
                out[key] = _ms(highest_equivalent(max(counts)))
            elif key == "mean":
                total = sum(counts.values())
                out[key] = _ms(sum(_middle(i) * c for i, c in counts.items()) / total)
            else:
                out[key] = _ms(values[_PERCENTILES[key]])
        return out

    def timeline_figures(self) -> dict[str, float]:
        """The per-second figures: p50, p90, p99 and max, in milliseconds."""
        return self.figures(_TIMELINE_KEYS)

    # -- compact and wire forms --------------------------------------------------------------

    def pack(self) -> bytes:
        """A compact form (zlib of sorted index/count pairs) for holding many histograms."""
        flat = array("q")
        for index in sorted(self.counts):
            flat.append(index)
            flat.append(self.counts[index])
        return zlib.compress(flat.tobytes(), 1)

    @classmethod
    def unpack(cls, packed: bytes) -> Histogram:
        """The histogram :meth:`pack` packed."""
        flat = array("q")
        flat.frombytes(zlib.decompress(packed))
        return cls(dict(zip(flat[::2], flat[1::2], strict=True)))

    def encode(self) -> str:
        """The base64 text of ``hdrh.HdrHistogram.encode()`` for these counts."""
        if self._encoded is None:
            hist = _new_hdrh()
            for index, count in sorted(self.counts.items()):
                if count:
                    hist.record_value(lowest_equivalent(index), count)
            self._encoded = hist.encode().decode("ascii")
        return self._encoded

    @classmethod
    def decode(cls, encoded: str | bytes) -> Histogram:
        """A histogram from the base64 text of any hdrh-encoded histogram (values read as
        microseconds); raises ``ValueError`` for text that is not one."""
        from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped, unused-ignore]

        try:
            hist: Any = HdrHistogram.decode(encoded)
        except Exception as exc:  # hdrh raises TypeError, zlib.error and its own classes
            raise ValueError(f"not an encoded HDR histogram: {exc}") from exc
        out = cls()
        if not hist.get_total_count():
            return out
        if (hist.lowest_trackable_value, hist.significant_figures) == (
            LOWEST_US,
            SIGNIFICANT_DIGITS,
        ) and hist.counts_len <= COUNTS_LEN:
            # Our layout: the counts array is indexed as ours is; read the used part only.
            lo = index_of(hist.get_min_value())
            hi = min(index_of(hist.max_value), hist.counts_len - 1)
            for offset, count in enumerate(hist.counts[lo : hi + 1]):
                if count:
                    out.counts[lo + offset] = int(count)
        else:  # another layout: re-bucket each recorded value
            for item in hist.get_recorded_iterator():
                out.record(int(item.value_iterated_to), int(item.count_at_value_iterated_to))
        out._encoded = encoded.decode("ascii") if isinstance(encoded, bytes) else encoded
        return out


def merge(histograms: Iterable[Histogram | str]) -> Histogram:
    """One histogram holding the counts of all of ``histograms`` (objects or encoded text)."""
    out = Histogram()
    for hist in histograms:
        out.add(Histogram.decode(hist) if isinstance(hist, str) else hist)
    return out


def _new_hdrh() -> Any:
    from hdrh.histogram import HdrHistogram

    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def _ms(us: float) -> float:
    return round(us / 1000.0, 3) if math.isfinite(us) else 0.0
