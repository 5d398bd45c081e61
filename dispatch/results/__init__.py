"""What an experiment folder holds and what it shows: the layout, the scores, RESULTS.md.

* :mod:`dispatch.results.layout`  which systems an ``exp/`` holds and where each one's config,
  model, enhanced audio and scores live (the one place that knows the folder names)
* :mod:`dispatch.results.best`    the one rule for the best KD student
* :mod:`dispatch.results.scores`  a system's scores and model figures, read from its run folders
* :mod:`dispatch.results.deltas`  Δ vs the no-KD student with paired-bootstrap intervals
* :mod:`dispatch.results.table`   the markdown tables and number formats of RESULTS.md
* :mod:`dispatch.results.plots`   the gains plot and the per-utterance Δ scatter
* :mod:`dispatch.results.report`  ``make_results``: RESULTS.md, results.csv, results.json, plots
* :mod:`dispatch.results.patch_figure`  which patches DISPatch / MSSP distil (``plot_patches``)

Nothing is imported here, so that the driver's path queries (``dispatch.bin.query``) stay fast.
"""
