"""Power meters read from fake sysfs trees, and the detection order."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edgesched.profile.power import (
    EstimatedMeter,
    Ina3221Meter,
    PowerWindow,
    RaplMeter,
    detect_meter,
)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def rapl_tree(root: Path, energy_uj: int, max_uj: int = 1_000_000_000) -> Path:
    zone = root / "intel-rapl:0"
    write(zone / "name", "package-0\n")
    write(zone / "energy_uj", f"{energy_uj}\n")
    write(zone / "max_energy_range_uj", f"{max_uj}\n")
    write(root / "intel-rapl:0:0" / "energy_uj", "0\n")  # a sub-zone: must not be summed
    return zone


def test_rapl_counts_energy_and_handles_wraparound(tmp_path: Path) -> None:
    zone = rapl_tree(tmp_path, 999_000_000)
    meter = RaplMeter(tmp_path)
    write(zone / "energy_uj", "1000000\n")  # wrapped past 1e9: 1e6 + 1e6 µJ used
    assert meter.energy_j() == pytest.approx(2.0)
    assert meter.detail == "package-0"


def test_rapl_power_is_energy_over_time(tmp_path: Path) -> None:
    zone = rapl_tree(tmp_path, 0)
    meter = RaplMeter(tmp_path)
    meter.power_w()
    time.sleep(0.05)
    write(zone / "energy_uj", "500000\n")  # 0.5 J
    watts = meter.power_w()
    assert 2.0 < watts < 10.5  # 0.5 J over ~0.05-0.25 s


def test_ina3221_hwmon_prefers_the_module_input_rail(tmp_path: Path) -> None:
    hw = tmp_path / "ina3221" / "1-0040" / "hwmon" / "hwmon3"
    write(hw / "in1_label", "VDD_IN\n")
    write(hw / "in1_input", "5000\n")  # mV
    write(hw / "curr1_input", "1200\n")  # mA  -> 6 W
    write(hw / "in2_label", "VDD_CPU_GPU_CV\n")
    write(hw / "in2_input", "5000\n")
    write(hw / "curr2_input", "400\n")
    meter = Ina3221Meter(tmp_path)
    assert meter.power_w() == pytest.approx(6.0)
    assert "VDD_IN" in meter.detail


def test_ina3221_iio_sums_rails_without_a_total(tmp_path: Path) -> None:
    dev = tmp_path / "ina3221x" / "6-0040" / "iio:device0"
    write(dev / "in_power0_input", "2000\n")  # mW
    write(dev / "in_power1_input", "1500\n")
    meter = Ina3221Meter(tmp_path)
    assert meter.power_w() == pytest.approx(3.5)


def test_no_sensor_means_an_estimate(tmp_path: Path) -> None:
    meter = detect_meter(prefer_gpu=False, powercap=tmp_path / "none", i2c=tmp_path / "none")
    assert isinstance(meter, EstimatedMeter)
    assert meter.source == "estimated"


def test_detection_prefers_ina3221_over_rapl(tmp_path: Path) -> None:
    rapl_tree(tmp_path / "powercap", 0)
    dev = tmp_path / "i2c" / "ina3221x" / "6-0040" / "iio:device0"
    write(dev / "in_power0_input", "2000\n")
    meter = detect_meter(prefer_gpu=False, powercap=tmp_path / "powercap", i2c=tmp_path / "i2c")
    assert meter.name == "ina3221"


def test_estimated_power_follows_cpu_utilisation(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    write(stat, "cpu  100 0 100 800 0 0 0 0 0 0\n")
    meter = EstimatedMeter(idle_w=5.0, peak_w=15.0, stat=stat)
    write(stat, "cpu  150 0 150 900 0 0 0 0 0 0\n")  # 100 busy of 200: 50 %
    assert meter.power_w() == pytest.approx(10.0)
    with pytest.raises(ValueError):
        EstimatedMeter(idle_w=20.0, peak_w=15.0, stat=stat)


def test_a_power_window_averages_an_energy_counter(tmp_path: Path) -> None:
    zone = rapl_tree(tmp_path, 0)
    meter = RaplMeter(tmp_path)
    with PowerWindow(meter, interval_s=0.01) as window:
        time.sleep(0.05)
        write(zone / "energy_uj", "100000\n")  # 0.1 J
        time.sleep(0.05)
    assert window.mean_w is not None
    assert 0.3 < window.mean_w < 1.5  # 0.1 J over ~0.1 s
    assert window.samples
