"""Domain errors. Each carries an HTTP status and a stable `code`; one handler renders problem+json."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status: int = 500
    code: str = "internal_error"
    title: str = "Internal error"
    retry_after: int | None = None
    """Seconds, sent as the `Retry-After` header when set."""

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra or {}

    def to_problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://rlhf-registry.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class Unauthenticated(AppError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class RunTokenScope(Forbidden):
    """An external run's token used outside that run's own routes."""

    code = "run_token_scope"
    title = "Outside the run token's scope"


class NotFound(AppError):
    status = 404
    code = "not_found"
    title = "Not found"


class MethodNotAllowed(AppError):
    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class ValidationFailed(AppError):
    status = 422
    code = "validation_failed"
    title = "Validation failed"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class VersionConflict(AppError):
    status = 409
    code = "version_conflict"
    title = "Version conflict"


class CriteriaVersionTooLow(AppError):
    status = 409
    code = "criteria_version_too_low"
    title = "Criteria version too low"


class CriteriaIncompatible(AppError):
    status = 409
    code = "criteria_incompatible"
    title = "Criteria incompatible"


class QcGateBlocked(AppError):
    status = 409
    code = "qc_gate_blocked"
    title = "QC gate blocked"


class MissingReference(AppError):
    status = 422
    code = "missing_reference"
    title = "Missing reference"


class CrossProjectReference(AppError):
    status = 422
    code = "cross_project_reference"
    title = "Cross-project reference"


class BlobMissing(AppError):
    status = 422
    code = "blob_missing"
    title = "Blob missing"


class DigestMismatch(AppError):
    status = 400
    code = "digest_mismatch"
    title = "Digest mismatch"


class EvaluationEvidenceMissing(AppError):
    status = 409
    code = "evaluation_evidence_missing"
    title = "Evaluation evidence missing"


class EvaluationEvidenceInsufficient(AppError):
    """Evidence of a required type exists but does not prove what its type claims (human evaluators
    independent of the checkpoint, adversarial prompts of a registered prompt set, KL against the
    checkpoint's own reference, a correlation with its sample size, one evidence blob per type)."""

    status = 409
    code = "evaluation_evidence_insufficient"
    title = "Evaluation evidence insufficient"


class NotDeploymentCandidate(AppError):
    """The deployed checkpoint is not its series' candidate (the highest-rated in the latest campaign)."""

    status = 409
    code = "not_deployment_candidate"
    title = "Not the deployment candidate"


class RewardHackingFlagged(AppError):
    """The checkpoint carries a reward-hacking flag (reward_flat, kl_runaway, length_exploit,
    adversarial_regression, human_rating_peaked_earlier)."""

    status = 409
    code = "reward_hacking_flagged"
    title = "Reward-hacking flag raised"


class AiReviewInsufficient(AppError):
    """AI-labelled items enter a dataset only after a human review sample agreed with them enough."""

    status = 409
    code = "ai_review_insufficient"
    title = "AI labels insufficiently reviewed"


class SeparationOfDuties(AppError):
    status = 403
    code = "separation_of_duties"
    title = "Separation of duties"


class DeploymentNotApproved(AppError):
    status = 409
    code = "deployment_not_approved"
    title = "Deployment not approved"


class ImmutableRecord(AppError):
    status = 409
    code = "immutable_record"
    title = "Immutable record"


class Quarantined(AppError):
    status = 409
    code = "quarantined"
    title = "Quarantined"


class RunNotCancellable(AppError):
    status = 409
    code = "run_not_cancellable"
    title = "Run not cancellable"


class RateLimited(AppError):
    status = 429
    code = "rate_limited"
    title = "Rate limited"


class Unavailable(AppError):
    status = 503
    code = "unavailable"
    title = "Service unavailable"
    retry_after = 5
