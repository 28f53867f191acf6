"""Process reward models: training one on apsgen's exports, and scoring the steps of a solution with one.

- `score`: load a PRM folder (a token-classification model as TRL's `PRMTrainer` saves it, or the
  Qwen2.5-Math-PRM family) and give each step of a solution the probability that it is correct.
- `train`: fine-tune a model with a token-classification head on a `stepwise` export with TRL 1.9's
  `PRMTrainer` (the trainer axolotl 0.19 pins for its `process_reward_model` type).

Both need `torch` and `transformers`; `train` also needs `trl==1.9.0` (`pip install 'apsgen[train]'`).
They are imported only by the commands that use them.
"""
