"""HireHop's status codes and their labels (reference/hirehop.md §5).

Tenants may rename statuses, so the tables are defaults that ``[hirehop]``
``job_status`` / ``invoice_status`` override code by code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

JOB_STATUS: Mapping[int, str] = MappingProxyType(
    {
        0: "Enquiry",
        1: "Provisional",
        2: "Booked",
        3: "Prepped",
        4: "Part Dispatched",
        5: "Dispatched",
        6: "Returned Incomplete",
        7: "Returned",
        8: "Requires Attention",
        9: "Cancelled",
        10: "Not Interested",
        11: "Completed",
    }
)

INVOICE_STATUS: Mapping[int, str] = MappingProxyType({0: "Draft", 2: "Approved", 3: "Paid"})


def to_code(value: object) -> int | None:
    """A status code from what HireHop sends: ``2``, ``"2"``, ``2.0``, ``"2.0"``; else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number)


@dataclass(frozen=True)
class StatusTable:
    """Labels for one kind of status, with the tenant's overrides applied."""

    labels: Mapping[int, str] = field(default_factory=dict)

    def label(self, value: object) -> str:
        """The label for a code, ``Unknown status (14)`` for an unknown one, else the text itself."""
        code = to_code(value)
        if code is None:
            return "" if value is None else str(value)
        return self.labels.get(code, f"Unknown status ({code})")

    def code_for(self, value: object) -> int | None:
        """The code a label or a code names (labels compare case-insensitively)."""
        code = to_code(value)
        if code is not None:
            return code
        wanted = str(value).strip().casefold()
        for known, label in self.labels.items():
            if label.casefold() == wanted:
                return known
        return None


@dataclass(frozen=True)
class StatusLabels:
    """Both tables, chosen by the event's entity (``job.*`` or ``invoice.*``)."""

    job: StatusTable = field(default_factory=lambda: StatusTable(JOB_STATUS))
    invoice: StatusTable = field(default_factory=lambda: StatusTable(INVOICE_STATUS))

    @classmethod
    def with_overrides(
        cls, job: Mapping[int, str] | None = None, invoice: Mapping[int, str] | None = None
    ) -> StatusLabels:
        return cls(
            job=StatusTable({**JOB_STATUS, **(job or {})}),
            invoice=StatusTable({**INVOICE_STATUS, **(invoice or {})}),
        )

    def for_event(self, event_name: str) -> StatusTable | None:
        """The table that applies to ``STATUS`` fields of this event, if any."""
        if event_name.startswith("job."):
            return self.job
        if event_name.startswith("invoice."):
            return self.invoice
        return None
