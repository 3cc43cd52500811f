"""Sub-commands of the ``modelsync`` CLI."""
