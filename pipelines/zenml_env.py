"""Import ZenML without letting it take over the process.

ZenML reads its configuration from environment variables at import time and installs
its own handlers on the root logger. This module sets the variables (local store under
``var/``, analytics off, step-log capture off) before the first import, and puts the
root logger back the way Django's LOGGING left it.
"""

from __future__ import annotations

import logging
import os
import sys
from types import ModuleType

from django.conf import settings


def import_zenml() -> ModuleType:
    if "zenml" in sys.modules:
        return sys.modules["zenml"]
    os.environ.setdefault("ZENML_CONFIG_PATH", settings.ZENML_CONFIG_PATH)
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    os.environ.setdefault("ZENML_DISABLE_STEP_LOGS_STORAGE", "true")
    os.environ.setdefault("ZENML_LOGGING_VERBOSITY", "WARN")
    os.environ.setdefault("ZENML_ENABLE_RICH_TRACEBACK", "false")
    os.environ.setdefault("AUTO_OPEN_DASHBOARD", "false")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    excepthook = sys.excepthook
    try:
        import zenml
    finally:
        restore_process_state(handlers, level, excepthook)
    return zenml


def restore_process_state(handlers: list[logging.Handler], level: int, excepthook: object) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    sys.excepthook = excepthook  # type: ignore[assignment]
