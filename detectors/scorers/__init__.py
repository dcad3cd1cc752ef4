"""Account scorers, river-style (``learn_one`` / ``score_one``): population, rules, feedback."""

from distillguard.detectors.scorers.anomaly import PopulationAnomaly
from distillguard.detectors.scorers.feedback import LabelFeedback
from distillguard.detectors.scorers.population import PopulationQuantiles
from distillguard.detectors.scorers.rules import ExpertRules, Rule

__all__ = ["ExpertRules", "LabelFeedback", "PopulationAnomaly", "PopulationQuantiles", "Rule"]
