"""The release of the running code: the version in pyproject.toml."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "quote-service"


def release() -> str:
    """The installed distribution's version (pip records pyproject.toml's at install time)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


__version__ = release()
