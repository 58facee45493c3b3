"""Telegram HTML measured and cut by its visible characters."""

from __future__ import annotations

from notifybot.visible_html import cut_visible, visible_length


def test_tags_do_not_count_and_entities_count_once() -> None:
    assert visible_length('<b>a &amp; b</b> <a href="https://e.example/?x=1&amp;y=2">go</a>') == 8


def test_short_markup_is_left_alone() -> None:
    text = "<b>Tom &amp; Jerry</b>"
    assert cut_visible(text, 11) == text


def test_a_cut_keeps_entities_whole_and_closes_open_tags() -> None:
    text = '<b>Tom &amp; Jerry</b>\n<a href="https://e.example/">the job</a>'
    assert cut_visible(text, 6) == "<b>Tom &amp;…</b>"
    assert cut_visible(text, 16) == '<b>Tom &amp; Jerry</b>\n<a href="https://e.example/">the…</a>'
    assert visible_length(cut_visible(text, 16)) == 16


def test_a_cut_at_the_end_of_a_tag_ends_inside_it() -> None:
    assert cut_visible("<b>ab</b><i>cd</i>", 3) == "<b>ab…</b>"
    assert cut_visible("<b>ab</b><i>cde</i>", 4) == "<b>ab</b><i>c…</i>"
