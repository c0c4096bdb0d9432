"""Dependencies the routes receive: the model and the settings, loaded once at start-up."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from engine.network import Network


def get_model(request: Request) -> Network:
    return request.app.state.model


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


ModelDep = Annotated[Network, Depends(get_model)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
