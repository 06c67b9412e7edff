"""oracle.search.profiles: the hypothesis profile the oracle registers."""

from __future__ import annotations

from hypothesis import settings

from oracle.search.profiles import CAMPAIGN_PROFILE


def test_the_campaign_profile_is_registered_with_5000_examples_and_no_deadline():
    settings.load_profile(CAMPAIGN_PROFILE)
    try:
        assert settings.default.max_examples == 5000
        assert settings.default.deadline is None
    finally:
        settings.load_profile("oracle-tests")
    assert settings.default.max_examples != 5000  # the suite's own profile is back
