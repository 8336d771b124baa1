"""Identifiers shared by every core.

Rules: ids are plain integers so that they sort, hash and serialise deterministically.
Node ids are positive; 0 means "nobody" (no vote cast, no known leader).
"""

from typing import Final

NodeId = int
Term = int
LogIndex = int

NO_NODE: Final[NodeId] = 0

__all__ = ["NO_NODE", "LogIndex", "NodeId", "Term"]
