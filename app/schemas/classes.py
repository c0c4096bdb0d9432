"""A class on one server: its requests and answers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from app.schemas.names import plain_name as _plain


class CreateClass(BaseModel):
    name: str = Field(min_length=1, max_length=60, examples=["MC886 lecture 7"])

    _name = field_validator("name")(_plain)


class JoinClass(BaseModel):
    code: str = Field(min_length=1, max_length=16, examples=["K7MX2P"], description="6 characters, no 0/O/1/I")
    lecturer_token: str | None = Field(None, max_length=100, description="makes this workspace a lecturer")
    name: str | None = Field(None, min_length=1, max_length=40, description='your name in the class ("Student 12")')

    _name = field_validator("name")(_plain)


class RenameMember(BaseModel):
    name: str = Field(min_length=1, max_length=40)

    _name = field_validator("name")(_plain)


class Design(BaseModel):
    name: str = Field(min_length=1, max_length=60)
    architecture: dict[str, Any] = Field(description="a spec: input, classes, layers")

    _name = field_validator("name")(_plain)


class Publish(BaseModel):
    model: str | None = Field(None, max_length=64, description="a model you may see (shipped, yours, shared)")
    design: Design | None = None

    @model_validator(mode="after")
    def exactly_one(self) -> Publish:
        if (self.model is None) == (self.design is None):
            raise ValueError("send exactly one of model or design")
        return self


class Challenge(BaseModel):
    dataset: Literal["digits", "fashion"] = "digits"
    max_parameters: int = Field(ge=1, le=50_000_000, examples=[10_000])
    max_epochs: int = Field(30, ge=1, le=30)
    deadline: float | None = Field(None, ge=0, description="Unix time after which entries are refused")


class Entry(BaseModel):
    model: str = Field(max_length=64, description="a model of yours, trained on the challenge's data set")


class ClassInfo(BaseModel):
    id: str
    name: str
    code: str
    role: Literal["lecturer", "student"]
    owner: bool = Field(False, description="your workspace made the class: it alone may end it or renew the secret")
    join_url: str = Field(
        description="the join link with the code: absolute on CONVSCOPE_PUBLIC_URL when set, else relative",
        examples=["http://10.0.0.5:8000/class?code=K7MX2P"],
    )
    created: float


class ClassCreated(ClassInfo):
    lecturer_token: str = Field(
        description="secret: another of your devices joins as a lecturer with it (or with the lecturer link "
        "/class?code=CODE#lecturer=TOKEN); answered this once, never by any other route"
    )


class LecturerToken(BaseModel):
    lecturer_token: str = Field(description="the class's new lecturer secret; the old one no longer works")


class Joined(ClassInfo):
    member_name: str = Field(description="your name as the class sees it")


class LeaderboardRow(BaseModel):
    student: str
    round: int = Field(description="the challenge's round the entry was scored in")
    attempts: int = Field(description="how many models the student entered in this round (the best is shown)")
    model: str = Field(description="a share id: anyone in the class opens it with ?model=")
    model_name: str
    score: float = Field(description="accuracy on the challenge's held-out test pictures")
    parameters: int
    layers: str = Field(examples=["conv 8@3x3 → maxpool → conv 16@3x3 → maxpool → fc 10"])
    created: float
    url: str


class ChallengeView(BaseModel):
    dataset: str
    max_parameters: int
    max_epochs: int
    deadline: float | None
    test_size: int
    round: int = Field(description="1 for the first challenge; each change of its rules starts the next")


class Leaderboard(BaseModel):
    challenge: ChallengeView | None = Field(description="the round's challenge")
    round: int = Field(description="the round listed (0 before any challenge)")
    rounds: int = Field(description="how many rounds the class has had")
    entries: list[LeaderboardRow] = Field(description="each student's best entry in the round, best first")


class JobLine(BaseModel):
    id: str
    name: str
    kind: str
    origin: str
    status: str
    dataset: str | None
    parameters: int | None
    test_accuracy: float | None
    progress: dict[str, Any] | None
    created: float


class MemberLine(BaseModel):
    member_id: str = Field(description="DELETE /api/classes/{id}/members/{member_id} removes the member")
    name: str
    role: Literal["lecturer", "student"]
    owner: bool
    via: Literal["created", "token", "code"] = Field(description="made the class, joined with the secret, or the code")
    joined: float
    lecturer_since: float | None
    best_accuracy: float | None
    entered: bool = Field(description="has an entry in the current round")
    jobs: list[JobLine]


class RoomCounts(BaseModel):
    joined: int = Field(description="students in the class")
    training: int = Field(description="students with a job training now")
    with_model: int = Field(description="students with a trained model")
    entered: int = Field(description="students with an entry in the current round")


class Room(BaseModel):
    public_url: str | None
    listening: str = Field(description="the address and port the server listens on")
    join_bases: list[str] = Field(description="addresses others can reach the server at; empty: none")
    restart: str = Field(description="how to start the server so that others can reach it")


class ClassView(ClassInfo):
    member_name: str
    member_id: str = Field(description="yours in this class")
    publications: list[dict[str, Any]]
    challenge: ChallengeView | None
    counts: RoomCounts | None = Field(description="for lecturers")
    members: list[MemberLine] | None = Field(description="for lecturers")
    room: Room | None = Field(None, description="for lecturers")


class ClassList(BaseModel):
    classes: list[ClassInfo]


class ChallengeAnswer(BaseModel):
    challenge: ChallengeView | None = Field(description="null until the lecturer sets one")
