"""Start-up checks: configuration that cannot work stops a command (or the web app) before it
does anything, with one line that names the variable, instead of a traceback later.

``Settings.from_env`` already refuses values that do not parse (``ConfigError``); this module
adds the checks that need more than the environment: that ``BRIDGE_POLICY`` names a policy of
the policy directory, and that the database has the schema this code needs.
"""
from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from bridge.ledger import schema
from bridge.policy import PolicyFileError, PolicyRegistry
from bridge.settings import ConfigError, Settings


class DatabaseNotReady(Exception):
    """The database cannot be used by this command: unreachable, or its schema is not the one
    this code needs (``str()`` says what to run)."""


class DatabaseUnreachable(DatabaseNotReady):
    """The database did not answer (it may be down for a moment, or DATABASE_URL points
    nowhere)."""


def check_policy(settings: Settings) -> None:
    """``BRIDGE_POLICY``, when set, must name a policy the bridge has."""
    if not settings.default_policy:
        return
    directory = settings.config_dir / "policies"
    try:
        ids = PolicyRegistry.load(directory).ids()
    except PolicyFileError as err:
        raise ConfigError("BRIDGE_POLICY", f"cannot be checked: a policy file does not load ({err})") from None
    if settings.default_policy not in ids:
        raise ConfigError("BRIDGE_POLICY", f"no policy {settings.default_policy[:64]!r} in {directory} "
                                           f"(known: {', '.join(ids) or 'none'})")


def check_startup(settings: Settings) -> None:
    """Everything that can be checked without the database."""
    check_policy(settings)


def unreachable(err: DBAPIError) -> str:
    # The driver's message may quote the host and user, never the password, but keep it to
    # the error class: the line is for a person to act on, the detail is in the database log.
    return f"cannot reach the database (DATABASE_URL): {type(err.orig).__name__}"


def check_schema(engine: Engine) -> None:
    """The schema is the one this code needs, or ``DatabaseNotReady`` says what to run."""
    try:
        current = schema.current_revision(engine)
    except DBAPIError as err:
        raise DatabaseUnreachable(unreachable(err)) from None
    head = schema.head_revision()
    if current == head:
        return
    if current is None:
        raise DatabaseNotReady("the database has no bridge schema yet: run `bridge db upgrade` first")
    raise DatabaseNotReady(f"the database schema is at revision {current}, this bridge needs {head}: "
                           "run `bridge db upgrade` first")
