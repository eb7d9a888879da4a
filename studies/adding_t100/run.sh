#!/usr/bin/env bash
# Reference study 1: the adding problem at T=100 (Hochreiter & Schmidhuber 1997).
# SimpleRNN, LSTM and GRU on matched settings (studies/adding_t100/space.yaml: 32 and 64
# units x learning rates 1e-3, 3e-3, 1e-2; norm clipping at 1, batch 64), up to 20 epochs
# with early stopping, 5,000 training sequences: 18 trials, 6 matched configurations per cell.
# Run from the repository root with the workbench installed: bash studies/adding_t100/run.sh
set -euo pipefail
start=$SECONDS
workbench search --task adding --task-option length=100 --task-option n_train=5000 \
    --space studies/adding_t100/space.yaml --tuner grid --max-trials 18 \
    --experiment study-adding-t100
workbench report --experiment study-adding-t100 --out studies/adding_t100/report
echo "wall time: $((SECONDS - start)) s"
