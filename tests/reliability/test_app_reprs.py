"""The example's request and response models keep secrets out of their reprs."""

from __future__ import annotations

from examples.fastapi_app.schemas.auth import (
    EmailVerification,
    LoginIn,
    LoginOut,
    PasswordChange,
    PasswordResetConfirm,
)
from examples.fastapi_app.schemas.organizations import FirstAdmin
from examples.fastapi_app.schemas.users import UserCreate


def test_request_and_response_models_keep_secrets_out_of_their_repr() -> None:
    """Regression: pydantic reprs of bodies showed passwords and tokens in tracebacks."""
    secret = "Pangolin-secret-7"
    models = [
        LoginIn(organization="s", login="kid", password=secret),
        PasswordChange(current_password=secret, new_password=secret),
        PasswordResetConfirm(organization="s", token=secret, new_password=secret),
        EmailVerification(organization="s", token=secret),
        UserCreate(email="k@s.example.org", username="kid", password=secret),
        FirstAdmin(email="k@s.example.org", username="kid", password=secret),
        LoginOut.model_construct(token=secret),
    ]
    for model in models:
        assert secret not in repr(model) and secret not in str(model), type(model).__name__
