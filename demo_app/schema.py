"""The records the clinic intake application produces from a caller's voicemail."""

import datetime
from enum import StrEnum
from typing import Literal, get_args

from pydantic import BaseModel, Field

__all__ = ["SYMPTOMS", "AppointmentRequest", "Caller", "Service", "Symptom"]


class Caller(BaseModel):
    """The person phoning the clinic."""

    first_name: str = Field(description="The caller's first (given) name, e.g. 'Sarah'.")
    last_name: str | None = Field(
        default=None,
        description="The caller's last (family) name if they say it, e.g. 'Johnson'; null if not said.",
    )


class Service(StrEnum):
    """The kind of appointment the caller asks for."""

    CHECKUP = "checkup"
    CLEANING = "cleaning"
    FILLING = "filling"
    CONSULTATION = "consultation"
    VACCINATION = "vaccination"
    BLOOD_TEST = "blood test"


SYMPTOMS: tuple[str, ...] = (
    "fever",
    "cough",
    "toothache",
    "headache",
    "rash",
    "back pain",
    "sore throat",
    "nausea",
)
"""The closed vocabulary of `AppointmentRequest.symptoms` (lowercase)."""

Symptom = Literal[
    "fever", "cough", "toothache", "headache", "rash", "back pain", "sore throat", "nausea"
]
"""One symptom from the closed vocabulary (a JSON-schema enum, so extractors see the allowed values)."""


class AppointmentRequest(BaseModel):
    """A caller phoning a clinic to book an appointment."""

    caller: Caller = Field(description="Who is calling.")
    service: Service = Field(description="The service the caller wants to book.")
    date: datetime.date = Field(
        description="The requested day of the appointment (ISO 8601 date, YYYY-MM-DD)."
    )
    time: datetime.time | None = Field(
        default=None,
        description="The requested time of day, 24-hour (HH:MM:SS); null if no time is said.",
    )
    urgent: bool = Field(
        default=False,
        description="True only if the caller says the matter is urgent; otherwise false.",
    )
    callback_number: str | None = Field(
        default=None,
        pattern=r"^[0-9]+$",
        description="The phone number to call back, digits only (e.g. '5550123'); null if none is given.",
    )
    symptoms: list[Symptom] = Field(
        default_factory=list,
        description=(
            "Symptoms the caller mentions, lowercase, each one of: "
            + ", ".join(SYMPTOMS)
            + "; empty if none."
        ),
    )


assert get_args(Symptom) == SYMPTOMS, "Symptom and SYMPTOMS must list the same vocabulary"
