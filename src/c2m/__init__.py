"""c2m: retail-driven reverse manufacturing (consumer-to-manufacturer)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("c2m")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
