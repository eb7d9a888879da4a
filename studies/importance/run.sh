#!/usr/bin/env bash
# Reference study 3: what matters? 32 random trials of the full default space (cell, depth,
# direction, units, clipping, learning rate, dropout, batch size, readout) on
# japanese_vowels, 10 epochs each; the report's importance section (each hyperparameter's
# share of the score's variance) set beside Greff et al. 2017.
# Run from the repository root with the workbench installed: bash studies/importance/run.sh
set -euo pipefail
start=$SECONDS
workbench search --task japanese_vowels --space default --tuner random --max-trials 32 \
    --epochs 10 --experiment study-importance
workbench report --experiment study-importance --out studies/importance/report
echo "wall time: $((SECONDS - start)) s"
