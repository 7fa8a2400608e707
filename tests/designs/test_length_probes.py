"""Length probes: the best configuration trained twice as long, when its logged learning rate decays, to
measure whether training longer helps (a decayed schedule's flat end cannot say)."""

from __future__ import annotations

import pytest

import _workloads as w
import tunebook as tb
from tunebook.analysis.data import load
from tunebook.designs import length_probes as lp
from tunebook.errors import SpecError
from tunebook.proposing import add_length_probes

SPACE = {"nuisance": {"lr": {"min": 0.1, "max": 10.0, "scale": "log"}}}
OBJ = ("val/error", "min")


def make(url, name="probe", fixed=None, **options):
    space = {**SPACE, "fixed": fixed or {}}
    return tb.create_study(name, space=space, objective=OBJ, trials=options.pop("trials", 12), max_train_steps=20,
                           storage=url, **options)


def run(study):
    tb.run(study, w.rate_schedule, workers=0, progress=False)
    return study


def max_train_steps_findings(study):
    return [f for f in tb.analyze(study).findings if f.check == "max_train_steps"]


def test_two_replicates_get_two_probes_judged_as_two_pairs_and_one_pair_measures_nothing(sqlite_url):
    study = run(make(sqlite_url, "two", trials=8))  # 6 search trials and 2 replicates: 2 probes, not the 3 asked
    assert len(study.replicate_numbers()) == 2 and sorted(study.probe_steps()) == [8, 9]
    (f,) = max_train_steps_findings(study)
    assert "2 pairs of the same seed" in f.message and f.evidence["dof"] == 1, f.message

    def one_probe_fails(trial):
        if trial.max_train_steps == 40 and trial.number == 9:
            raise RuntimeError("a probe that failed")
        w.rate_schedule(trial)

    short = make(sqlite_url, "short", trials=8)
    tb.run(short, one_probe_fails, workers=0, progress=False)
    (f,) = max_train_steps_findings(short)
    assert f.severity == "info" and f.evidence["verdict"] == "too few probes", f.message
    assert "measured nothing: too few finished (1 completed, against 2 completed replicates at 20)" in f.message
    assert "Let the study finish" not in f.action  # it has finished: nothing more will come


def test_a_schedule_decays_when_its_last_rate_is_a_tenth_of_its_peak_or_less():
    assert lp.decays([1.0, 0.5, 0.1]) and lp.decays([0.0, 2.0, 0.0])
    assert not lp.decays([1.0, 1.0, 1.0]) and not lp.decays([1.0, 0.5, 0.11])
    assert not lp.decays([]) and not lp.decays([0.0, 0.0]) and not lp.decays([float("nan")])
    assert lp.probe_steps(300) == 600


@pytest.mark.parametrize("bad", [-1, 21, 2.5, True, "3"])
def test_a_bad_length_probes_is_one_line_naming_the_field(sqlite_url, bad):
    with pytest.raises(SpecError) as err:
        make(sqlite_url, length_probes=bad)
    assert err.value.field == "length_probes" and "or 0 to turn them off" in str(err.value)
    assert tb.storage.open_storage(sqlite_url).list_studies() == []  # nothing stored


def test_a_decaying_rate_adds_probes_at_twice_the_steps_paired_with_the_replicates(sqlite_url):
    study = run(make(sqlite_url))
    trials = {t.number: t for t in study.trials()}
    probes = study.probe_steps()
    assert sorted(probes) == [12, 13, 14] and set(probes.values()) == {40}  # beyond the budget of 12
    assert study.trials_budget == 12 and len(trials) == 15 and study.is_finished()
    data = load(study)
    assert {t.number for t in data.probes} == {12, 13, 14} and not set(probes) & {t.number for t in data.trials}
    source = next(iter(data.probe_of.values()))[0]
    replicates = [n for n, of in data.replicate_of.items() if of == source]
    assert {trials[n].seed for n in probes} == {trials[n].seed for n in replicates}  # the same seeds: paired
    assert all(trials[n].params == trials[source].params for n in probes)
    for n in probes:  # each probe trained 40 steps: its curve goes to step 40
        assert max(s for s, _ in study.metrics(n)["val/error"]) == 40
    assert study.best_trial().number not in probes
    assert "+ 3 length probes at 40 steps" in study.phase_line()
    (f,) = max_train_steps_findings(study)
    assert f.severity == "warning" and f.evidence["verdict"] == "train longer" and f.evidence["lower_bound"] > 0
    assert "trained 40 steps (3 runs" in f.message and "3 pairs of the same seed" in f.message
    assert add_length_probes(study) == []  # decided once: asking again adds nothing
    assert len(study.storage.get_notes(study=study.name, kind=lp.NOTE_KIND)) == 1


def test_next_proposes_the_measured_length(sqlite_url):
    study = run(make(sqlite_url))
    from tunebook.procedures.next import next_study

    proposal = next_study(study)
    assert proposal.spec is not None and proposal.spec["max_train_steps"] == 40, proposal.lines()


def test_a_constant_rate_gets_no_probes_and_a_note_saying_why(sqlite_url):
    study = run(make(sqlite_url, fixed={"schedule": "constant"}))
    assert study.probe_steps() == {} and len(study.trials()) == 12
    (note,) = study.storage.get_notes(study=study.name, kind=lp.NOTE_KIND)
    assert "no length probes" in note["conclusion"] and "ends at 100% of its peak" in note["conclusion"]
    assert all(f.evidence.get("verdict") != "probes pending" for f in max_train_steps_findings(study))


def test_no_logged_rate_gets_no_probes_and_a_note_saying_so(sqlite_url):
    study = run(make(sqlite_url, fixed={"log_lr": False}))
    assert study.probe_steps() == {}
    (note,) = study.storage.get_notes(study=study.name, kind=lp.NOTE_KIND)
    assert "logged no learning rate" in note["conclusion"]


def test_length_probes_0_turns_them_off_and_keeps_the_spec_hash_of_the_default(sqlite_url):
    study = run(make(sqlite_url, length_probes=0))
    assert study.probe_steps() == {} and len(study.trials()) == 12
    assert study.storage.get_notes(study=study.name, kind=lp.NOTE_KIND) == []
    assert "length_probes" not in make(sqlite_url, name="default").record.spec  # the default is not stored


def test_without_replicates_there_is_no_baseline_and_no_probe(sqlite_url):
    study = run(make(sqlite_url, replicates=0))
    assert study.probe_steps() == {} and study.storage.get_notes(study=study.name, kind=lp.NOTE_KIND) == []


def test_worker_processes_add_and_train_the_probes_at_their_own_budget(sqlite_url):
    """Through `tunebook run`'s path (worker processes, a trial's budget read from the note by the worker)."""
    study = make(sqlite_url, name="procs")
    tb.run(study, w.rate_schedule, workers=2, progress=False)
    probes = study.probe_steps()
    assert len(probes) == 3 and study.is_finished() and len(study.trials()) == 15
    assert all(max(s for s, _ in study.metrics(n)["val/error"]) == 40 for n in probes)
    assert all(max(s for s, _ in study.metrics(t.number)["val/error"]) == 20
               for t in study.trials() if t.number not in probes)


def test_tb_run_takes_a_module_function_reference_and_refuses_anything_else(sqlite_url):
    study = make(sqlite_url, name="by-ref", replicates=0)
    tb.run(study, "_workloads:rate_schedule", workers=0, progress=False)  # as a spec's train: field
    # recorded as found again later: by module name when on the path a fresh interpreter has, else by file
    assert study.counts()["completed"] == 12 and study.train_ref.endswith("_workloads.py:rate_schedule") or study.train_ref == "_workloads:rate_schedule"
    with pytest.raises(SpecError) as err:
        tb.run(study, 42, workers=0, progress=False)
    assert err.value.field == "train"


def test_exports_and_the_dataframe_mark_the_probes_and_their_steps(sqlite_url, tmp_path):
    import csv

    from tunebook.integrations import tabular

    study = run(make(sqlite_url, name="marked"))
    probes = study.probe_steps()
    trials_file, _ = tabular.export_csv(study, tmp_path / "t.csv")
    rows = {int(r["number"]): r for r in csv.DictReader(open(trials_file))}
    source = str(study.best_trial().number)
    assert all(rows[n]["length_probe_of"] == source and rows[n]["max_train_steps"] == "40" for n in probes)
    assert all(rows[n]["length_probe_of"] == "" and rows[n]["max_train_steps"] == "20" for n in rows if n not in probes)
    frame = study.trials_dataframe().set_index("number")
    assert set(frame.loc[list(probes), "kind"]) == {"length probe"} and set(frame.loc[list(probes), "max_train_steps"]) == {40}
    assert (frame["kind"] == "replicate").sum() == 3 and (frame["kind"] == "search").sum() == 9


def test_a_measured_gain_is_not_widened_away_even_with_the_best_rate_near_the_top(sqlite_url):
    """The probes measured the gain at the best rate itself: a rate too small does not explain it, so `next`
    trains longer (citing the probes) even when the best rate lies in the top of its range."""
    from tunebook.procedures.next import next_study

    space = {"nuisance": {"lr": {"min": 0.01, "max": 3.0, "scale": "log"}}}  # the bowl's best (1): in the top 25%
    study = tb.create_study("near-top", space=space, objective=OBJ, trials=12, max_train_steps=20, storage=sqlite_url)
    run(study)
    assert study.best_trial().params["lr"] > 0.3 and len(study.probe_steps()) == 3
    proposal = next_study(study)
    assert proposal.spec["max_train_steps"] == 40 and proposal.spec["search_space"]["nuisance"]["lr"]["max"] == 3.0
    assert "measured by length probes" in proposal.changes[0].reason, proposal.lines()


def test_pursue_counts_a_probe_as_the_two_trials_it_costs(sqlite_url):
    from tunebook.procedures.pursue import probe_cost, spent

    study = run(make(sqlite_url, name="cost"))
    assert probe_cost(study) == 6 and spent(study) == 12 + 6


def test_pursue_keeps_the_first_studys_probes_within_its_budget(tmp_path):
    # 8 trials of one group: 6 search trials and 2 replicates, so up to 2 probes at twice the steps (4 trials' worth)
    import yaml

    spec = tmp_path / "p.yaml"
    spec.write_text(yaml.safe_dump({"study": "p", "train": "_workloads:rate_schedule", "objective": {"metric": "val/error",
                                    "mode": "min"}, "trials": 8, "max_train_steps": 20, "search_space": SPACE}))
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with pytest.raises(SpecError) as err:
        tb.pursue(str(spec), budget=8, storage=url, workers=0, log=None)
    assert "8 trials and up to 4 trials' worth of length probes" in str(err.value)
    assert "give --budget 12 or more" in str(err.value) and "length_probes: 0" in str(err.value)
    assert tb.open_storage(url).list_studies() == []  # nothing stored
    result = tb.pursue(str(spec), budget=12, storage=url, workers=0, log=None)
    assert result.spent <= 12 and len(tb.load_study("p", url).probe_steps()) == 2


def test_the_dashboard_table_and_its_csv_tag_replicates_and_probes(sqlite_url):
    pytest.importorskip("fastapi")
    import csv
    import io

    from fastapi.testclient import TestClient

    from tunebook.dashboard.app import create_app

    study = run(make(sqlite_url, name="dash"))
    source = study.best_trial().number
    client = TestClient(create_app(sqlite_url), base_url="http://127.0.0.1")
    page = client.get("/study/dash/table").text
    assert page.count(f"length probe of #{source}, 40 steps") == 3 and page.count(f"replicate of #{source}") == 3
    rows = {int(r["number"]): r for r in csv.DictReader(io.StringIO(client.get("/study/dash/trials.csv").text))}
    assert {n for n, r in rows.items() if r["length_probe_of"] == str(source)} == set(study.probe_steps())
    assert sum(r["replicate_of"] == str(source) for r in rows.values()) == 3
    # a probe's own page and the overlay say what it is, and their step axes reach its 40 steps (the study's: 20)
    import json
    import re

    probe = min(study.probe_steps())
    replicate = next(n for n, r in rows.items() if r["replicate_of"] == str(source))
    page = client.get(f"/study/dash/trial/{probe}").text
    assert f"A length probe of <a class='trial-ref' href='/study/dash/trial/{source}'>trial #{source}</a>, 40 steps " \
           "(20 for the search trials)" in page  # the trial it trains longer, one click away
    seeds = {t.number: t.seed for t in study.trials()}
    twin = next(n for n, seed in seeds.items() if seed == seeds[probe] and n != probe)
    assert f"with the seed of its replicate <a class='trial-ref' href='/study/dash/trial/{twin}'>trial #{twin}</a>" in page
    assert "A replicate of" in client.get(f"/study/dash/trial/{replicate}").text
    assert "A length probe" not in client.get(f"/study/dash/trial/{source}").text  # a search trial says nothing

    def axis_ends(html):
        specs = re.findall(r'<script type="application/json">(.*?)</script>', html, re.S)
        return {json.loads(x)["layout"]["xaxis"]["range"][1] for x in specs if '"xaxis"' in x}

    assert axis_ends(page) == {40 * 1.02}
    assert axis_ends(client.get(f"/study/dash/trial/{source}").text) == {20 * 1.02}
    overlay = client.get(f"/compare?study=dash&trials={source},{probe}").text
    assert f"length probe of #{source}, 40 steps" in overlay and axis_ends(overlay) == {40 * 1.02}
