"""mlp: plan/apply for machine-learning applications.

The public surface is `mlp.api` (one function per verb) and the types it returns.
"""

__version__ = "0.1.0"
