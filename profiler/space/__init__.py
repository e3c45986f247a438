"""The search-space description, pure data: block specs and their keys (blockspec), the block-kind
registry (kinds/), spaces and presets (spaces), architecture files (arch), blocks sampled around a
space (sampling). Never imports torch."""
