"""workbench: which recurrent architecture should I use for this sequence task?

KerasTuner searches over cell type, depth, direction, hidden size and gradient
clipping; MLflow records every trial; reports compare the architectures.
"""

__version__ = "0.1.0"
