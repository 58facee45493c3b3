"""Status codes and labels, with tenant overrides."""

from __future__ import annotations

import pytest

from notifybot.statuses import INVOICE_STATUS, JOB_STATUS, StatusLabels, StatusTable, to_code


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2, 2),
        ("2", 2),
        (2.0, 2),
        ("2.0", 2),
        (" 11 ", 11),
        ("2.7", 2),
        ("Booked", None),
        ("", None),
        ("nan", None),
        ("inf", None),
        (None, None),
        (True, None),
    ],
)
def test_to_code_reads_numbers_however_spelled(value: object, expected: int | None) -> None:
    assert to_code(value) == expected


def test_default_job_labels_follow_the_reference_table() -> None:
    assert [JOB_STATUS[c] for c in (0, 1, 2, 5, 7, 9, 10, 11)] == [
        "Enquiry", "Provisional", "Booked", "Dispatched", "Returned", "Cancelled",
        "Not Interested", "Completed",
    ]


def test_default_invoice_labels_have_no_code_one() -> None:
    assert dict(INVOICE_STATUS) == {0: "Draft", 2: "Approved", 3: "Paid"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2, "Booked"), ("2", "Booked"), (2.0, "Booked"), (14, "Unknown status (14)"),
     ("14", "Unknown status (14)"),
     ("Booked", "Booked"), (None, "")],
)
def test_job_label(value: object, expected: str) -> None:
    assert StatusLabels().job.label(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "Draft"), ("2", "Approved"), (3, "Paid"), (1, "Unknown status (1)"), (4, "Unknown status (4)")],
)
def test_invoice_label(value: object, expected: str) -> None:
    assert StatusLabels().invoice.label(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Booked", 2), ("booked", 2), (" BOOKED ", 2), ("2", 2), (2.0, 2), ("Paid", None), ("x", None)],
)
def test_code_for_accepts_a_code_or_a_label(value: object, expected: int | None) -> None:
    assert StatusLabels().job.code_for(value) == expected


def test_overrides_rename_one_code_and_keep_the_rest() -> None:
    labels = StatusLabels.with_overrides(job={3: "Prepared"}, invoice={3: "Settled"})
    assert labels.job.label(3) == "Prepared"
    assert labels.job.label(2) == "Booked"
    assert labels.invoice.label(3) == "Settled"
    assert labels.invoice.label(2) == "Approved"


def test_overrides_can_add_an_unknown_code() -> None:
    labels = StatusLabels.with_overrides(invoice={1: "Sent"})
    assert labels.invoice.label(1) == "Sent"
    assert labels.invoice.code_for("sent") == 1


def test_renamed_label_replaces_the_old_one() -> None:
    table = StatusLabels.with_overrides(job={3: "Prepared"}).job
    assert table.code_for("Prepared") == 3
    assert table.code_for("Prepped") is None


def test_overrides_do_not_change_the_shared_defaults() -> None:
    StatusLabels.with_overrides(job={2: "Confirmed"})
    assert JOB_STATUS[2] == "Booked"
    assert StatusLabels().job.label(2) == "Booked"


@pytest.mark.parametrize(
    ("event", "expected"),
    [("job.status.updated", "job"), ("job.created", "job"),
     ("invoice.status.updated", "invoice"), ("contact.updated", None), ("jobs.x", None)],
)
def test_for_event_picks_the_table_by_entity(event: str, expected: str | None) -> None:
    labels = StatusLabels()
    table = labels.for_event(event)
    assert table == (getattr(labels, expected) if expected else None)


def test_empty_table_labels_every_code_generically() -> None:
    assert StatusTable().label(2) == "Unknown status (2)"
