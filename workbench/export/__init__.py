"""Export: the best trial of a search leaves the workbench as a model others can load and serve.

:func:`export_best` picks the best finished trial of an experiment (or the one named),
rebuilds it from its logged hyperparameters with :func:`workbench.models.build_model`,
loads its kept best-epoch weights (or retrains it on train + validation), checks the
scores against the ones MLflow holds, and writes ``model.keras``, a TensorFlow
SavedModel, ``hyperparameters.json`` and ``MODEL_CARD.md``. The model is also logged
as an MLflow Model on the trial's run and registered with the alias ``champion``.

Preprocessing lives inside the exported model: forecasting models take raw series
values and return values in the series' units (``Normalization`` in, ``Rescaling``
out, training statistics); padded variable-length inputs go through the model's
``Masking`` layer (:data:`workbench.tasks.PAD_VALUE`); text models take raw strings
(their ``TextVectorization`` holds the vocabulary fitted on the training texts).

:func:`predict_file` reads new inputs (``.npz`` or ``.csv``), checks them against the
model's input and writes one CSV row of predictions per input.

The rooms, one line each:

- ``exporter``: rebuild, check the scores, write the model files, register the model.
- ``card``: what the model says about itself: ``hyperparameters.json`` and ``MODEL_CARD.md``.
- ``predictor``: ``workbench predict``: new inputs in, one CSV row per input out.
- ``layout``: the file names of an exported model folder.
- ``folder``: the folder written all at once (a failed or interrupted export leaves it as it was).
"""

from workbench.export.card import ScoreCheck
from workbench.export.exporter import ExportResult, export_best, with_preprocessing
from workbench.export.layout import CARD_FILE, HYPERPARAMETERS_FILE, MODEL_FILE, SAVED_MODEL_DIR
from workbench.export.predictor import PredictResult, predict_file

__all__ = [
    "CARD_FILE",
    "HYPERPARAMETERS_FILE",
    "MODEL_FILE",
    "SAVED_MODEL_DIR",
    "ExportResult",
    "PredictResult",
    "ScoreCheck",
    "export_best",
    "predict_file",
    "with_preprocessing",
]
