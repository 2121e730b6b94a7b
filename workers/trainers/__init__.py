"""The training layer the worker calls: TRL trainers per run kind, behind `dispatch.run(job)`.

`spec` (the job, the result, `validate_params`) imports no torch, so the API can check a run's params;
everything else imports the training stack and is loaded by `dispatch` only when a run executes.
"""
