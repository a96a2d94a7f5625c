"""The ladder: rungs with quality gates, the model registry with lineage, the ladder report, the decision guide.

>>> from agentladder.ladder import climb, recommend
>>> result = climb("ladder.yaml")  # doctest: +SKIP
>>> print(recommend(labeled=1200, pairs=0, accuracy=0.78, target=0.95).text())  # doctest: +SKIP
"""

from agentladder.ladder.climb import ClimbResult, RungResult, climb, read_climb
from agentladder.ladder.config import (
    ClassifierSettings,
    Gate,
    Guard,
    LadderConfig,
    Rung,
    load_ladder,
    parse_ladder,
)
from agentladder.ladder.gates import Verdict, judge
from agentladder.ladder.recommend import COMPONENTS, PHASES, Recommendation, recommend
from agentladder.ladder.registry import ModelVersion, Registry, default_registry
from agentladder.ladder.report import write_report
from agentladder.ladder.resources import demo_ladder, shipped_ladders
from agentladder.ladder.rungs import RUNNERS, RungContext, Trained

__all__ = [
    "COMPONENTS",
    "PHASES",
    "RUNNERS",
    "ClassifierSettings",
    "ClimbResult",
    "Gate",
    "Guard",
    "LadderConfig",
    "ModelVersion",
    "Recommendation",
    "Registry",
    "Rung",
    "RungContext",
    "RungResult",
    "Trained",
    "Verdict",
    "climb",
    "default_registry",
    "demo_ladder",
    "judge",
    "load_ladder",
    "parse_ladder",
    "read_climb",
    "recommend",
    "shipped_ladders",
    "write_report",
]
