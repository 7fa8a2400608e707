"""What the procedures share: deriving a study from another, and recording a conclusion."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tunebook.space import SearchSpace
from tunebook.study import Study, create_study


@dataclass
class Conclusion:
    """A procedure's answer in the playbook's words, its evidence, and the studies it made."""

    kind: str
    conclusion: str
    evidence: dict[str, Any] = field(default_factory=dict)
    studies: list[str] = field(default_factory=list)
    concluded: bool = True  # False: the procedure refuses to conclude (see the conclusion for why)


def record(study: Study, result: Conclusion) -> Conclusion:
    """Write the conclusion and its evidence to the notebook, under the study's experiment."""
    study.storage.add_note(result.kind, result.conclusion, {**result.evidence, "concluded": result.concluded,
                                                            "studies": result.studies},
                           experiment=study.experiment, study=study.name)
    return result


def best_params(study: Study, number: int | None = None) -> tuple[dict[str, Any], Any]:
    """Every hyperparameter (fixed included) of the best trial, or of trial ``number``."""
    from tunebook._errors import SpecError

    if number is None:
        trial = study.best_trial()
        if trial is None:
            raise SpecError("study", f"study {study.name!r} has no completed trial yet", "run it first")
    else:
        trial = next((t for t in study.trials() if t.number == number), None)
        if trial is None:
            raise SpecError("--trial", f"study {study.name!r} has no trial #{number}", "give a trial number it has, or 'best'")
    return {**study.space.fixed, **trial.params}, trial


def derived_study(
    source: Study,
    name: str,
    *,
    space: SearchSpace | dict[str, Any],
    trials: int,
    goal: str,
    max_train_steps: int | None = None,
    design: str = "quasi_random",
    round: int | None = None,
    objective: tuple[str, str] | None = None,
) -> Study:
    """A study in the same experiment, with the same training function, objective and rules."""
    return create_study(
        name,
        space=space,
        objective=objective or source.objective,
        trials=trials,
        max_train_steps=max_train_steps or source.max_train_steps,
        goal=goal,
        storage=source.storage,
        experiment=source.experiment,
        train=source.train_ref,
        design=design,
        infeasible_if=source.infeasible_if,
        keep_checkpoints=source.keep_checkpoints,
        grid_force=design == "grid",
        parent=source.name,
        round=source.record.round if round is None else round,
        repro_command=source.record.repro_command,
    )
