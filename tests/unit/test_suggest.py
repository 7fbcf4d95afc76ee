"""'did you mean' suggestions, shared by context keys and tags."""

from __future__ import annotations

from ansible_collections.rocm.madengine.plugins.module_utils.suggest import close_matches, did_you_mean


def test_one_or_several_suggestions_read_as_a_sentence():
    words = ["dummy", "dummy2", "dummies", "other"]
    assert did_you_mean("dumy", words) == "did you mean 'dummy'?"
    assert did_you_mean("dumy", words, n=3, cutoff=0.6) == "did you mean 'dummy' or 'dummy2'?"
    assert did_you_mean("dumm", words, n=3, cutoff=0.6) == "did you mean 'dummy', 'dummy2' or 'dummies'?"
    assert did_you_mean("zzz", words) == ""


def test_repeated_choices_are_offered_once():
    assert close_matches("dumy", ["dummy", "dummy", "dummy"], n=3) == ["dummy"]
