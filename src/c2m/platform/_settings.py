"""Settings of the platform, read from the environment (prefix ``C2M_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_projects() -> list[Path]:
    from c2m.data import default_project_path

    return [default_project_path()]


class BenefitSpec(BaseModel):
    """An early-purchase benefit with a limited quota, seeded for every project."""

    code: str = Field(min_length=1, max_length=50, pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = Field(min_length=1, max_length=200)
    name_zh: str = Field(default="", max_length=200)
    quota: int = Field(ge=0)


def _default_benefits() -> list[BenefitSpec]:
    return [
        BenefitSpec(
            code="charging-coupon",
            name="2,000-yuan charging coupon for the first 1,000 reservations",
            name_zh="前 1,000 名预约用户赠 2,000 元充电券",
            quota=1000,
        ),
        BenefitSpec(
            code="rent-waiver",
            name="Three months of battery rent waived for the first 500 reservations",
            name_zh="前 500 名预约用户免三个月电池租金",
            quota=500,
        ),
    ]


class Settings(BaseSettings):
    """Platform settings; every field can be set as ``C2M_<FIELD>`` (lists as JSON)."""

    model_config = SettingsConfigDict(env_prefix="C2M_", extra="ignore")

    database_url: str = "sqlite:///./c2m.db"
    projects: list[Path] = Field(default_factory=_default_projects)
    slot_days_ahead: int = Field(default=14, ge=1, le=366)
    slot_minutes: int = Field(default=60, ge=5, le=540)
    slot_day_start: int = Field(default=9, ge=0, le=23, description="first slot's hour")
    slot_day_end: int = Field(default=18, ge=1, le=24, description="hour by which the last slot ends")
    slot_capacity: int = Field(default=2, ge=1, description="test drives per store per slot")
    benefits: list[BenefitSpec] = Field(default_factory=_default_benefits)
    timezone: str = "Asia/Shanghai"
    contact_salt: str = "c2m"
    default_lang: str = Field(default="zh", pattern=r"^(zh|en)$")
    survey_method: str = Field(default="balanced_overlap", description="c2m.survey design method")
    survey_versions: int = Field(default=20, ge=1, le=1000, description="design versions, assigned round-robin")
    survey_tasks: int = Field(default=12, ge=2, le=40, description="choice tasks per respondent, holdouts included")
    survey_alts: int = Field(default=3, ge=2, le=6, description="concepts per task (None option not counted)")
    survey_holdouts: int = Field(default=2, ge=0, le=10, description="fixed holdout tasks, the same in every version")
    survey_speeder_fraction: float = Field(
        default=0.4, gt=0, lt=1, description="a speeder's total time is below this fraction of the median"
    )
    preorder_deposit: float = Field(
        default=2000, gt=0, le=1_000_000, description="refundable pre-order deposit (yuan; at most the price)"
    )
    payment_provider: Literal["local"] = Field(default="local", description="the deposits' payment provider")
    payment_local_decline: bool = Field(
        default=False, description="the local provider declines every charge (to try the failure path)"
    )
    admin_session_hours: float = Field(default=8, gt=0, le=24 * 30, description="an admin session's lifetime")
    admin_login_max_failures: int = Field(
        default=5, ge=1, le=1000, description="failed logins per user name within the window before 429"
    )
    admin_login_max_client_failures: int = Field(
        default=20, ge=1, le=10_000, description="failed logins per client address within the window before 429"
    )
    admin_login_window_minutes: float = Field(default=15, gt=0, le=24 * 60, description="login rate-limit window")
    admin_cookie_secure: bool = Field(
        default=False, description="mark the admin session cookie Secure (set it behind HTTPS)"
    )
    code_sender: Literal["log"] = Field(
        default="log", description="how one-time codes reach people (log: logged and kept in code_outbox, for dev)"
    )
    code_minutes: float = Field(default=10, gt=0, le=60, description="a one-time code's lifetime")
    code_max_attempts: int = Field(default=5, ge=1, le=20, description="tries of one code before a new one is needed")
    code_resend_seconds: float = Field(default=30, ge=0, le=3600, description="least time between two codes")
    code_max_per_hour: int = Field(default=10, ge=1, le=1000, description="codes per contact within an hour")
    person_session_days: float = Field(default=30, gt=0, le=365, description="a signed-in person's session lifetime")
    person_cookie_secure: bool = Field(
        default=False, description="mark the person session cookie Secure (set it behind HTTPS)"
    )
    service_minutes: int = Field(default=120, ge=15, le=540, description="length of an after-sales slot")
    service_capacity: int = Field(default=2, ge=1, description="service bays per store per after-sales slot")
