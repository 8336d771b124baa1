"""Observability of a node (shell only; DESIGN.md section 2 and rule 12): Prometheus metrics
in a registry per node, alerts evaluated inside the node, and the observer that wires both to a
running node. The pure packages and the simulator never import this package; they emit trace
events as data and the shell turns them into telemetry.
"""

from conclave.observability.alerts import (
    Alert,
    AlertChange,
    AlertEvaluator,
    AlertInputs,
    AlertManager,
    AlertThresholds,
    Severity,
)
from conclave.observability.metrics import NodeMetrics, NodeSample
from conclave.observability.observer import NodeObserver, thresholds_of

__all__ = [
    "Alert",
    "AlertChange",
    "AlertEvaluator",
    "AlertInputs",
    "AlertManager",
    "AlertThresholds",
    "NodeMetrics",
    "NodeObserver",
    "NodeSample",
    "Severity",
    "thresholds_of",
]
