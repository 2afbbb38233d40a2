"""What the operator does with a spec it cannot run: InvalidSpec, before any traffic moves.

The CRD rejects almost every mistake at apply time; what is left (the custom-query policy,
an object stored under an older CRD) is refused here with a status message, a Warning
event and an ``InvalidSpec`` condition, all naming the field. The SeldonDeployment is not
touched, so the current routing stays until the spec is fixed; never an analysis Error,
which would tell the on-call engineer that metrics were unreadable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .schema import SpecError
from .state import iso

CONDITION = "InvalidSpec"
#: Chart value analysis.allowCustomQueries; anything but true/1/yes keeps it off.
ALLOW_CUSTOM_QUERIES_ENV = "MODELDEPLOY_ALLOW_CUSTOM_QUERIES"


def allow_custom_queries(env: Mapping[str, str] = os.environ) -> bool:
    return env.get(ALLOW_CUSTOM_QUERIES_ENV, "").strip().lower() in ("true", "1", "yes")


def message_for(error: SpecError) -> str:
    return (f"Invalid spec: {error}. Nothing was changed: traffic stays as it is until the spec is fixed.")


def invalid_spec_status(raw_status: Mapping[str, Any], generation: int | None, error: SpecError,
                        now: datetime) -> dict[str, Any] | None:
    """The status patch that reports `error` (message, condition with observedGeneration),
    or None when the status already says so; the caller also posts it as a Warning event."""
    message = message_for(error)
    conditions = [dict(c) for c in raw_status.get("conditions") or []]
    old = next((c for c in conditions if c.get("type") == CONDITION), None)
    if (old and old.get("status") == "True" and old.get("message") == message
            and old.get("observedGeneration") == generation and raw_status.get("message") == message):
        return None
    since = old["lastTransitionTime"] if old and old.get("status") == "True" and old.get("lastTransitionTime") \
        else iso(now)
    condition = {"type": CONDITION, "status": "True", "reason": CONDITION, "message": message,
                 "lastTransitionTime": since, "observedGeneration": generation}
    return {"message": message, "observedGeneration": generation,
            "conditions": [c for c in conditions if c.get("type") != CONDITION] + [condition]}
