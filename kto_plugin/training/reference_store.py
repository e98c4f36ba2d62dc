"""The reference log-probs of a run's rows, held in memory by row and filled as training meets them.

Each split the trainer sees (train, eval, ...) is a segment of one row numbering: a row's
number travels with it through the data loader (the `ref_row` column), so a micro-batch looks
its reference values up here. A value not known yet is NaN; the step that first meets a row
computes its reference values and records them. Under several processes each rank meets its
own micro-batches, so `merge_ranks` combines what every rank knows (a sum and a count per
row over the process group: no shared disk), after which every rank holds the same values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Segment:
    """One split's rows: numbers `offset` to `offset + rows - 1`, kept on disk under `key`."""

    name: str
    key: str
    offset: int
    rows: int


class ReferenceStore:
    def __init__(self, columns: tuple[str, ...]):
        self.columns = columns
        self.values = {column: torch.empty(0) for column in columns}
        self.segments: list[Segment] = []

    def add_segment(self, name: str, key: str, rows: int, known: dict[str, torch.Tensor] | None) -> Segment:
        """Number a split's rows after the ones already held; `known` holds values read from the cache (NaN where none)."""
        segment = Segment(name, key, sum(s.rows for s in self.segments), rows)
        for column in self.columns:
            values = torch.full((rows,), float("nan"))
            if known is not None and column in known:
                values = known[column].float().clone()
            self.values[column] = torch.cat([self.values[column], values])
        self.segments.append(segment)
        return segment

    def segment_values(self, segment: Segment) -> dict[str, torch.Tensor]:
        return {column: values[segment.offset:segment.offset + segment.rows] for column, values in self.values.items()}

    def known_rows(self, segment: Segment) -> int:
        return int((~self.segment_values(segment)[self.columns[0]].isnan()).sum())

    def lookup(self, rows: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """Every column's values of these rows, or None while any of them is not known yet."""
        rows = rows.cpu()
        found = {column: values[rows] for column, values in self.values.items()}
        return None if any(values.isnan().any() for values in found.values()) else found

    def record(self, rows: torch.Tensor, computed: dict[str, torch.Tensor]) -> None:
        rows = rows.cpu()
        for column in self.columns:
            self.values[column][rows] = computed[column].detach().float().cpu()

    def rows_needed(self, segment: Segment, first_rows: int) -> torch.Tensor:
        """The segment's local row indices among its first `first_rows` whose values are not known yet."""
        values = self.segment_values(segment)[self.columns[0]][:first_rows]
        return values.isnan().nonzero().flatten()

    def merge_ranks(self, accelerator) -> None:
        """Every rank ends with every value any rank computed (the mean where two computed the same row)."""
        if accelerator.num_processes == 1:
            return
        for column, values in self.values.items():
            known = ~values.isnan()
            stacked = torch.stack([torch.where(known, values, torch.zeros_like(values)), known.float()])
            total = accelerator.reduce(stacked.to(accelerator.device), reduction="sum").cpu()
            self.values[column] = torch.where(total[1] > 0, total[0] / total[1].clamp(min=1), float("nan"))
