"""Framework integrations: callbacks that connect a training framework to a :class:`~tunebook.trial.Trial`.

Each module imports its framework lazily and raises
:class:`~tunebook.errors.MissingExtraError` naming the extra when it is missing:

- :mod:`tunebook.integrations.lightning`: ``TunebookCallback`` for Lightning 2.x (``tunebook[lightning]``);
- :mod:`tunebook.integrations.huggingface`: ``TunebookCallback`` for ``transformers.Trainer``
  and ``training_args_from`` for studies over ``TrainingArguments`` (``tunebook[huggingface]``);
- :mod:`tunebook.integrations.keras`: ``TunebookCallback`` for Keras 3 (``tunebook[keras]``).

``import tunebook.integrations`` imports none of the frameworks.
"""
