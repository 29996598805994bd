"""Lessons: every lesson's link opens its page with exactly its settings (no setting refused)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from kdcore.lessons import LESSONS
from test_links import framed, share_link  # noqa: F401  (the fixture)

REQUIRED = ["soft targets and t", "why", "few labels", "omitted class", "ensembles into one student",
            "optimal brain damage against magnitude", "1-bit students", "accuracy-vs-size frontier"]


def test_the_lessons_the_issue_asks_for_are_there():
    titles = " | ".join(lesson.title.lower() for lesson in LESSONS)
    for words in REQUIRED:
        assert words in titles, words
    for lesson in LESSONS:
        assert lesson.paragraph and lesson.press and lesson.look_for and lesson.params


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.slug for lesson in LESSONS])
def test_a_lessons_link_opens_its_page_with_its_settings(framed, digits_teacher, lesson):
    at = framed(lesson.page, lesson.params)
    assert not at.exception, at.exception
    assert not any("could not be used" in w.value or "was ignored" in w.value for w in at.warning), \
        [w.value for w in at.warning]
    link = share_link(at)           # the page's own link to what it shows: the lesson's settings
    for key, value in lesson.params.items():
        assert link.get(key) == (value if isinstance(value, list) else [value]), (key, value, link)


def test_the_lessons_page_lists_every_lesson_with_its_link(framed):
    at = framed("lessons")
    assert not at.exception
    codes = [c.value for c in at.main.code]
    assert len(codes) == len(LESSONS)
    for lesson, url in zip(LESSONS, codes):
        assert urlsplit(url).path.endswith("/" + lesson.page)
        assert {k: v if len(v) > 1 else v[0] for k, v in parse_qs(urlsplit(url).query).items()} == lesson.params
