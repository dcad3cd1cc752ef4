"""One settings object: shipped defaults as package data, linkage included, no detector I/O."""

from __future__ import annotations

import builtins
import io
import os
import pathlib
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

from distillguard import settings as settings_module
from distillguard.detectors.account_pipeline import AccountPipeline
from distillguard.detectors.linkage import LinkageConfig, LinkageStage, LinkedPipeline
from distillguard.detectors.linkage.config import DEFAULT_KINDS, KIND_OF_PREFIX
from distillguard.detectors.pipeline import build_pipeline
from distillguard.settings import CONFIG_ENV, Settings, shipped_config
from distillguard.sim.scenario import load_scenario, resolve, shipped_scenarios

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_outside_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DISTILLGUARD_"):
            monkeypatch.delenv(name)


def test_shipped_defaults_come_from_the_package_not_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert shipped_config("default.yaml").read_text(encoding="utf-8") == (
        ROOT / "configs" / "default.yaml"
    ).read_text(encoding="utf-8")
    assert len(Settings().detectors.rules) > 0


def test_a_missing_default_config_is_an_error_not_zero_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(FileNotFoundError, match=r"distillguard\.configs/nope\.yaml"):
        shipped_config("nope.yaml")
    monkeypatch.setattr(settings_module, "CONFIG_PACKAGE", "distillguard.no_such_configs")
    with pytest.raises(FileNotFoundError, match="installation of distillguard is incomplete"):
        Settings()


def test_a_missing_extra_config_file_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "absent.yaml"))
    with pytest.raises(FileNotFoundError, match=r"absent\.yaml"):
        Settings()


def test_in_code_linkage_defaults_equal_the_shipped_ones() -> None:
    """``LinkageConfig()`` (doctests, notebooks, ``LinkageStage()``) detects like the product."""
    shipped = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    assert LinkageConfig.model_validate(shipped["detectors"]["linkage"]) == LinkageConfig()
    assert Settings().detectors.linkage == LinkageConfig()


def test_every_evidence_kind_has_one_key_prefix() -> None:
    assert sorted(KIND_OF_PREFIX.values()) == sorted(DEFAULT_KINDS)


def test_linkage_parameters_from_the_environment_and_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("detectors:\n  linkage:\n    min_alert_size: 7\n")
    monkeypatch.setenv(CONFIG_ENV, str(extra))
    monkeypatch.setenv("DISTILLGUARD_DETECTORS__LINKAGE__LINK_THRESHOLD", "2.5")
    monkeypatch.setenv("DISTILLGUARD_DETECTORS__LINKAGE__KINDS__NET__WEIGHT", "0.6")
    settings = Settings()
    linkage = settings.detectors.linkage
    assert (linkage.link_threshold, linkage.min_alert_size) == (2.5, 7)
    # a kind named in an override changes only the fields it names
    assert linkage.kind("net").weight == 0.6 and linkage.kind("net").cap == 0.8
    pipeline = build_pipeline(settings)
    assert isinstance(pipeline, LinkedPipeline)
    assert pipeline.linkage.config is linkage


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LINK_TRESHOLD", "2", "link_treshold"),
        ("LINK_THRESHOLD", "-1", "link_threshold"),
        ("KINDS__BOGUS__WEIGHT", "1", "unknown evidence kinds"),
    ],
)
def test_bad_linkage_parameters_are_rejected_with_their_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"DISTILLGUARD_DETECTORS__LINKAGE__{name}", value)
    with pytest.raises(ValueError, match=message):
        Settings()


def test_detector_constructors_read_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Detectors are handed their settings section; only the settings loader reads files."""
    settings = Settings()
    opened: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        opened.append(args[:1])
        raise AssertionError(f"file read in a detector constructor: {args[:1]}")

    for target, name in [
        (builtins, "open"),
        (io, "open"),
        (pathlib.Path, "open"),
        (pathlib.Path, "read_text"),
        (pathlib.Path, "read_bytes"),
    ]:
        monkeypatch.setattr(target, name, refuse)
    LinkageStage()
    LinkageStage(settings.detectors.linkage)
    AccountPipeline(settings.detectors)
    for kind in ("counting", "account", "linked"):
        detectors = settings.detectors.model_copy(update={"pipeline": kind})
        build_pipeline(settings.model_copy(update={"detectors": detectors}))
    assert opened == []


def test_named_scenarios_ship_with_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert {"small", "default"} <= set(shipped_scenarios())
    assert load_scenario("small").name == "small"
    with pytest.raises(FileNotFoundError, match=r"no scenario 'smal' \(known: .*\bsmall\b"):
        resolve("smal")
    with pytest.raises(FileNotFoundError, match="scenario file not found"):
        resolve(str(tmp_path / "absent.yaml"))
