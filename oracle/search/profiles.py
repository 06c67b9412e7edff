"""Hypothesis settings profiles the oracle registers (light: imports hypothesis only).

``oracle-campaign`` is for long searches that users opt into
(``pytest --hypothesis-profile=oracle-campaign`` or ``settings.load_profile(...)``):
5000 examples per pair, dtype and device instead of 100.
"""

from __future__ import annotations

from hypothesis import settings

__all__ = ["CAMPAIGN_PROFILE"]

CAMPAIGN_PROFILE = "oracle-campaign"
settings.register_profile(CAMPAIGN_PROFILE, max_examples=5000, deadline=None)
