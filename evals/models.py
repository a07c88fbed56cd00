"""Response models for the demo suites (the structure the extractor must fill from audio).

`AppointmentRequest` and its parts are the clinic intake application's own types
(`demo_app.schema`): the evals score the records the application really produces.
"""

from pydantic import BaseModel, Field

from demo_app.schema import SYMPTOMS, AppointmentRequest, Caller, Service, Symptom

__all__ = [
    "SYMPTOMS",
    "Symptom",
    "AppointmentRequest",
    "Caller",
    "Person",
    "Service",
]


class Person(BaseModel):
    """A person who introduces themselves: the seed example (name and age)."""

    name: str = Field(description="The speaker's first name, as they say it, e.g. 'Jason'.")
    age: int = Field(description="The speaker's own age in whole years, e.g. 20.")
