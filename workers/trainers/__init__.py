"""The training layer the worker calls: TRL trainers per run kind, behind `dispatch.run(job)`.

`spec` (the job, the result, `validate_params`) imports no torch at import time; everything else imports
the training stack and is loaded by `dispatch` only when a run executes. The API checks a run's params
without this package (`app.runs.trainer_params`, on the fields `export_params` writes).
"""
