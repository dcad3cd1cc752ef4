"""distillguard: streaming detection of LLM-API distillation abuse."""

__version__ = "0.1.0"
