"""The `prediction` cognitive extension: predictions in four reasoning modes, with confidence, resolution and rolling accuracy. See docs/agents/prediction.md."""

from legion.extensions.prediction.runners import prediction
from legion.sdk import Extension

extension = Extension("prediction", runners=[prediction], description="Predictions in four reasoning modes, with confidence, resolution and rolling accuracy")
