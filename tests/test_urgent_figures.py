"""The urgent-sign rules measured on the labelled messages in tests/data/.

Recall on urgent messages must be at least 0.95 and false alarms on the others
at most 5%, in each language. The figures are printed (pytest -s) so the README
can quote them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from quote_service.safety.signs import LANGUAGES, assess

DATA = Path(__file__).parent / "data"
MIN_RECALL = 0.95
MAX_FALSE_ALARMS = 0.05
MIN_MESSAGES = 240


def labelled(language: str) -> list[dict]:
    return yaml.safe_load((DATA / f"urgent_messages_{language}.yaml").read_text(encoding="utf-8"))


def test_the_labelled_set_is_large_enough_and_mixed():
    total = 0
    for language in LANGUAGES:
        messages = labelled(language)
        assert {m["urgent"] for m in messages} == {True, False}
        assert all(isinstance(m["text"], str) and m["text"].strip() for m in messages)
        total += len(messages)
    assert total >= MIN_MESSAGES


@pytest.mark.parametrize("language", LANGUAGES)
def test_recall_and_false_alarms_meet_the_targets(language):
    messages = labelled(language)
    urgent = [m["text"] for m in messages if m["urgent"]]
    other = [m["text"] for m in messages if not m["urgent"]]
    missed = [text for text in urgent if not assess(text).urgent]
    alarms = [text for text in other if assess(text).urgent]
    recall = 1 - len(missed) / len(urgent)
    false_alarm_rate = len(alarms) / len(other)
    print(
        f"\n{language}: {len(urgent)} urgent, recall {recall:.3f}; "
        f"{len(other)} other, false alarms {false_alarm_rate:.3f}"
    )
    assert recall >= MIN_RECALL, f"missed: {missed}"
    assert false_alarm_rate <= MAX_FALSE_ALARMS, f"false alarms: {alarms}"
