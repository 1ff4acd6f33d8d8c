"""The `emotion` cognitive extension: emotional evaluation: four-dimension valence against baselines, arousal, gut instinct, momentum. See docs/agents/emotion.md."""

from legion.sdk import Extension

extension = Extension("emotion", runners=[], description="Emotional evaluation: four-dimension valence against baselines, arousal, gut instinct, momentum")
