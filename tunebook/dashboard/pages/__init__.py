"""The dashboard's pages, one router module per page family: ``notebook`` (``/``), ``study`` (a study's
page, its table and CSV, its live state), ``trial`` (a trial's page and live state), ``compare`` (studies
or trials overlaid), ``explore`` (parallel coordinates and hyperparameter importance), ``assets`` (the
JavaScript the pages load). Each module has a ``router``; :func:`tunebook.dashboard.app.create_app`
includes them all."""

from tunebook.dashboard.pages import assets, compare, explore, notebook, study, trial

ROUTERS = (assets.router, notebook.router, study.router, trial.router, compare.router, explore.router)
