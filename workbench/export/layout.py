"""The file names of an exported model folder."""

from __future__ import annotations

MODEL_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
HYPERPARAMETERS_FILE = "hyperparameters.json"
CARD_FILE = "MODEL_CARD.md"
