"""`apsgen audit`: a person reads a seeded sample of an output's labelled paths and says whether
each label is right; the verdicts give the output a first-error precision with its interval.

- `sample`: which paths are read (seeded by path id, stratified: located first errors and a share
  of all-correct paths), and what is shown of each (the same steps a PRM trains on).
- `record`: the verdicts, one JSON line each in `OUT/audit/<auditor>.jsonl`; export to and import
  from a spreadsheet or labelling tool.
- `session`: the one-key reading loop on a terminal or over a pipe.
- `report`: precision with a 95% Wilson interval, by kind and step index; the judge's and a second
  auditor's agreement; the summary the stats, the HTML report and the dataset card show.

The audit reads the output and writes only inside `OUT/audit/`: it never changes a label.
"""
