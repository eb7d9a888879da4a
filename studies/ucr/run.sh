#!/usr/bin/env bash
# Reference study 2: the bundled UCR/UEA tasks as one benchmark, every cell on matched
# settings (studies/ucr/space.yaml), 2 seeds per configuration, against the published
# 1-NN DTW, FCN and LSTM-FCN accuracies the report lists.
# Run from the repository root with the workbench installed: bash studies/ucr/run.sh
set -euo pipefail
start=$SECONDS
workbench benchmark --tasks japanese_vowels,basic_motions,gunpoint,italy_power_demand \
    --space studies/ucr/space.yaml --tuner grid --max-trials 6 --repeats 2 \
    --name study-ucr --out studies/ucr/report
echo "wall time: $((SECONDS - start)) s"
