"""The label engine: what decides whether a solution prefix is still correct, and the record of it.

- `text`: what a step's own text settles (a false equation, a retraction, a restatement);
- `evidence`: the rollout counts of one prefix (`MCStats`);
- `rule`: the label rules and their parameters; `decide` is a pure function of recorded inputs;
- `probes`: typed records of what a question showed of its own recovery;
- `calibration`: the job's recovery distribution (types and fit; where it runs is the executor's);
- `decision`: a verdict with what settled it, and the one function that writes it on a state;
- `replay`: recompute and explain a stored label from the output alone (`apsgen explain`).

Nothing here samples, schedules or stores: the search (`apsgen.search`) gathers the evidence, the
executors (`apsgen.pipeline`, `apsgen.runner`) run it, `apsgen.io` writes it.
"""

# The label engine's version, part of every job's settings fingerprint: bump it when the code that
# decides a label would decide differently on the same evidence (a text check reads more or less, a
# rule's formula changes), so an output made by the older code is never resumed into by the newer.
# 2: text checks read prose and LaTeX math apart; own recovery at planted errors; all-good risk.
# 3: right answers verified prefix by prefix before they become all-good paths.
LABEL_ENGINE = 3
