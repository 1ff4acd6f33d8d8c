"""The `emotion` cognitive extension: emotional evaluation: four-dimension valence against baselines, arousal, gut instinct, momentum. See docs/agents/emotion.md."""

from legion.extensions.emotion.runners import gut, valence
from legion.sdk import Extension

extension = Extension("emotion", runners=[valence, gut], description="Emotional evaluation: four-dimension valence against baselines, arousal, gut instinct, momentum")
