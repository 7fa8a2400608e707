"""The playbook's procedures: each derives studies from a finished one and records a conclusion.

One module each: :mod:`.lr_sweep`, :mod:`.batch_size`, :mod:`.stability`, :mod:`.variance`, :mod:`.rounds`.
What they share (a study's training function, the command that runs a derived study, the conclusion) is
exported here for the CLI.
"""

from tunebook.procedures._common import Conclusion, run_command, study_train

__all__ = ["Conclusion", "run_command", "study_train"]
