"""Bad records of a source's files: skipped, listed with a reason, and counted against a limit.

A source reads many records (image entries, annotations). One malformed record must not stop the
dataset: it is skipped and becomes a row of the experiment's rejects table, with a reason and a
detail that names the file and the record (index and id). Only when bad records are more than
`max_fraction` of all records does the stage stop, and then it reports every reason at once.
Whole-file defects (not JSON, a missing list, duplicate ids) are still errors of their own.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from pipeline.schema import schema_defaults

log = logging.getLogger(__name__)

# The rejects table: the same columns from every stage that rejects (sources, crops).
REJECT_COLUMNS = ["box_id", "source", "image_id", "category", "reason", "detail"]
REASONS = {
    "bad_image_record": "image entry lacks a usable id, file_name, width or height",
    "unsafe_file_name": "a downloaded source's image file name is absolute or leaves its folder "
    "(never opened)",
    "bad_record": "annotation is not an object or has no id",
    "unknown_image": "annotation refers to an image id the file does not list",
    "unknown_category": "annotation refers to a category id the file does not list",
    "bad_bbox": "bbox is not four finite numbers",
    "empty_box": "bbox has zero or negative width or height",
    "box_outside_image": "bbox lies wholly outside its image",
    "checksum_mismatch": "local file differs from the published checksum (refused)",
    "missing_image": "image file not found (a named dataset: `images:` must be the folder that "
    "holds the images by file_name; unset, the annotation file's folder)",
    "unreadable_image": "image file could not be read to find its size",
}
SHOWN = 3  # records shown per reason when the stage stops


@dataclass(frozen=True)
@schema_defaults("#/properties/bad_records")
class BadRecordSettings:
    max_fraction: float


class BadRecordsError(ValueError):
    """More bad records than allowed; the message lists every reason with its first records."""


@dataclass
class RecordRejects:
    """Collects the bad records of one source; `frame()` gives them as rejects-table rows."""

    source: str
    rows: list[dict] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(
        self,
        reason: str,
        detail: str,
        box_id: str = "",
        image_id: str = "",
        category: str = "",
        listed: bool = True,
        counted: bool = True,
    ) -> None:
        """A bad record: `counted` against the limit, and `listed` as a row of the rejects table
        (a box lost with its bad image entry is listed, but only the entry is counted)."""
        if counted:
            self.counts[reason] += 1
            examples = self.examples.setdefault(reason, [])
            if len(examples) < SHOWN:
                examples.append(detail)
        if listed:
            row = (box_id, self.source, str(image_id), category, reason, detail)
            self.rows.append(dict(zip(REJECT_COLUMNS, row, strict=True)))

    def extend(self, other: RecordRejects) -> None:
        """Take over the counts, examples and rows of `other` (another file of this source)."""
        self.rows.extend(other.rows)
        self.counts.update(other.counts)
        for reason, details in other.examples.items():
            mine = self.examples.setdefault(reason, [])
            mine.extend(details[: SHOWN - len(mine)])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def frame(self) -> pd.DataFrame:
        return rejects_frame(self.rows)

    def check(self, records: int, settings: BadRecordSettings, origin: str) -> None:
        """Log the counts; raise BadRecordsError if bad records exceed the allowed fraction."""
        if not self.total:
            return
        fraction = self.total / max(records, 1)
        log.warning(
            "%s: %d of %d records skipped (%.2f%%): %s",
            origin,
            self.total,
            records,
            100 * fraction,
            ", ".join(f"{r} {n}" for r, n in sorted(self.counts.items())),
        )
        if fraction > settings.max_fraction:
            raise BadRecordsError(self.summary(records, settings, origin))

    def summary(self, records: int, settings: BadRecordSettings, origin: str) -> str:
        lines = [
            f"{origin}: {self.total} of {records} records are bad, more than "
            f"bad_records.max_fraction {settings.max_fraction}:"
        ]
        for reason, count in sorted(self.counts.items()):
            lines.append(f"  {reason} ({REASONS.get(reason, reason)}): {count}")
            lines.extend(f"    {detail}" for detail in self.examples[reason])
        return "\n".join(lines)


def rejects_frame(rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """Rows -> the rejects table (its columns, all strings, sorted by box id then reason)."""
    frame = pd.DataFrame(rows, columns=REJECT_COLUMNS).astype(str)
    return frame.sort_values(["box_id", "reason"], ignore_index=True, kind="stable")
