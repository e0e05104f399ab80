"""The tests' settings: the project's own, plus the demo's provider secrets.

PORTAL_DEMO=1 asks for the guessable "demo-secret-<slug>" fallback (tests and `make run` only; the
portal refuses it in production). It is set in the environment, so processes the tests start
(workers, simulators, gunicorn) inherit it, except where a test sets its own environment."""

import os

if os.environ.get("PORTAL_ENV") != "production":  # tests that start production processes
    os.environ.setdefault("PORTAL_DEMO", "1")

from portal.settings import *  # noqa: F403
