"""TRUSTED planning and judging of graded items, one module per target kind.

`registry` maps a kind (layer, stochastic_layer, function, error, penalty,
learning_rule, scheduler) to its planner module; `base` holds what every kind
shares (plans, verdicts, requests, replies, `judge_plan`), `objective` what
errors and penalties share, `training` the MNIST training check; `plan` is the
pipeline's entry point, `oracle` the reference answers, `diagnose` the known
mistakes, and `recipes` the training run shared with the sandbox.
"""
